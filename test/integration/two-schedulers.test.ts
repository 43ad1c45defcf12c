import { afterAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { startPodflow, type PodflowHandle } from '../../src/runtime/podflow.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';

const DAG = `
import { dag } from 'podflow';
export default dag({ dag_id: 'busy', schedule: '@hourly', start_date: '2026-01-01T00:00:00Z', end_date: '2026-01-01T11:00:00Z', catchup: true, max_active_runs: 4 }, (d) => {
  const a = d.task('a', async () => 1);
  const b = d.command('b', ['node', '-e', 'console.log("b ran")']);
  const c = d.task('c', async (ctx) => ctx.map_value, { expand: [1, 2, 3] });
  a.then([b, c]);
});
`;

describe('two schedulers on one Redis', () => {
  let pf: TestPodflow | undefined;
  let second: PodflowHandle | undefined;
  afterAll(async () => {
    await second?.stop();
    await pf?.close();
  });

  it('create every run once and run every task instance exactly once', async () => {
    pf = await startTestPodflow({ files: { 'busy.ts': DAG }, env: { PODFLOW_WORKER_CONCURRENCY: '8' } });
    second = await startPodflow({ config: { ...pf.config, workerName: 'second' }, roles: { scheduler: true }, logger: pino({ level: 'silent' }) });
    const deadline = Date.now() + 60_000;
    let runs = await pf.store.listRuns('busy', { limit: 100 });
    while ((runs.length < 12 || runs.some((r) => r.state !== 'success')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      runs = await pf.store.listRuns('busy', { limit: 100 });
    }
    // Intervals starting 00:00 .. 11:00 inclusive (end_date bound): twelve runs, one each.
    expect(runs.map((r) => r.logical_date).sort()).toEqual(Array.from({ length: 12 }, (_, h) => `2026-01-01T${String(h).padStart(2, '0')}:00:00.000Z`));
    expect(runs.every((r) => r.state === 'success')).toBe(true);
    for (const r of runs) {
      const tis = await pf.store.listTis('busy', r.dag_run_id);
      expect(tis.map((t) => `${t.task_id}[${t.map_index}]=${t.state}/${t.try_number}`)).toEqual([
        'a[-1]=success/1',
        'b[-1]=success/1',
        'c[0]=success/1',
        'c[1]=success/1',
        'c[2]=success/1',
      ]);
      const log = await pf.store.readLog({ dag_id: 'busy', dag_run_id: r.dag_run_id, task_id: 'b', map_index: -1 }, 1);
      expect(log.filter((l) => l.endsWith('{stdout} b ran'))).toHaveLength(1);
    }
  });
});
