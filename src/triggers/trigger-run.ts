import type { DagRunRecord, DagSpec } from '../dag/types.ts';
import { DagRunExistsError, type StateStore } from '../state/store.ts';
import { triggerDagRun, type TriggerOptions } from '../scheduler/trigger.ts';

/**
 * Create a run at logical date now (dataset, sensor and webhook triggers). Logical dates are
 * unique per DAG, so when another trigger already took this millisecond the next free one
 * is used. A taken `dag_run_id` still throws DagRunExistsError.
 */
export async function triggerAtNow(store: StateStore, dag: DagSpec, opts: Omit<TriggerOptions, 'logical_date'>): Promise<DagRunRecord> {
  let t = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await triggerDagRun(store, dag, { ...opts, logical_date: new Date(t) });
    } catch (e) {
      // The default run id is derived from the logical date, so its clash is the same clash.
      const dateTaken = e instanceof DagRunExistsError && (e.field === 'logical_date' || opts.dag_run_id === undefined);
      if (!dateTaken || attempt >= 50) throw e;
      t += 1;
    }
  }
}
