import type { DagRunState, DagSpec, TaskInstanceRecord, TaskState } from '../dag/types.ts';
import { FINISHED_TASK_STATES } from '../dag/types.ts';
import { DELETE, type StateStore } from '../state/store.ts';

/**
 * Operator actions on task instances and runs, shared by the CLI and the API. A running try
 * that is marked or cleared is told to stop (its process killed, its pod deleted).
 */

async function stopIfRunning(store: StateStore, ti: TaskInstanceRecord, previous: TaskState): Promise<void> {
  if (previous === 'running' || previous === 'queued') await store.redis.publish(store.keys.kills(), store.keys.ti(ti));
}

/** Mark task instances success, failed or skipped (Airflow's "mark as"). Returns those changed. */
export async function setTaskState(
  store: StateStore,
  dagId: string,
  runId: string,
  taskId: string,
  newState: 'success' | 'failed' | 'skipped',
  opts: { mapIndex?: number; dryRun?: boolean } = {},
): Promise<TaskInstanceRecord[]> {
  const tis = (await store.listTis(dagId, runId)).filter((t) => t.task_id === taskId && (opts.mapIndex === undefined || t.map_index === opts.mapIndex));
  const changed: TaskInstanceRecord[] = [];
  for (const ti of tis) {
    if (ti.state === newState) continue;
    if (opts.dryRun) {
      changed.push(ti);
      continue;
    }
    const res = await store.transitionTi(ti, [ti.state], newState, { end_date: new Date().toISOString(), note: `marked ${newState} by an operator` });
    if (res.ok) {
      await stopIfRunning(store, ti, res.previous);
      changed.push({ ...ti, state: newState });
    }
  }
  if (changed.length && !opts.dryRun) await reopenRun(store, dagId, runId);
  return changed;
}

/**
 * Clear task instances so they run again (with their downstream tasks when asked): state
 * back to none, XComs removed, one more try allowed per retry setting, run back to running.
 */
export async function clearTasks(
  store: StateStore,
  dag: DagSpec,
  runId: string,
  opts: { taskIds: string[]; includeDownstream?: boolean; includeUpstream?: boolean; onlyFailed?: boolean; dryRun?: boolean },
): Promise<TaskInstanceRecord[]> {
  const ids = new Set(opts.taskIds);
  const walk = (dir: 'downstream_task_ids' | 'upstream_task_ids') => {
    const stack = [...ids];
    while (stack.length) {
      // Pop once per step: inside find() it would pop on every comparison and lose tasks.
      const id = stack.pop();
      const t = dag.tasks.find((x) => x.task_id === id);
      for (const n of t?.[dir] ?? []) if (!ids.has(n)) (ids.add(n), stack.push(n));
    }
  };
  if (opts.includeDownstream) walk('downstream_task_ids');
  if (opts.includeUpstream) walk('upstream_task_ids');
  const tis = (await store.listTis(dag.dag_id, runId)).filter(
    (t) => ids.has(t.task_id) && (!opts.onlyFailed || t.state === 'failed' || t.state === 'upstream_failed'),
  );
  if (opts.dryRun) return tis;
  const cleared: TaskInstanceRecord[] = [];
  for (const ti of tis) {
    const task = dag.tasks.find((t) => t.task_id === ti.task_id);
    const res = await store.transitionTi(ti, [ti.state], 'none', {
      start_date: null,
      end_date: null,
      duration: null,
      next_attempt_at: null,
      sensor_started_at: null,
      poke_count: DELETE,
      follow_task_ids: null,
      max_tries: ti.try_number + (task?.retries ?? 0) + 1,
      note: 'cleared',
    });
    if (!res.ok) continue;
    await store.clearXcoms(ti);
    await stopIfRunning(store, ti, res.previous);
    cleared.push(ti);
  }
  if (cleared.length) await reopenRun(store, dag.dag_id, runId);
  return cleared;
}

/** A finished run whose tasks changed goes back to running, so the scheduler decides its end again. */
async function reopenRun(store: StateStore, dagId: string, runId: string) {
  await store.transitionRun(dagId, runId, ['success', 'failed'], 'running', { end_date: null });
}

/**
 * Set a run's state (Airflow's PATCH dagRun). Failing a run stops its running tasks and marks
 * unfinished ones skipped; "queued" re-runs it from scratch (every task cleared).
 */
export async function setRunState(store: StateStore, dag: DagSpec, runId: string, state: DagRunState): Promise<boolean> {
  const run = await store.getRun(dag.dag_id, runId);
  if (!run) return false;
  const now = new Date().toISOString();
  if (state === 'queued') {
    await clearTasks(store, dag, runId, { taskIds: dag.tasks.map((t) => t.task_id) });
    return store.transitionRun(dag.dag_id, runId, '*', 'queued', { start_date: null, end_date: null });
  }
  for (const ti of await store.listTis(dag.dag_id, runId)) {
    if (FINISHED_TASK_STATES.has(ti.state)) continue;
    const to: TaskState = state === 'success' ? 'success' : ti.state === 'running' ? 'failed' : 'skipped';
    const res = await store.transitionTi(ti, [ti.state], to, { end_date: now, note: `run marked ${state}` });
    if (res.ok) await stopIfRunning(store, ti, res.previous);
  }
  return store.transitionRun(dag.dag_id, runId, '*', state, { end_date: now });
}
