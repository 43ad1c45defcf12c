import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { clearTasks } from '../../src/scheduler/task-actions.ts';
import { startTestPodflow, VIEWER_TOKEN, type TestPodflow } from '../support/podflow.ts';

const PIPELINE = `
import { dag } from 'podflow';
export default dag({ dag_id: 'pipeline', schedule: null }, (d) => {
  const extract = d.task('extract', async (ctx) => {
    await ctx.metric('rows', 3);
    return { rows: [1, 2, 3], conf: ctx.conf };
  });
  const double = d.task('double', async (ctx) => {
    const up = (await ctx.xcom.pull('extract')) as { rows: number[] };
    return up.rows.map((r) => r * 2);
  });
  const shout = d.command('shout', ['node', '-e', 'console.log("dag=" + process.env.PODFLOW_DAG_ID + " ds={{ ds }}" + process.env.WHO)'], { env: { WHO: ' run={{ run_id }}' } });
  extract.then([double, shout]);
});
`;

const FLAKY = `
import { dag } from 'podflow';
export default dag({ dag_id: 'flaky', schedule: null, default_args: { retries: 2, retry_delay: '100ms' } }, (d) => {
  const fail = d.command('fail', ['node', '-e', 'console.error("boom on try " + process.env.PODFLOW_TRY_NUMBER); process.exit(3)']);
  const after = d.task('after', async () => 'never');
  fail.then(after);
});
`;

const CLEARED = `
import { dag } from 'podflow';
export const cleared = dag({ dag_id: 'cleared', schedule: null, default_args: { retries: 1, retry_delay: '2s' } }, (d) => {
  d.command('once_bad', ['node', '-e', 'process.exit(process.env.PODFLOW_TRY_NUMBER === "1" ? 1 : 0)']);
});
export const empty = dag({ dag_id: 'empty', schedule: null });
export const chatty = dag({ dag_id: 'chatty', schedule: null }, (d) => {
  d.command('talk', ['node', '-e', 'for (let i = 1; i <= 3000; i++) console.log("line " + i)']);
});
`;

describe('trigger to success through scheduler and worker', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'pipeline.ts': PIPELINE, 'flaky.ts': FLAKY, 'cleared.ts': CLEARED }, env: { PODFLOW_TASK_LOG_MAX_LINES: '1000' } });
  });
  afterAll(async () => pf?.close());

  it('runs every task to success, passing XComs, metrics and conf', async () => {
    const dag = (await pf.store.getDag('pipeline'))!;
    const run = await triggerDagRun(pf.store, dag, { conf: { who: 'test' } });
    const done = await pf.waitForRun('pipeline', run.dag_run_id);
    expect(done.state).toBe('success');
    const tis = await pf.store.listTis('pipeline', run.dag_run_id);
    expect(tis.map((t) => [t.task_id, t.state, t.try_number])).toEqual([
      ['double', 'success', 1],
      ['extract', 'success', 1],
      ['shout', 'success', 1],
    ]);
    const key = { dag_id: 'pipeline', dag_run_id: run.dag_run_id, map_index: -1 };
    expect(await pf.store.getXcom({ ...key, task_id: 'extract' }, 'return_value')).toEqual({ rows: [1, 2, 3], conf: { who: 'test' } });
    expect(await pf.store.getXcom({ ...key, task_id: 'double' }, 'return_value')).toEqual([2, 4, 6]);
    expect(await pf.store.getMetrics({ ...key, task_id: 'extract' })).toEqual({ rows: 3 });
    const ds = run.logical_date.slice(0, 10);
    expect(await pf.store.getXcom({ ...key, task_id: 'shout' }, 'return_value')).toBe(`dag=pipeline ds=${ds} run=${run.dag_run_id}`);
    const log = await pf.store.readLog({ ...key, task_id: 'shout' }, 1);
    expect(log.some((l) => l.endsWith(`{stdout} dag=pipeline ds=${ds} run=${run.dag_run_id}`))).toBe(true);
  });

  it('retries a failing command with its delay, then fails the run and marks downstream upstream_failed', async () => {
    const dag = (await pf.store.getDag('flaky'))!;
    const run = await triggerDagRun(pf.store, dag);
    const done = await pf.waitForRun('flaky', run.dag_run_id);
    expect(done.state).toBe('failed');
    const key = { dag_id: 'flaky', dag_run_id: run.dag_run_id, map_index: -1 };
    const fail = (await pf.store.getTi({ ...key, task_id: 'fail' }))!;
    expect([fail.state, fail.try_number, fail.max_tries]).toEqual(['failed', 3, 3]);
    expect(fail.note).toBe('command exited with code 3');
    expect((await pf.store.getTi({ ...key, task_id: 'after' }))!.state).toBe('upstream_failed');
    for (const t of [1, 2, 3]) {
      const log = await pf.store.readLog({ ...key, task_id: 'fail' }, t);
      expect(log.filter((l) => l.includes(`{stderr} boom on try ${t}`))).toHaveLength(1);
    }
  });

  it('refuses a second run for the same logical date', async () => {
    const dag = (await pf.store.getDag('pipeline'))!;
    await triggerDagRun(pf.store, dag, { logical_date: '2026-05-01T00:00:00Z' });
    await expect(triggerDagRun(pf.store, dag, { logical_date: '2026-05-01T00:00:00Z', dag_run_id: 'other' })).rejects.toThrow(
      /already has a run for logical date 2026-05-01T00:00:00.000Z/,
    );
  });

  it('counts finished tries in /metrics and reads cluster gauges from Redis', async () => {
    const dag = (await pf.store.getDag('pipeline'))!;
    const run = await triggerDagRun(pf.store, dag, { dag_run_id: 'metrics_run' });
    await pf.waitForRun('pipeline', run.dag_run_id);
    const unauth = await fetch(`${pf.api!.url}/metrics`);
    expect(unauth.status).toBe(401);
    const res = await fetch(`${pf.api!.url}/metrics`, { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    const count = (labels: string) => Number(new RegExp(`^podflow_task_tries_total\\{${labels}\\} (\\d+)$`, 'm').exec(text)?.[1]);
    expect(count('dag_id="pipeline",operator="command",state="success"')).toBeGreaterThanOrEqual(1);
    expect(count('dag_id="flaky",operator="command",state="failed"')).toBe(1);
    expect(count('dag_id="flaky",operator="command",state="up_for_retry"')).toBe(2);
    expect(text).toMatch(/^podflow_pool_slots\{pool="default_pool",kind="total"\} 128$/m);
    expect(text).toMatch(/^podflow_import_errors 0$/m);
  });

  it('a task cleared while waiting for its retry runs its next try at once; the stale retry job does nothing', async () => {
    const dag = (await pf.store.getDag('cleared'))!;
    const run = await triggerDagRun(pf.store, dag);
    const key = { dag_id: 'cleared', dag_run_id: run.dag_run_id, task_id: 'once_bad', map_index: -1 };
    for (let i = 0; i < 400 && (await pf.store.getTi(key))?.state !== 'up_for_retry'; i++) await new Promise((r) => setTimeout(r, 25));
    expect((await clearTasks(pf.store, dag, run.dag_run_id, { taskIds: ['once_bad'] })).length).toBe(1);
    expect((await pf.waitForRun('cleared', run.dag_run_id)).state).toBe('success');
    await new Promise((r) => setTimeout(r, 2500)); // past the old retry job's due time
    const ti = (await pf.store.getTi(key))!;
    expect([ti.state, ti.try_number]).toEqual(['success', 2]);
    expect((await pf.store.getRun('cleared', run.dag_run_id))!.state).toBe('success');
  });

  it('a DAG without tasks runs to success at once', async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('empty'))!);
    expect((await pf.waitForRun('empty', run.dag_run_id)).state).toBe('success');
  });

  it("keeps the tail of a runaway task's log within PODFLOW_TASK_LOG_MAX_LINES, saying how much was dropped", async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('chatty'))!);
    expect((await pf.waitForRun('chatty', run.dag_run_id)).state).toBe('success');
    const log = await pf.store.readLog({ dag_id: 'chatty', dag_run_id: run.dag_run_id, task_id: 'talk', map_index: -1 }, 1);
    expect(log).toHaveLength(1000);
    // 3000 printed + 3 lines of the worker's own ("starting try", "running", "task succeeded").
    expect(log[0]).toMatch(/\{WARNING\} 2004 earlier lines of this try were dropped to keep its log under 1000 lines \(PODFLOW_TASK_LOG_MAX_LINES\)$/);
    expect(log.at(-1)).toMatch(/\{INFO\} task succeeded$/);
    expect(log.at(-2)).toMatch(/\{stdout\} line 3000$/);
  });
});
