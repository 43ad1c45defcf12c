/**
 * Trigger rules: whether a task instance runs, waits, or is skipped / marked upstream_failed,
 * given the states of its direct upstream task instances.
 *
 * Follows Airflow's `TriggerRuleDep` (airflow/ti_deps/deps/trigger_rule_dep.py) with
 * `flag_upstream_failed` on, as the scheduler evaluates it: a rule that can already tell the
 * outcome (all_success with a failed upstream) decides at once, even while other upstreams
 * still run. Not carried over: setup/teardown tasks and the REMOVED transition of mapped task
 * groups.
 */
import { FINISHED_TASK_STATES, type TaskState, type TriggerRule } from '../dag/types.ts';

/** Counts over a task's direct upstream task instances (all map indexes of a mapped upstream). */
export interface UpstreamSummary {
  total: number;
  success: number;
  failed: number;
  upstream_failed: number;
  skipped: number;
  removed: number;
  /** Upstreams in a finished state (success, failed, upstream_failed, skipped, removed). */
  done: number;
}

/**
 * - `wait`: not decidable yet, look again when an upstream changes;
 * - `run`: the rule is met, schedule the task;
 * - `skip` / `upstream_failed`: set that state now (it propagates to downstreams in turn).
 */
export type TriggerDecision = 'wait' | 'run' | 'skip' | 'upstream_failed';

/** Counts the states of a task's direct upstream task instances. */
export function summarize(states: TaskState[]): UpstreamSummary {
  const s: UpstreamSummary = { total: states.length, success: 0, failed: 0, upstream_failed: 0, skipped: 0, removed: 0, done: 0 };
  for (const state of states) {
    if (state === 'success') s.success++;
    else if (state === 'failed') s.failed++;
    else if (state === 'upstream_failed') s.upstream_failed++;
    else if (state === 'skipped') s.skipped++;
    else if (state === 'removed') s.removed++;
    if (FINISHED_TASK_STATES.has(state)) s.done++;
  }
  return s;
}

/**
 * Decides what happens to a task instance under `rule`, given its upstream summary.
 *
 * | rule | run when | skip when | upstream_failed when |
 * |---|---|---|---|
 * | all_success | all upstreams success | any skipped (and none failed) | any failed/upstream_failed |
 * | all_failed | all failed/upstream_failed | any success or skipped | never |
 * | all_done | all finished | never | never |
 * | one_success | at least one success (at once) | all finished and all skipped | all finished, no success, not all skipped |
 * | one_failed | at least one failed/upstream_failed (at once) | all finished, none failed | never |
 * | one_done | at least one success or failed (at once) | all finished, none success/failed | never |
 * | none_failed | all finished as success or skipped | never | any failed/upstream_failed |
 * | none_failed_min_one_success | all finished as success or skipped, not all skipped | all skipped | any failed/upstream_failed |
 * | none_skipped | all finished, none skipped | any skipped | never |
 * | always | at once | never | never |
 *
 * No upstreams: `run` for every rule. A still-running upstream means `wait` unless a row
 * says "at once" or "any". So a join with none_failed_min_one_success is never skipped while
 * one of its branches still runs.
 *
 * @param mapIndex the deciding task instance's map index (-1 unmapped). As in Airflow, a mapped
 *   instance does not count `removed` upstreams against all_success, all_failed and none_failed.
 */
export function decide(rule: TriggerRule, s: UpstreamSummary, mapIndex = -1): TriggerDecision {
  if (s.total === 0 || rule === 'always') return 'run';
  const allDone = s.done >= s.total;
  const anyFailed = s.failed > 0 || s.upstream_failed > 0;
  const removedAllowance = mapIndex > -1 ? s.removed : 0;

  switch (rule) {
    case 'all_success':
      if (anyFailed) return 'upstream_failed';
      if (s.skipped > 0) return 'skip';
      return s.total - s.success - removedAllowance > 0 ? 'wait' : 'run';
    case 'all_failed':
      if (s.success > 0 || s.skipped > 0) return 'skip';
      return s.total - s.failed - s.upstream_failed - removedAllowance > 0 ? 'wait' : 'run';
    case 'all_done':
      return allDone ? 'run' : 'wait';
    case 'one_success':
      if (s.success > 0) return 'run';
      if (allDone) return s.done === s.skipped ? 'skip' : 'upstream_failed';
      return 'wait';
    case 'one_failed':
      if (anyFailed) return 'run';
      return allDone ? 'skip' : 'wait';
    case 'one_done':
      if (s.success + s.failed > 0) return 'run';
      return allDone ? 'skip' : 'wait';
    case 'none_failed':
      if (anyFailed) return 'upstream_failed';
      return s.total - s.success - s.skipped - removedAllowance > 0 ? 'wait' : 'run';
    case 'none_failed_min_one_success':
      if (anyFailed) return 'upstream_failed';
      if (s.skipped === s.total) return 'skip';
      return s.total - s.success - s.skipped - removedAllowance > 0 ? 'wait' : 'run';
    case 'none_skipped':
      if (s.skipped > 0) return 'skip';
      return allDone ? 'run' : 'wait';
    default: {
      const unknown: never = rule;
      throw new Error(`unknown trigger rule '${String(unknown)}'; use one of all_success, all_failed, all_done, one_success, one_failed, one_done, none_failed, none_failed_min_one_success, none_skipped, always`);
    }
  }
}
