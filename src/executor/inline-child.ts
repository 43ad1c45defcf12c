/**
 * A pooled child process that runs inline task functions (`isolation: 'process'`, the
 * default): it imports the DAG file once per file version, runs one task at a time, and
 * proxies the context (logs, XCom, metrics, artifacts) to the worker over IPC. A crash, an
 * endless loop or a memory blow-up here cannot take the worker down, and an
 * execution_timeout kills this process.
 */
import type { Json } from '../dag/types.ts';
import type { TaskContext, TaskLogger } from './operator.ts';
import { loadDagObject } from '../loader/dag-module.ts';

export interface ChildStart {
  type: 'run';
  file: string;
  file_hash: string;
  dag_id: string;
  task_id: string;
  ctx: Omit<TaskContext, 'log' | 'signal' | 'xcom' | 'metric' | 'artifact' | 'logical_date' | 'data_interval_start' | 'data_interval_end'> & {
    logical_date: string;
    data_interval_start: string;
    data_interval_end: string;
  };
}

export type ChildMessage =
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  | { type: 'raw'; line: string; stream?: 'stdout' | 'stderr' }
  | { type: 'call'; id: number; method: 'xcom.push' | 'xcom.pull' | 'metric' | 'artifact'; args: unknown[] }
  | { type: 'done'; value: Json | null | undefined }
  | { type: 'error'; message: string; stack?: string };

export type ParentMessage = { type: 'reply'; id: number; result?: unknown; error?: string };

const send = (m: ChildMessage) => new Promise<void>((resolve) => process.send!(m, () => resolve()));
let nextId = 1;
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

function call(method: Extract<ChildMessage, { type: 'call' }>['method'], ...args: unknown[]): Promise<unknown> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    void send({ type: 'call', id, method, args });
  });
}

async function run(m: ChildStart): Promise<void> {
  try {
    const dag = await loadDagObject(m.file, m.dag_id, m.file_hash);
    const fn = dag.callable(m.task_id);
    if (!fn) throw new Error(`DAG '${m.dag_id}' has no inline function for task '${m.task_id}'`);
    const log: TaskLogger = {
      debug: (msg, fields) => void send({ type: 'log', level: 'debug', msg, fields }),
      info: (msg, fields) => void send({ type: 'log', level: 'info', msg, fields }),
      warn: (msg, fields) => void send({ type: 'log', level: 'warn', msg, fields }),
      error: (msg, fields) => void send({ type: 'log', level: 'error', msg, fields }),
      raw: (line, stream) => void send({ type: 'raw', line, stream }),
    };
    const ctx: TaskContext = {
      ...m.ctx,
      logical_date: new Date(m.ctx.logical_date),
      data_interval_start: new Date(m.ctx.data_interval_start),
      data_interval_end: new Date(m.ctx.data_interval_end),
      log,
      signal: new AbortController().signal, // the worker kills this process instead
      xcom: {
        push: async (key, value) => void (await call('xcom.push', key, value)),
        pull: async (taskId, key) => (await call('xcom.pull', taskId, key)) as never,
      },
      metric: async (name, value) => void (await call('metric', name, value)),
      artifact: async (uri, meta) => void (await call('artifact', uri, meta)),
    };
    const value = await fn(ctx);
    await send({ type: 'done', value: value as Json | undefined });
  } catch (e) {
    const err = e as Error;
    await send({ type: 'error', message: err?.message ?? String(e), stack: err?.stack });
  }
}

process.on('message', (m: ChildStart | ParentMessage) => {
  if (m.type === 'reply') {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error !== undefined) p?.reject(new Error(m.error));
    else p?.resolve(m.result);
  } else if (m.type === 'run') {
    void run(m);
  }
});

// A stray rejection from an earlier task's leftover work must not end this process mid-task.
process.on('unhandledRejection', (e) => {
  process.stderr.write(`unhandled rejection in task code: ${(e as Error)?.stack ?? e}\n`);
});
