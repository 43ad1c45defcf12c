import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearTasks } from '../../src/scheduler/task-actions.ts';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';

const MAPPING = `
import { dag } from 'podflow';
export const literal = dag({ dag_id: 'map_literal', schedule: null }, (d) => {
  const square = d.task('square', (ctx) => ctx.map_value * ctx.map_value, { expand: [3, 1, 2] });
  square.then(d.task('collect', (ctx) => ctx.xcom.pull('square')));
});
export const fromXcom = dag({ dag_id: 'map_xcom', schedule: null }, (d) => {
  const make = d.task('make', () => ['a', 'b', 'c', 'd']);
  const upper = d.task('upper', (ctx) => ctx.map_value.toUpperCase() + ctx.map_index, { expand: { from: make } });
  upper.then(d.task('collect', (ctx) => ctx.xcom.pull('upper')));
});
export const tooLong = dag({ dag_id: 'map_too_long', schedule: null }, (d) => {
  const make = d.task('make', () => [1, 2, 3]);
  const each = d.task('each', (ctx) => ctx.map_value, { expand: { from: make }, max_map_length: 2 });
  each.then(d.task('collect', (ctx) => ctx.xcom.pull('each')));
});
export const empty = dag({ dag_id: 'map_empty', schedule: null }, (d) => {
  const make = d.task('make', () => []);
  const each = d.task('each', (ctx) => ctx.map_value, { expand: { from: make } });
  each.then(d.task('collect', (ctx) => ctx.xcom.pull('each')));
});
`;

const PAST = `
import { dag } from 'podflow';
export default dag({ dag_id: 'past', schedule: null, max_active_runs: 2 }, (d) => {
  const first = d.task('first', () => 'first');
  const t = d.task('t', async (ctx) => {
    if (ctx.conf.slow) await new Promise((r) => setTimeout(r, 800));
    if (ctx.conf.fail && ctx.try_number === 1) throw new Error('fails on try 1');
    return ctx.logical_date.toISOString();
  }, { depends_on_past: true });
  first.then(t);
});
`;

const WAIT_DOWN = `
import { dag } from 'podflow';
export default dag({ dag_id: 'wait_down', schedule: null, max_active_runs: 2 }, (d) => {
  const a = d.task('a', () => 'a', { wait_for_downstream: true });
  const b = d.task('b', async (ctx) => { if (ctx.conf.slow) await new Promise((r) => setTimeout(r, 800)); return 'b'; });
  a.then(b);
});
`;

describe('dynamic task mapping and depends_on_past end to end', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'mapping.ts': MAPPING, 'past.ts': PAST, 'wait-down.ts': WAIT_DOWN } });
  });
  afterAll(async () => pf?.close());

  async function run(dagId: string, opts: Parameters<typeof triggerDagRun>[2] = {}) {
    const r = await triggerDagRun(pf.store, (await pf.store.getDag(dagId))!, opts);
    const done = await pf.waitForRun(dagId, r.dag_run_id);
    const tis = await pf.store.listTis(dagId, r.dag_run_id);
    const xcom = (taskId: string, mapIndex = -1) => pf.store.getXcom({ dag_id: dagId, dag_run_id: r.dag_run_id, task_id: taskId, map_index: mapIndex }, 'return_value');
    return { done, tis, xcom, runId: r.dag_run_id };
  }

  it('maps over a literal list: map indexes 0..n-1, downstream collects the results in order', async () => {
    const { done, tis, xcom } = await run('map_literal');
    expect(done.state).toBe('success');
    expect(tis.map((t) => [t.task_id, t.map_index, t.state])).toEqual([
      ['collect', -1, 'success'],
      ['square', 0, 'success'],
      ['square', 1, 'success'],
      ['square', 2, 'success'],
    ]);
    expect(await xcom('square', 1)).toBe(1);
    expect(await xcom('collect')).toEqual([9, 1, 4]);
  });

  it("maps over an upstream's XCom list", async () => {
    const { done, tis, xcom } = await run('map_xcom');
    expect(done.state).toBe('success');
    expect(tis.filter((t) => t.task_id === 'upper').map((t) => [t.map_index, t.state, t.try_number])).toEqual([
      [0, 'success', 1],
      [1, 'success', 1],
      [2, 'success', 1],
      [3, 'success', 1],
    ]);
    expect(await xcom('collect')).toEqual(['A0', 'B1', 'C2', 'D3']);
  });

  it('fails a mapped task whose list exceeds max_map_length, with what to do', async () => {
    const { done, tis } = await run('map_too_long');
    expect(done.state).toBe('failed');
    expect(tis.map((t) => [t.task_id, t.map_index, t.state, t.note])).toEqual([
      ['collect', -1, 'upstream_failed', 'an upstream task failed'],
      ['each', -1, 'failed', "task 'each' would expand into 3 instances, more than max_map_length 2; raise max_map_length or pass fewer values"],
      ['make', -1, 'success', null],
    ]);
  });

  it('skips a task mapped over an empty list (and its all_success downstream)', async () => {
    const { done, tis } = await run('map_empty');
    expect(done.state).toBe('success');
    expect(tis.map((t) => [t.task_id, t.map_index, t.state])).toEqual([
      ['collect', -1, 'skipped'],
      ['each', -1, 'skipped'],
      ['make', -1, 'success'],
    ]);
    expect(tis.find((t) => t.task_id === 'each')!.note).toBe('expanded over an empty list');
  });

  it("depends_on_past: a task waits for its own previous run's instance", async () => {
    const dag = (await pf.store.getDag('past'))!;
    // Two runs at once (max_active_runs 2); 't' of the first is slow.
    const r1 = await triggerDagRun(pf.store, dag, { logical_date: '2026-01-01T00:00:00Z', conf: { slow: true } });
    const r2 = await triggerDagRun(pf.store, dag, { logical_date: '2026-01-02T00:00:00Z' });
    expect((await pf.waitForRun('past', r1.dag_run_id)).state).toBe('success');
    expect((await pf.waitForRun('past', r2.dag_run_id)).state).toBe('success');
    const get = (runId: string, task: string) => pf.store.getTi({ dag_id: 'past', dag_run_id: runId, task_id: task, map_index: -1 });
    const [t1, t2, first2] = [await get(r1.dag_run_id, 't'), await get(r2.dag_run_id, 't'), await get(r2.dag_run_id, 'first')];
    // The second run was active meanwhile ('first' finished before the slow 't'), but its 't' started only after.
    expect(Date.parse(first2!.end_date!)).toBeLessThan(Date.parse(t1!.end_date!));
    expect(Date.parse(t2!.start_date!)).toBeGreaterThanOrEqual(Date.parse(t1!.end_date!));
  });

  it('depends_on_past: after a failed previous instance the task waits until that one is cleared and succeeds', async () => {
    const dag = (await pf.store.getDag('past'))!;
    const a = await triggerDagRun(pf.store, dag, { logical_date: '2026-02-01T00:00:00Z', conf: { fail: true } });
    expect((await pf.waitForRun('past', a.dag_run_id)).state).toBe('failed');
    const b = await triggerDagRun(pf.store, dag, { logical_date: '2026-02-02T00:00:00Z' });
    const get = (runId: string, task: string) => pf.store.getTi({ dag_id: 'past', dag_run_id: runId, task_id: task, map_index: -1 });
    for (let i = 0; i < 100 && (await get(b.dag_run_id, 'first'))!.state !== 'success'; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500)); // several scheduler ticks
    expect([(await get(b.dag_run_id, 'first'))!.state, (await get(b.dag_run_id, 't'))!.state, (await pf.store.getRun('past', b.dag_run_id))!.state]).toEqual([
      'success',
      'none',
      'running',
    ]);
    await clearTasks(pf.store, dag, a.dag_run_id, { taskIds: ['t'] });
    expect((await pf.waitForRun('past', a.dag_run_id)).state).toBe('success');
    expect((await pf.waitForRun('past', b.dag_run_id)).state).toBe('success');
    const [ta, tb] = [await get(a.dag_run_id, 't'), await get(b.dag_run_id, 't')];
    expect([ta!.state, ta!.try_number, tb!.state, tb!.try_number]).toEqual(['success', 2, 'success', 1]);
    expect(Date.parse(tb!.start_date!)).toBeGreaterThanOrEqual(Date.parse(ta!.end_date!));
  });

  it("wait_for_downstream: a task also waits for its previous instance's direct downstream tasks", async () => {
    const dag = (await pf.store.getDag('wait_down'))!;
    const r1 = await triggerDagRun(pf.store, dag, { logical_date: '2026-03-01T00:00:00Z', conf: { slow: true } });
    const r2 = await triggerDagRun(pf.store, dag, { logical_date: '2026-03-02T00:00:00Z' });
    expect((await pf.waitForRun('wait_down', r1.dag_run_id)).state).toBe('success');
    expect((await pf.waitForRun('wait_down', r2.dag_run_id)).state).toBe('success');
    const get = (runId: string, task: string) => pf.store.getTi({ dag_id: 'wait_down', dag_run_id: runId, task_id: task, map_index: -1 });
    const [b1, a2] = [await get(r1.dag_run_id, 'b'), await get(r2.dag_run_id, 'a')];
    expect(Date.parse(a2!.start_date!)).toBeGreaterThanOrEqual(Date.parse(b1!.end_date!));
  });
});
