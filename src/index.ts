/**
 * Podflow: Airflow-style pipelines in TypeScript.
 *
 * @example
 * // dags/hello.ts
 * import { dag } from 'podflow';
 * export default dag({ dag_id: 'hello', schedule: '@daily', start_date: '2026-01-01' }, (d) => {
 *   const extract = d.task('extract', async (ctx) => {
 *     ctx.log.info('extracting', { logical_date: ctx.logical_date.toISOString() });
 *     return { rows: 3 };
 *   });
 *   const load = d.command('load', ['echo', 'loaded']);
 *   extract.then(load);
 * });
 */
export { dag, chain, Dag, TaskRef, DagDefinitionError } from './dag/dag.ts';
export type {
  DagOptions,
  TaskOptions,
  TaskDefaults,
  CommandOptions,
  SensorOptions,
  TaskFunction,
  BranchFunction,
  TaskCallback,
  OperatorTask,
  ScheduleInput,
} from './dag/dag.ts';
export type { TaskContext, TaskLogger, ArtifactMeta, Operator, OperatorRunRequest } from './executor/operator.ts';
export type { Json, TriggerRule, TaskState, DagRunState, DagSpec, TaskSpec, TaskOutcome } from './dag/types.ts';
export type { Duration } from './util/duration.ts';
export { SensorFailure } from './sensors/sensor.ts';
export type { Sensor, PokeResult, PokeContext } from './sensors/sensor.ts';
export type { PluginContext, PodflowPlugin } from './executor/plugin.ts';
