import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';
import { uniquePrefix } from '../support/redis.ts';

const scratch = mkdtempSync(join(tmpdir(), 'pf-trigger-'));

const DAG = `
import { dag } from 'podflow';
export default dag(
  {
    dag_id: 'on_file',
    schedule: null,
    extra: { trigger: { sensor: 'file', args: { path: ${JSON.stringify(join(scratch, '*.csv'))} }, interval_seconds: 0.2 } },
  },
  (d) => {
    d.task('echo', async (ctx) => ctx.conf);
  },
);
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sensor-triggered DAGs', () => {
  const prefix = uniquePrefix('sensor-trigger');
  let pf: TestPodflow | undefined;
  const start = () => startTestPodflow({ files: { 'on_file.ts': DAG }, env: { PODFLOW_PREFIX: prefix, PODFLOW_DAG_IMPORT_TIMEOUT_MS: '30000' } });
  afterAll(async () => {
    await pf?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  async function finishedRuns(count: number) {
    for (let i = 0; ; i++) {
      const runs = await pf!.store.listRuns('on_file');
      if (runs.length >= count && runs.every((r) => r.state === 'success' || r.state === 'failed')) return runs;
      if (i > 600) throw new Error(`on_file has ${runs.length} runs, expected ${count}`);
      await sleep(50);
    }
  }

  it('starts one run per new file, with the poke payload as conf, and never re-fires an event after a restart', async () => {
    pf = await start();
    await sleep(600); // three intervals with no file: no run
    expect(await pf.store.countRuns('on_file')).toBe(0);

    writeFileSync(join(scratch, 'a.csv'), 'x\n');
    const [first] = await finishedRuns(1);
    expect(first.run_type).toBe('sensor_triggered');
    expect(first.conf.trigger_event_key).toMatch(new RegExp(`^${join(scratch, 'a.csv').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}@\\d+$`));
    expect((first.conf.files as { path: string }[]).map((f) => f.path)).toEqual([join(scratch, 'a.csv')]);
    expect(first.state).toBe('success');
    await sleep(600); // the same file poked again: the same event, no new run
    expect(await pf.store.countRuns('on_file')).toBe(1);

    writeFileSync(join(scratch, 'b.csv'), 'y\n');
    const runs = await finishedRuns(2);
    expect(runs.map((r) => r.conf.count)).toEqual([2, 1]);

    // A restarted scheduler remembers which events fired.
    await pf.close();
    pf = await start();
    await sleep(600);
    expect(await pf.store.countRuns('on_file')).toBe(2);
    writeFileSync(join(scratch, 'c.csv'), 'z\n');
    expect((await finishedRuns(3)).map((r) => r.conf.count)).toEqual([3, 2, 1]);
  });
});
