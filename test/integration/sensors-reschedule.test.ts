import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import type { TaskInstanceRecord } from '../../src/dag/types.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';

const SENSORS = 20;
const scratch = mkdtempSync(join(tmpdir(), 'pf-sensors-'));
const flag = join(scratch, 'ready.flag');

const WAITERS = `
import { dag } from 'podflow';
export default dag({ dag_id: 'waiters', schedule: null, max_active_tasks: 32 }, (d) => {
  for (let i = 0; i < ${SENSORS}; i++) {
    d.sensor('wait_' + i, 'file', { path: ${JSON.stringify(flag)} }, { mode: 'reschedule', poke_interval: '300ms', timeout: '5m' });
  }
});
`;

const QUICK = `
import { dag } from 'podflow';
export default dag({ dag_id: 'quick', schedule: null }, (d) => {
  d.task('work', async () => 'done');
});
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('reschedule-mode sensors', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'waiters.ts': WAITERS, 'quick.ts': QUICK }, env: { PODFLOW_WORKER_CONCURRENCY: '2', PODFLOW_DAG_IMPORT_TIMEOUT_MS: '30000' } });
  });
  afterAll(async () => {
    await pf?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it(`${SENSORS} sensors on 2 worker slots wait without holding slots and all complete when the file appears`, async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('waiters'))!);
    let maxRunning = 0;
    const seenRescheduled = new Set<string>();
    const sample = async (): Promise<TaskInstanceRecord[]> => {
      const tis = await pf.store.listTis('waiters', run.dag_run_id);
      maxRunning = Math.max(maxRunning, tis.filter((t) => t.state === 'running').length);
      for (const t of tis) if (t.state === 'up_for_reschedule') seenRescheduled.add(t.task_id);
      return tis;
    };
    // Every sensor pokes at least once and goes back to up_for_reschedule (its slot freed).
    const pokedAll = async () => {
      const tis = await sample();
      return tis.filter((t) => Number((t as unknown as { poke_count?: number }).poke_count ?? 0) >= 1).length === SENSORS;
    };
    for (let i = 0; !(await pokedAll()); i++) {
      if (i > 1200) throw new Error('the sensors did not all poke within 60 s');
      await sleep(50);
    }
    // With all 20 waiting on 2 slots, another DAG's task still gets a slot and finishes.
    const quick = await triggerDagRun(pf.store, (await pf.store.getDag('quick'))!);
    const quickDone = await pf.waitForRun('quick', quick.dag_run_id, 30_000);
    expect(quickDone.state).toBe('success');
    const during = await sample();
    expect(during.filter((t) => t.state === 'success')).toHaveLength(0);

    writeFileSync(flag, 'go');
    for (let i = 0; ; i++) {
      const r = await pf.store.getRun('waiters', run.dag_run_id);
      await sample();
      if (r?.state === 'success' || r?.state === 'failed') break;
      if (i > 1200) throw new Error('the sensors did not finish within 60 s of the file appearing');
      await sleep(50);
    }
    const tis = await pf.store.listTis('waiters', run.dag_run_id);
    expect(tis.map((t) => t.state)).toEqual(Array(SENSORS).fill('success'));
    expect(tis.map((t) => t.try_number)).toEqual(Array(SENSORS).fill(1));
    expect(seenRescheduled.size).toBe(SENSORS);
    expect(maxRunning).toBeLessThanOrEqual(2);
    const x = await pf.store.getXcom({ dag_id: 'waiters', dag_run_id: run.dag_run_id, task_id: 'wait_0', map_index: -1 }, 'return_value');
    expect((x as { count: number }).count).toBe(1);
    // The first poke time is kept for the timeout, measured across reschedules.
    expect(tis.every((t) => typeof t.sensor_started_at === 'number')).toBe(true);
  });
});
