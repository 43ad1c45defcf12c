import { z } from 'zod';
import { TASK_STATES } from '../dag/types.ts';
import { SensorFailure, type PokeResult, type Sensor } from './sensor.ts';
import { readerOf } from './task-state-reader.ts';

export const externalTaskSensorArgs = z.strictObject({
  external_dag_id: z.string().min(1),
  external_task_id: z.string().min(1),
  external_map_index: z.number().int().min(-1).default(-1),
  /** States that end the wait successfully. */
  allowed_states: z.array(z.enum(TASK_STATES)).min(1).default(['success']),
  /** States that fail this sensor at once (no retry): waiting longer cannot help. */
  failed_states: z.array(z.enum(TASK_STATES)).default([]),
  /** Look at the external run whose logical date is this many seconds before ours (Airflow's execution_delta). */
  execution_delta_seconds: z.number().default(0),
});
export type ExternalTaskSensorArgs = z.output<typeof externalTaskSensorArgs>;

/**
 * Waits until a task of another DAG, in that DAG's run for the same logical date (shifted
 * by `execution_delta_seconds`), reaches one of `allowed_states`.
 * Done: XCom `{ dag_id, run_id, task_id, map_index, state }`.
 */
export const externalTaskSensor: Sensor<ExternalTaskSensorArgs> = {
  type: 'external_task',
  argsSchema: externalTaskSensorArgs.refine((a) => !a.allowed_states.some((s) => a.failed_states.includes(s)), {
    message: 'a state cannot be both allowed and failed',
    path: ['failed_states'],
  }),
  async poke(args, ctx): Promise<PokeResult> {
    const reader = readerOf(ctx);
    const date = new Date(ctx.logical_date.getTime() - args.execution_delta_seconds * 1000);
    const what = `task '${args.external_task_id}'${args.external_map_index >= 0 ? `[${args.external_map_index}]` : ''} of DAG '${args.external_dag_id}' at ${date.toISOString()}`;
    const runId = await reader.runIdForLogicalDate(args.external_dag_id, date);
    if (runId === null) return { done: false, detail: `waiting for ${what}: that DAG has no run for this logical date yet` };
    const state = await reader.taskState(args.external_dag_id, runId, args.external_task_id, args.external_map_index);
    if (state === null) return { done: false, detail: `waiting for ${what}: run '${runId}' has no such task instance yet` };
    if (args.failed_states.includes(state)) {
      throw new SensorFailure(`DAG '${ctx.dag_id}' task '${ctx.task_id}': ${what} (run '${runId}') is ${state}, one of failed_states; fix or clear that task, then clear this one`);
    }
    if (!args.allowed_states.includes(state)) {
      return { done: false, detail: `waiting for ${what} (run '${runId}') to be ${args.allowed_states.join(' or ')}; it is ${state}` };
    }
    return {
      done: true,
      event_key: `${args.external_dag_id}:${runId}:${args.external_task_id}:${args.external_map_index}:${state}`,
      xcom: { dag_id: args.external_dag_id, run_id: runId, task_id: args.external_task_id, map_index: args.external_map_index, state },
    };
  },
};
