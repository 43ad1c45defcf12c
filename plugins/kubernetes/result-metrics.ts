/**
 * Metrics from a pod's result file. A container cannot call `ctx.metric()`, so a result JSON
 * whose top level holds `metrics: { name: number, ... }` is recorded as the task instance's
 * metrics, as if the task had called `ctx.metric(name, value)` for each.
 */
import type { Json } from '../../src/dag/types.ts';
import type { TaskContext, TaskLogger } from '../../src/executor/operator.ts';

/**
 * Records `value.metrics` (when `value` is an object holding one) through `metric`; entries
 * that are not finite numbers are skipped with a warning in the task log, since a bad metric
 * is no reason to fail a step that succeeded. Returns the metrics recorded.
 *
 * @example
 * // the container wrote {"accuracy": 0.97, "metrics": {"accuracy": 0.97}} to result_file
 * await recordResultMetrics(outcome.return_value, req.context.metric, req.log, where);
 */
export async function recordResultMetrics(value: Json | undefined, metric: TaskContext['metric'] | undefined, log: TaskLogger, where: string): Promise<Record<string, number>> {
  if (!value || typeof value !== 'object' || Array.isArray(value) || !('metrics' in value)) return {};
  const metrics = value.metrics;
  if (!metrics || typeof metrics !== 'object' || Array.isArray(metrics)) {
    log.warn(`${where}: result_file's "metrics" is ${JSON.stringify(metrics)}, not an object of numbers; no metrics recorded (write e.g. {"metrics": {"accuracy": 0.97}})`);
    return {};
  }
  if (typeof metric !== 'function') {
    log.warn(`${where}: result_file holds metrics but this task context cannot record them`);
    return {};
  }
  const recorded: Record<string, number> = {};
  for (const [name, v] of Object.entries(metrics)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      log.warn(`${where}: result_file metric '${name}' is ${JSON.stringify(v)}, not a finite number; skipped`);
      continue;
    }
    await metric(name, v);
    recorded[name] = v;
  }
  return recorded;
}
