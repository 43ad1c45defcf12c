import { z } from 'zod';
import type { PokeResult, Sensor } from './sensor.ts';
import { readerOf } from './task-state-reader.ts';

export const metricThresholdSensorArgs = z.strictObject({
  /** DAG whose task recorded the metric; default this DAG. */
  dag_id: z.string().min(1).optional(),
  task_id: z.string().min(1),
  map_index: z.number().int().min(-1).default(-1),
  /** Metric name as recorded with `ctx.metric(name, value)`, e.g. `accuracy` or `psi`. */
  metric: z.string().min(1),
  op: z.enum(['gt', 'gte', 'lt', 'lte', 'eq', 'ne']),
  threshold: z.number(),
  /**
   * Which run: a run id, `latest` (the DAG's run with the latest logical date) or `current`
   * (this run). Default: `current` for this DAG, `latest` for another DAG.
   */
  run_id: z.string().min(1).optional(),
});
export type MetricThresholdSensorArgs = z.output<typeof metricThresholdSensorArgs>;

function crosses(v: number, op: MetricThresholdSensorArgs['op'], t: number): boolean {
  switch (op) {
    case 'gt':
      return v > t;
    case 'gte':
      return v >= t;
    case 'lt':
      return v < t;
    case 'lte':
      return v <= t;
    case 'eq':
      return v === t;
    case 'ne':
      return v !== t;
  }
}

/**
 * Waits until a metric recorded by a task (accuracy, drift …) crosses a bound.
 * Done: XCom `{ dag_id, run_id, task_id, metric, value }`.
 */
export const metricThresholdSensor: Sensor<MetricThresholdSensorArgs> = {
  type: 'metric_threshold',
  argsSchema: metricThresholdSensorArgs,
  async poke(args, ctx): Promise<PokeResult> {
    const reader = readerOf(ctx);
    const dagId = args.dag_id ?? ctx.dag_id;
    const which = args.run_id ?? (dagId === ctx.dag_id ? 'current' : 'latest');
    const runId = which === 'current' ? ctx.run_id : which === 'latest' ? await reader.latestRun(dagId) : which;
    const what = `metric '${args.metric}' of task '${args.task_id}' in DAG '${dagId}'`;
    if (runId === null) return { done: false, detail: `waiting for ${what}: the DAG has no runs yet` };
    const value = await reader.metric(dagId, runId, args.task_id, args.map_index, args.metric);
    if (value === null) return { done: false, detail: `waiting for ${what}: run '${runId}' has not recorded it` };
    if (!crosses(value, args.op, args.threshold)) {
      return { done: false, detail: `${what} is ${value} in run '${runId}', waiting for ${args.op} ${args.threshold}` };
    }
    return {
      done: true,
      event_key: `${dagId}:${runId}:${args.task_id}:${args.map_index}:${args.metric}`,
      xcom: { dag_id: dagId, run_id: runId, task_id: args.task_id, metric: args.metric, value },
    };
  },
};
