import type { Logger } from 'pino';
import type { DagSpec, Json } from '../dag/types.ts';
import type { StateStore } from '../state/store.ts';
import type { SensorRegistry } from '../sensors/registry.ts';
import type { TryHooks } from '../worker/worker.ts';
import { DatasetEvents } from './dataset-events.ts';
import { DatasetTriggers } from './dataset-triggers.ts';
import { SensorTriggers } from './sensor-triggers.ts';

export interface TriggerHookOptions {
  store: StateStore;
  sensors: SensorRegistry;
  logger: Logger;
  /** How long fired sensor-trigger event keys are remembered. */
  retentionDays: number;
}

/**
 * The scheduler's `beforeTick` hook: creates dataset-triggered and sensor-triggered runs.
 * Never throws (a failing DAG is logged with its file and skipped).
 */
export function createTriggerHook(o: TriggerHookOptions): (scheduler: unknown, now: Date) => Promise<void> {
  const datasets = new DatasetTriggers({ store: o.store, logger: o.logger });
  const sensors = new SensorTriggers({ store: o.store, sensors: o.sensors, logger: o.logger, seenTtlSec: o.retentionDays * 86_400 });
  return async () => {
    try {
      const dags: DagSpec[] = [];
      for (const id of await o.store.dagIds()) {
        const spec = await o.store.getDag(id);
        if (spec && (spec.schedule.datasets || (spec.extra?.trigger !== undefined && spec.extra.trigger !== null))) dags.push(spec);
      }
      if (dags.length === 0) return;
      await datasets.check(dags);
      await sensors.check(dags);
    } catch (e) {
      o.logger.error({ err: e }, `dataset/sensor triggers failed this tick: ${(e as Error).message}`);
    }
  };
}

/** XCom key a task pushes to attach `extra` to its outlet events: `{ uri: {...} }`, or `{...}` for every outlet. */
export const DATASET_EXTRA_XCOM = 'dataset_extra';

/**
 * The worker's `tryFinished` part for datasets: a try that ended in success records one
 * dataset event per outlet URI of its task, with the try as source. A task attaches `extra`
 * to those events by pushing the XCom `dataset_extra`:
 * `await ctx.xcom.push('dataset_extra', { 'dataset://podflow/iris/labels': { rows: 120 } })`
 * (keyed by outlet URI), or an object without URI keys for every outlet.
 */
export function outletEventsHook(store: StateStore, logger: Logger): NonNullable<TryHooks['tryFinished']> {
  const events = new DatasetEvents(store);
  return async (info) => {
    if (info.final_state !== 'success' || info.task.outlets.length === 0) return;
    const extras = await store.getXcom(info.ti, DATASET_EXTRA_XCOM).catch(() => null);
    const isObject = (v: Json | null | undefined): v is { [k: string]: Json } => v !== null && typeof v === 'object' && !Array.isArray(v);
    const byUri = isObject(extras) && info.task.outlets.some((u) => u in extras);
    for (const uri of info.task.outlets) {
      const extra = isObject(extras) ? (byUri ? extras[uri] : extras) : undefined;
      try {
        await events.record(
          uri,
          {
            source_dag_id: info.dag.dag_id,
            source_run_id: info.run.dag_run_id,
            source_task_id: info.task.task_id,
            source_map_index: info.ti.map_index,
          },
          isObject(extra) ? extra : {},
        );
      } catch (e) {
        logger.error({ err: e, dag_id: info.dag.dag_id, task_id: info.task.task_id, uri }, `recording dataset event for outlet ${uri} of task '${info.task.task_id}' failed`);
      }
    }
  };
}
