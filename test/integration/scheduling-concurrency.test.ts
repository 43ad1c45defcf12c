import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram, type CliContext } from '../../src/cli/main.ts';
import type { TaskInstanceRecord } from '../../src/dag/types.ts';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { OPERATOR_TOKEN, startTestPodflow, type TestPodflow } from '../support/podflow.ts';

const DAGS = `
import { dag } from 'podflow';
const nap = (ms) => () => new Promise((r) => setTimeout(() => r(ms), ms));
export const pooled = dag({ dag_id: 'pooled', schedule: null, max_active_tasks: 50 }, (d) => {
  for (let i = 0; i < 10; i++) d.task('gpu' + i, nap(250), { pool: 'gpu' });
});
export const mat = dag({ dag_id: 'mat', schedule: null, max_active_tasks: 2 }, (d) => {
  for (let i = 0; i < 6; i++) d.task('t' + i, nap(250));
});
export const mar = dag({ dag_id: 'mar', schedule: null, max_active_runs: 1 }, (d) => {
  d.task('work', nap(300));
});
export const prio = dag({ dag_id: 'prio', schedule: null, default_args: { pool: 'single', weight_rule: 'absolute' } }, (d) => {
  for (const [id, w] of [['p1', 3], ['p2', 10], ['p3', 1], ['p4', 7], ['p5', 5]]) d.task(id, nap(50), { priority_weight: w });
});
export const wide = dag({ dag_id: 'wide', schedule: null }, (d) => {
  // 2 slots each in a pool of 3: only one at a time.
  for (let i = 0; i < 4; i++) d.task('w' + i, nap(150), { pool: 'big', pool_slots: 2 });
});
export const prioDown = dag({ dag_id: 'prio_down', schedule: null }, (d) => {
  // weight_rule downstream (default): a = 1 + 3 downstream tasks = 4, beats b = 2.
  const a = d.task('a', nap(50), { pool: 'single' });
  a.then([d.task('x', nap(1)), d.task('y', nap(1)), d.task('z', nap(1))]);
  d.task('b', nap(50), { pool: 'single', priority_weight: 2 });
});
`;

/** Most spans open at once; a span ending at the instant another starts does not overlap it. */
function maxOverlap(spans: { start_date: string | null; end_date: string | null }[]): number {
  const ev: [number, number][] = [];
  for (const s of spans) ev.push([Date.parse(s.start_date!), 1], [Date.parse(s.end_date!), -1]);
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of ev) max = Math.max(max, (cur += d));
  return max;
}

describe('pools, concurrency limits and priority weights end to end', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'dags.ts': DAGS }, env: { PODFLOW_WORKER_CONCURRENCY: '12' } });
  });
  afterAll(async () => pf?.close());

  async function cli(...args: string[]): Promise<string[]> {
    const out: string[] = [];
    const ctx: CliContext = { config: pf.config, store: async () => pf.store, out: (t) => out.push(t) };
    await buildProgram(ctx).exitOverride().parseAsync(['node', 'podflow', ...args]);
    return out;
  }
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${pf.api!.url}${path}`, { ...init, headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' } });

  async function runTis(dagId: string): Promise<TaskInstanceRecord[]> {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag(dagId))!);
    expect((await pf.waitForRun(dagId, run.dag_run_id)).state).toBe('success');
    return pf.store.listTis(dagId, run.dag_run_id);
  }

  it('a pool of 2 slots (set by CLI) never runs more than 2 of its 10 tasks at once; resized to 3 by the API, 3', async () => {
    expect(await cli('pools', 'set', 'gpu', '2', '--description', 'two GPUs')).toEqual(['pool gpu: 2 slots']);
    const first = await runTis('pooled');
    expect(first.map((t) => t.state)).toEqual(Array(10).fill('success'));
    expect(maxOverlap(first)).toBe(2);

    const res = await api('/api/v1/pools/gpu', { method: 'PATCH', body: JSON.stringify({ slots: 3 }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: 'gpu', slots: 3, occupied_slots: 0, open_slots: 3, description: 'two GPUs' });
    const second = await runTis('pooled');
    expect(maxOverlap(second)).toBe(3);
    const listed = (await cli('pools', 'list')).join('\n');
    expect(listed).toMatch(/^gpu\s+3\s+0\s+two GPUs$/m);
  });

  it('pool_slots: tasks taking 2 slots of a 3-slot pool run one at a time', async () => {
    expect(await cli('pools', 'set', 'big', '3')).toEqual(['pool big: 3 slots']);
    const tis = await runTis('wide');
    expect(tis.map((t) => [t.state, t.pool_slots])).toEqual(Array(4).fill(['success', 2]));
    expect(maxOverlap(tis)).toBe(1);
  });

  it('max_active_tasks 2 runs at most 2 of the DAG\'s 6 tasks at once', async () => {
    const tis = await runTis('mat');
    expect(tis.map((t) => t.state)).toEqual(Array(6).fill('success'));
    expect(maxOverlap(tis)).toBe(2);
  });

  it('max_active_runs 1 runs triggered runs one after another, the waiting ones oldest logical date first', async () => {
    const dag = (await pf.store.getDag('mar'))!;
    const ids = [];
    // 09 runs first; 03, 01 and 02 are created while it runs, and wait for the one slot.
    for (const day of ['09', '03', '01', '02']) {
      ids.push((await triggerDagRun(pf.store, dag, { logical_date: `2026-04-${day}T00:00:00Z` })).dag_run_id);
      for (let i = 0; i < 100 && ids.length === 1 && (await pf.store.getRun('mar', ids[0]))!.state !== 'running'; i++) await new Promise((r) => setTimeout(r, 10));
    }
    const runs = [];
    for (const id of ids) runs.push(await pf.waitForRun('mar', id));
    expect(runs.map((r) => r.state)).toEqual(['success', 'success', 'success', 'success']);
    expect(maxOverlap(runs)).toBe(1);
    const order = [...runs].sort((a, b) => Date.parse(a.start_date!) - Date.parse(b.start_date!)).map((r) => r.logical_date);
    expect(order).toEqual(['2026-04-09T00:00:00.000Z', '2026-04-01T00:00:00.000Z', '2026-04-02T00:00:00.000Z', '2026-04-03T00:00:00.000Z']);
  });

  it('priority weights decide who goes first when slots are scarce (absolute and downstream weight rules)', async () => {
    const res = await api('/api/v1/pools', { method: 'POST', body: JSON.stringify({ name: 'single', slots: 1 }) });
    expect(res.status).toBe(200);
    const byStart = (tis: TaskInstanceRecord[]) => [...tis].sort((a, b) => Date.parse(a.start_date!) - Date.parse(b.start_date!)).map((t) => `${t.task_id}:${t.priority_weight}`);
    expect(byStart(await runTis('prio'))).toEqual(['p2:10', 'p4:7', 'p5:5', 'p1:3', 'p3:1']);
    const down = (await runTis('prio_down')).filter((t) => t.pool === 'single');
    expect(byStart(down)).toEqual(['a:4', 'b:2']);
  });
});

const SPREAD = `
import { dag } from 'podflow';
const nap = (ms) => () => new Promise((r) => setTimeout(() => r(ms), ms));
export const one = dag({ dag_id: 'one', schedule: null }, (d) => { for (let i = 0; i < 4; i++) d.task('t' + i, nap(200)); });
export const two = dag({ dag_id: 'two', schedule: null }, (d) => { for (let i = 0; i < 4; i++) d.task('t' + i, nap(200)); });
`;

describe('global parallelism end to end', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'spread.ts': SPREAD }, env: { PODFLOW_WORKER_CONCURRENCY: '8', PODFLOW_PARALLELISM: '2' } });
  });
  afterAll(async () => pf?.close());

  it('PODFLOW_PARALLELISM 2 runs at most 2 task instances at once across all DAGs', async () => {
    const runs = [];
    for (const id of ['one', 'two']) runs.push(await triggerDagRun(pf.store, (await pf.store.getDag(id))!));
    const tis: TaskInstanceRecord[] = [];
    for (const r of runs) {
      expect((await pf.waitForRun(r.dag_id, r.dag_run_id)).state).toBe('success');
      tis.push(...(await pf.store.listTis(r.dag_id, r.dag_run_id)));
    }
    expect(tis.length).toBe(8);
    expect(maxOverlap(tis)).toBe(2);
  });
});
