import type { Json, TaskOutcome } from '../dag/types.ts';
import { loadDagObject } from '../loader/dag-module.ts';
import type { ChildMessage, ChildStart, ParentMessage } from './inline-child.ts';
import { InlineProcessPool } from './inline-pool.ts';
import type { AbortReason, Operator, OperatorRunRequest, TaskContext } from './operator.ts';

/**
 * Runs an inline task function: by default in a pooled child process (isolation: 'process'),
 * or in the worker's own event loop (isolation: 'inline').
 */
export class InlineOperator implements Operator {
  readonly type = 'inline';
  private readonly pool: InlineProcessPool;

  constructor(opts: { maxIdleProcesses?: number } = {}) {
    this.pool = new InlineProcessPool({ maxIdle: opts.maxIdleProcesses });
  }

  /** Stop the idle task processes (worker shutdown). */
  close(): void {
    this.pool.close();
  }

  async execute(req: OperatorRunRequest): Promise<TaskOutcome> {
    let value: unknown;
    try {
      value = req.task.operator_args.isolation === 'inline' ? await runInline(req) : await runInChild(req, this.pool);
    } catch (e) {
      if (e instanceof Aborted) return { state: 'failed', error: e.message };
      throw e;
    }
    return toOutcome(req, value);
  }
}

class Aborted extends Error {}

function abortMessage(req: OperatorRunRequest, inline: boolean): string {
  const reason = req.signal.reason as AbortReason | undefined;
  const base = reason?.message ?? 'stopped';
  return inline
    ? `${base}; the inline function of task '${req.task.task_id}' was asked to stop through ctx.signal (check it in long loops, or use isolation: 'process')`
    : `${base}; the task's process was killed`;
}

async function runInline(req: OperatorRunRequest): Promise<unknown> {
  const dag = await loadDagObject(req.dag.file, req.dag.dag_id, req.dag.file_hash);
  const fn = dag.callable(req.task.task_id);
  if (!fn) throw new Error(`${req.dag.file}: DAG '${req.dag.dag_id}' has no inline function for task '${req.task.task_id}'`);
  // An in-process function cannot be killed: on abort we stop waiting for it and say so.
  const aborted = new Promise<never>((_, reject) => {
    const onAbort = () => reject(new Aborted(abortMessage(req, true)));
    if (req.signal.aborted) onAbort();
    else req.signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([Promise.resolve().then(() => fn(req.context)), aborted]);
}

function runInChild(req: OperatorRunRequest, pool: InlineProcessPool): Promise<unknown> {
  const ctx: TaskContext = req.context;
  return new Promise((resolve, reject) => {
    const task = pool.acquire();
    const child = task.child;
    let settled = false;
    const finish = (ok: boolean, fn: () => void) => {
      if (settled) return;
      settled = true;
      req.signal.removeEventListener('abort', onAbort);
      if (ok) task.release();
      else task.discard();
      fn();
    };
    const onAbort = () => finish(false, () => reject(new Aborted(abortMessage(req, false))));
    if (req.signal.aborted) return onAbort();
    req.signal.addEventListener('abort', onAbort, { once: true });
    for (const [stream, name] of [
      [child.stdout, 'stdout'],
      [child.stderr, 'stderr'],
    ] as const) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) if (line) ctx.log.raw(line, name);
      });
    }
    child.on('message', async (m: ChildMessage) => {
      switch (m.type) {
        case 'log':
          ctx.log[m.level](m.msg, m.fields);
          return;
        case 'raw':
          ctx.log.raw(m.line, m.stream);
          return;
        case 'call': {
          const reply: ParentMessage = { type: 'reply', id: m.id };
          try {
            // IPC carries JSON: an omitted argument arrives as null; restore it so defaults apply.
            const a = m.args.map((x) => (x === null ? undefined : x)) as [never, never];
            if (m.method === 'xcom.push') await ctx.xcom.push(...a);
            else if (m.method === 'xcom.pull') reply.result = await ctx.xcom.pull(...a);
            else if (m.method === 'metric') await ctx.metric(...a);
            else await ctx.artifact(...a);
          } catch (e) {
            reply.error = (e as Error).message;
          }
          if (child.connected) child.send(reply);
          return;
        }
        case 'done':
          finish(true, () => resolve(m.value === null ? null : m.value));
          return;
        case 'error':
          // The function threw; the process itself is sound and goes back to the pool.
          finish(true, () => reject(Object.assign(new Error(m.message), { stack: m.stack ?? m.message })));
      }
    });
    child.on('exit', (code, signal) =>
      setTimeout(
        () =>
          finish(false, () =>
            reject(new Error(`the task's process ended without a result (exit code ${code ?? signal}); it may have run out of memory or called process.exit`)),
          ),
        50,
      ),
    );
    const start: ChildStart = {
      type: 'run',
      file: req.dag.file,
      file_hash: req.dag.file_hash,
      dag_id: req.dag.dag_id,
      task_id: req.task.task_id,
      ctx: {
        dag_id: ctx.dag_id,
        run_id: ctx.run_id,
        task_id: ctx.task_id,
        map_index: ctx.map_index,
        try_number: ctx.try_number,
        logical_date: ctx.logical_date.toISOString(),
        data_interval_start: ctx.data_interval_start.toISOString(),
        data_interval_end: ctx.data_interval_end.toISOString(),
        params: ctx.params,
        conf: ctx.conf,
        map_value: ctx.map_value,
      },
    };
    child.send(start);
  });
}

function toOutcome(req: OperatorRunRequest, value: unknown): TaskOutcome {
  if (req.task.operator_args.branch) {
    const ids = value === null || value === undefined ? [] : Array.isArray(value) ? value : [value];
    const unknown = ids.filter((id) => typeof id !== 'string' || !req.task.downstream_task_ids.includes(id));
    if (unknown.length > 0) {
      return {
        state: 'failed',
        fatal: true,
        error: `branch task '${req.task.task_id}' returned ${JSON.stringify(unknown)}, which are not its direct downstream tasks (${req.task.downstream_task_ids.join(', ') || 'none'})`,
      };
    }
    return { state: 'success', follow_task_ids: ids as string[], return_value: ids as Json };
  }
  if (value !== undefined && !isJson(value)) {
    return { state: 'failed', fatal: true, error: `task '${req.task.task_id}' returned a value that is not JSON (functions, class instances, NaN and cycles cannot be XComs)` };
  }
  return { state: 'success', return_value: value === undefined ? undefined : (value as Json) };
}

function isJson(v: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every((x) => isJson(x, depth + 1));
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    return (proto === Object.prototype || proto === null) && Object.values(v as object).every((x) => isJson(x, depth + 1));
  }
  return false;
}
