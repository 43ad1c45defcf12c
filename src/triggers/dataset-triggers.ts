/**
 * Dataset-scheduled DAGs: `schedule: [uriA, uriB]` (all of them), `{ all: [...] }` or
 * `{ any: [...] }`, nested freely. A DAG gets one run (run_type `dataset_triggered`) once its
 * condition holds over the events newer than its last dataset-triggered run; every event
 * up to that moment is consumed by that one run, so repeated updates collapse.
 *
 * Each DAG keeps a cursor per URI (the id of the last event it consumed). A run is created
 * only after an atomic compare-and-set moves the cursor from the values this scheduler read
 * to the latest event ids, so two schedulers never start two runs for the same events.
 * A DAG that never consumed a URI starts from cursor 0: every retained event counts.
 * Paused DAGs consume nothing; their events wait until they are unpaused.
 */
import type { Logger } from 'pino';
import type { DagRunRecord, DagSpec, Json } from '../dag/types.ts';
import type { StateStore } from '../state/store.ts';
import { triggerAtNow } from './trigger-run.ts';
import { conditionHolds, conditionUris, type DatasetEvent, DatasetEvents } from './dataset-events.ts';

/** Most events per URI copied into a run's conf (the newest ones). */
const MAX_EVENTS_IN_CONF = 100;

/**
 * KEYS: 1 cursor hash. ARGV: JSON [[uri, expected cursor, new cursor], …].
 * Moves every cursor only if all still hold the expected values; returns 1, else 0.
 */
const CLAIM_EVENTS = `
local items = cjson.decode(ARGV[1])
for _, it in ipairs(items) do
  local cur = tonumber(redis.call('HGET', KEYS[1], it[1]) or '0')
  if cur ~= tonumber(it[2]) then return 0 end
end
for _, it in ipairs(items) do redis.call('HSET', KEYS[1], it[1], it[3]) end
return 1
`;

export interface DatasetTriggerOptions {
  store: StateStore;
  logger: Logger;
}

/** Creates runs of dataset-scheduled DAGs; call {@link DatasetTriggers.check} on each scheduler tick. */
export class DatasetTriggers {
  readonly events: DatasetEvents;

  constructor(private readonly o: DatasetTriggerOptions) {
    this.events = new DatasetEvents(o.store);
  }

  /** Check every dataset-scheduled, unpaused DAG; returns the runs created. */
  async check(dags: readonly DagSpec[]): Promise<DagRunRecord[]> {
    const created: DagRunRecord[] = [];
    for (const dag of dags) {
      if (!dag.schedule.datasets) continue;
      try {
        const meta = await this.o.store.getDagMeta(dag.dag_id);
        if (meta?.is_paused) continue;
        const run = await this.checkDag(dag);
        if (run) created.push(run);
      } catch (e) {
        this.o.logger.error({ dag_id: dag.dag_id, err: e }, `dataset trigger of DAG '${dag.dag_id}' (${dag.file}) failed: ${(e as Error).message}`);
      }
    }
    return created;
  }

  /** One DAG: a run if its condition holds and this process won the claim, else null. */
  async checkDag(dag: DagSpec): Promise<DagRunRecord | null> {
    const { store } = this.o;
    const cond = dag.schedule.datasets;
    if (!cond) return null;
    const uris = conditionUris(cond);
    const cursorKey = store.keys.datasetCursor(dag.dag_id);
    const [cursorVals, latest] = await Promise.all([store.redis.hmget(cursorKey, ...uris), this.events.latestIds(uris)]);
    const cursor = new Map(uris.map((u, i) => [u, Number(cursorVals[i] ?? 0)]));
    const updated = new Set(uris.filter((u) => (latest.get(u) ?? 0) > (cursor.get(u) ?? 0)));
    if (updated.size === 0 || !conditionHolds(cond, updated)) return null;

    const items = [...updated].map((u) => [u, cursor.get(u)!, latest.get(u)!]);
    const won = await store.redis.eval(CLAIM_EVENTS, 1, cursorKey, JSON.stringify(items));
    if (won !== 1) return null; // another scheduler consumed these events

    const byUri: Record<string, DatasetEvent[]> = {};
    for (const u of updated) byUri[u] = await this.events.eventsOf(u, cursor.get(u)!, latest.get(u)!, MAX_EVENTS_IN_CONF);
    const all = Object.values(byUri)
      .flat()
      .sort((a, b) => a.id - b.id);
    let run: DagRunRecord | null = null;
    try {
      // As Airflow: the data interval spans the triggering events.
      const first = new Date(all[0]?.timestamp ?? Date.now());
      const last = new Date(all[all.length - 1]?.timestamp ?? Date.now());
      run = await triggerAtNow(store, dag, {
        run_type: 'dataset_triggered',
        data_interval: { start: first, end: last },
        conf: { triggering_dataset_events: byUri as unknown as Json },
        note: `triggered by ${all.length} dataset ${all.length === 1 ? 'event' : 'events'} on ${[...updated].join(', ')}`,
      });
    } catch (e) {
      // Give the events back so the next tick (here or elsewhere) tries again.
      const back = items.map(([u, old, neu]) => [u, neu, old]);
      await store.redis.eval(CLAIM_EVENTS, 1, cursorKey, JSON.stringify(back)).catch(() => {});
      throw e;
    }
    await store.redis.hset(store.keys.datasetRunEvents(dag.dag_id), run.dag_run_id, JSON.stringify(all));
    this.o.logger.info(
      { dag_id: dag.dag_id, run_id: run.dag_run_id, events: all.map((e) => e.id) },
      `created dataset-triggered run ${run.dag_run_id} of ${dag.dag_id} from ${all.length} events on ${[...updated].join(', ')}`,
    );
    return run;
  }
}
