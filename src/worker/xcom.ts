import type { DagRunRecord, Json } from '../dag/types.ts';
import { parseTiMember } from '../state/keys.ts';
import type { StateStore } from '../state/store.ts';

/**
 * An upstream's XCom as a task sees it: the value of an unmapped task, or for a mapped task
 * the list of every instance's value in map-index order (Airflow's "collect" behaviour).
 */
export async function pullXcom(store: StateStore, run: DagRunRecord, taskId: string, key: string): Promise<Json | null> {
  const members = (await store.redis.smembers(store.keys.tis(run.dag_id, run.dag_run_id)))
    .map(parseTiMember)
    .filter((m) => m.task_id === taskId)
    .sort((a, b) => a.map_index - b.map_index);
  if (members.length === 0) return null;
  const base = { dag_id: run.dag_id, dag_run_id: run.dag_run_id, task_id: taskId };
  if (members.length === 1 && members[0].map_index === -1) return store.getXcom({ ...base, map_index: -1 }, key);
  const values: Json[] = [];
  for (const m of members) values.push(await store.getXcom({ ...base, map_index: m.map_index }, key));
  return values;
}
