import type { Json, TaskOutcome } from '../dag/types.ts';
import { loadDagObject } from '../loader/dag-module.ts';
import type { AbortReason, Operator, OperatorRunRequest } from './operator.ts';

/** Runs an inline task function in the worker process. */
export class PythonOperator implements Operator {
  readonly type = 'python';

  async execute(req: OperatorRunRequest): Promise<TaskOutcome> {
    const dag = await loadDagObject(req.dag.file, req.dag.dag_id, req.dag.file_hash);
    const fn = dag.callable(req.task.task_id);
    if (!fn) {
      return { state: 'failed', fatal: true, error: `${req.dag.file}: DAG '${req.dag.dag_id}' has no inline function for task '${req.task.task_id}'` };
    }
    // An inline function cannot be killed; on abort we stop waiting for it and say so.
    const aborted = new Promise<TaskOutcome>((resolve) => {
      const onAbort = () => {
        const reason = req.signal.reason as AbortReason | undefined;
        resolve({
          state: 'failed',
          error: `${reason?.message ?? 'stopped'}; the inline function of task '${req.task.task_id}' was asked to stop through ctx.signal (check it in long loops)`,
        });
      };
      if (req.signal.aborted) onAbort();
      else req.signal.addEventListener('abort', onAbort, { once: true });
    });
    const run = (async (): Promise<TaskOutcome> => {
      const value = await fn(req.context);
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
    })();
    return Promise.race([run, aborted]);
  }
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
