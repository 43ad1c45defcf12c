import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { buildProgram, type CliContext } from '../../src/cli/main.ts';
import type { DagRunRecord } from '../../src/dag/types.ts';
import { Keys } from '../../src/state/keys.ts';
import { OPERATOR_TOKEN, startTestPodflow, type TestPodflow } from '../support/podflow.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';

const DAILY = `
import { dag } from 'podflow';
export default dag({ dag_id: 'daily_bf', schedule: '@daily', start_date: '2026-01-01', catchup: false, max_active_runs: 2 }, (d) => {
  d.task('work', async (ctx) => {
    await new Promise((r) => setTimeout(r, 150));
    return ctx.logical_date.toISOString();
  });
});
`;

const PAUSED = `
import { dag } from 'podflow';
export default dag({ dag_id: 'paused_bf', schedule: '0 6 * * *', start_date: '2026-01-01', catchup: true, max_active_runs: 1 }, (d) => {
  d.task('work', async () => 'ok');
});
`;

const MANUAL = `
import { dag } from 'podflow';
export default dag({ dag_id: 'manual_only', schedule: null }, (d) => {
  d.task('work', async () => 'ok');
});
`;

/** Most spans open at once; a span ending at the instant another starts does not overlap it. */
function maxOverlap(spans: [string | null, string | null][]): number {
  const ev: [number, number][] = [];
  for (const [s, e] of spans) ev.push([Date.parse(s!), 1], [Date.parse(e!), -1]);
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of ev) max = Math.max(max, (cur += d));
  return max;
}

describe('backfill', () => {
  let pf: TestPodflow;
  const prefix = uniquePrefix('bf');

  beforeAll(async () => {
    // Paused before the scheduler first sees it: a catchup DAG must create no scheduled run.
    const r = new Redis(redisUrl());
    await r.hset(new Keys(prefix).dagMeta('paused_bf'), 'is_paused', '1');
    r.disconnect();
    pf = await startTestPodflow({ files: { 'daily.ts': DAILY, 'paused.ts': PAUSED, 'manual.ts': MANUAL }, env: { PODFLOW_PREFIX: prefix } });
  });
  afterAll(async () => pf?.close());

  async function cli(...args: string[]): Promise<{ out: string[]; exitCode: number }> {
    const out: string[] = [];
    const ctx: CliContext = { config: pf.config, store: async () => pf.store, out: (t) => out.push(t) };
    const program = buildProgram(ctx).exitOverride();
    const before = process.exitCode;
    process.exitCode = 0;
    try {
      await program.parseAsync(['node', 'podflow', ...args]);
      return { out, exitCode: Number(process.exitCode ?? 0) };
    } finally {
      process.exitCode = before;
    }
  }

  const runsOf = async (dagId: string): Promise<DagRunRecord[]> => (await pf.store.listRuns(dagId, { limit: 1000 })).reverse();

  it('creates backfill runs for exactly the range, within max_active_runs, oldest first, and shows progress', async () => {
    const { out, exitCode } = await cli('dags', 'backfill', 'daily_bf', '--from', '2026-01-03', '--to', '2026-01-06', '--wait', '--poll-ms', '50');
    expect(exitCode).toBe(0);
    expect(out[0]).toBe('backfill 1 of daily_bf: 4 interval(s) from 2026-01-03T00:00:00.000Z to 2026-01-06T00:00:00.000Z; at most 2 run(s) at once');
    expect(out.at(-1)).toBe('backfill 1 of daily_bf: 4/4 created, 0 queued, 0 running, 4 succeeded, 0 failed');
    // Progress went through intermediate states (2 created while 2 slots were busy).
    expect(out.some((l) => /: [12]\/4 created/.test(l))).toBe(true);

    const runs = await runsOf('daily_bf');
    const backfill = runs.filter((r) => r.run_type === 'backfill');
    expect(backfill.map((r) => [r.dag_run_id, r.state, r.data_interval_start, r.data_interval_end, r.external_trigger])).toEqual([
      ['backfill__2026-01-03T00:00:00.000Z', 'success', '2026-01-03T00:00:00.000Z', '2026-01-04T00:00:00.000Z', false],
      ['backfill__2026-01-04T00:00:00.000Z', 'success', '2026-01-04T00:00:00.000Z', '2026-01-05T00:00:00.000Z', false],
      ['backfill__2026-01-05T00:00:00.000Z', 'success', '2026-01-05T00:00:00.000Z', '2026-01-06T00:00:00.000Z', false],
      ['backfill__2026-01-06T00:00:00.000Z', 'success', '2026-01-06T00:00:00.000Z', '2026-01-07T00:00:00.000Z', false],
    ]);
    // The only other run is the one catchup=false schedules anyway (the latest completed day):
    // the backfill neither created scheduled runs nor moved the cron clock.
    const today = new Date();
    const yesterday = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - 1)).toISOString();
    expect(runs.filter((r) => r.run_type !== 'backfill').map((r) => [r.run_type, r.logical_date])).toEqual([['scheduled', yesterday]]);
    // max_active_runs bounds the runs that run at once (start to end): never more than 2. (A run
    // may be created while another is still finishing; it waits queued until a slot frees.)
    expect(maxOverlap(runs.map((r) => [r.start_date, r.end_date]))).toBeLessThanOrEqual(2);
    // Oldest first.
    const byCreation = [...backfill].sort((a, b) => Date.parse(a.queued_at!) - Date.parse(b.queued_at!));
    expect(byCreation.map((r) => r.logical_date)).toEqual(backfill.map((r) => r.logical_date));
    const work = await pf.store.getXcom({ dag_id: 'daily_bf', dag_run_id: 'backfill__2026-01-05T00:00:00.000Z', task_id: 'work', map_index: -1 }, 'return_value');
    expect(work).toBe('2026-01-05T00:00:00.000Z');
  });

  it('is idempotent: a second backfill skips intervals that already have a run', async () => {
    const again = await cli('dags', 'backfill', 'daily_bf', '--from', '2026-01-03', '--to', '2026-01-06', '--poll-ms', '50');
    expect(again.exitCode).toBe(0);
    expect(again.out[0]).toBe(
      'backfill 2 of daily_bf: 4 interval(s) from 2026-01-03T00:00:00.000Z to 2026-01-06T00:00:00.000Z, 4 already had a run and are skipped; at most 2 run(s) at once',
    );
    expect(again.out[1]).toBe('backfill 2 of daily_bf: 0/0 created, 0 queued, 0 running, 0 succeeded, 0 failed (4 interval(s) already had a run)');

    const overlap = await cli('dags', 'backfill', 'daily_bf', '--from', '2026-01-05', '--to', '2026-01-08T00:00:00Z', '--wait', '--poll-ms', '50');
    expect(overlap.out.at(-1)).toBe('backfill 3 of daily_bf: 2/2 created, 0 queued, 0 running, 2 succeeded, 0 failed (2 interval(s) already had a run)');
    const ids = (await runsOf('daily_bf')).filter((r) => r.run_type === 'backfill').map((r) => r.dag_run_id);
    expect(ids).toEqual([
      'backfill__2026-01-03T00:00:00.000Z',
      'backfill__2026-01-04T00:00:00.000Z',
      'backfill__2026-01-05T00:00:00.000Z',
      'backfill__2026-01-06T00:00:00.000Z',
      'backfill__2026-01-07T00:00:00.000Z',
      'backfill__2026-01-08T00:00:00.000Z',
    ]);
    const list = await cli('dags', 'backfills', 'daily_bf', '--json');
    const rows = JSON.parse(list.out[0]) as { backfill: { id: number; state: string }; created: number; success: number }[];
    expect(rows.map((r) => [r.backfill.id, r.backfill.state, r.created, r.success])).toEqual([
      [3, 'completed', 2, 2],
      [2, 'completed', 0, 0],
      [1, 'completed', 4, 4],
    ]);
  });

  it('backfills a paused catchup DAG over the API without creating any scheduled run', async () => {
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${pf.api!.url}${path}`, { ...init, headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' } });
    const res = await api('/api/v1/backfills', { method: 'POST', body: JSON.stringify({ dag_id: 'paused_bf', from_date: '2026-03-01', to_date: '2026-03-03T12:00:00Z', dag_run_conf: { why: 'fix' } }) });
    expect(res.status).toBe(200);
    const created = (await res.json()) as { id: number; total: number; state: string };
    expect([created.total, created.state]).toEqual([3, 'running']);
    let progress: { state: string; progress: { created: number; success: number; done: boolean } } | undefined;
    for (let i = 0; i < 200; i++) {
      progress = (await (await api(`/api/v1/backfills/${created.id}`)).json()) as typeof progress;
      if (progress!.progress.done) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect([progress!.state, progress!.progress.created, progress!.progress.success]).toEqual(['completed', 3, 3]);
    const runs = await runsOf('paused_bf');
    expect(runs.map((r) => [r.dag_run_id, r.run_type, r.state, r.conf])).toEqual([
      ['backfill__2026-03-01T06:00:00.000Z', 'backfill', 'success', { why: 'fix' }],
      ['backfill__2026-03-02T06:00:00.000Z', 'backfill', 'success', { why: 'fix' }],
      ['backfill__2026-03-03T06:00:00.000Z', 'backfill', 'success', { why: 'fix' }],
    ]);
    // max_active_runs 1: the three runs ran one after another.
    expect(maxOverlap(runs.map((r) => [r.queued_at, r.end_date]))).toBe(1);
    expect((await pf.store.getDagMeta('paused_bf'))!.is_paused).toBe(true);

    const bad = await api('/api/v1/backfills', { method: 'POST', body: JSON.stringify({ dag_id: 'paused_bf', from_date: '2026-03-05', to_date: '2026-03-01' }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { detail: string }).detail).toBe(
      "DAG 'paused_bf' (" + (await pf.store.getDag('paused_bf'))!.file + '): backfill --from 2026-03-05T00:00:00.000Z is after --to 2026-03-01T00:00:00.000Z; swap them',
    );
    const missing = await api('/api/v1/backfills', { method: 'POST', body: JSON.stringify({ dag_id: 'nope', from_date: '2026-03-01', to_date: '2026-03-02' }) });
    expect(missing.status).toBe(404);
  });

  it('a cancelled backfill creates no more runs; the runs it created finish', async () => {
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${pf.api!.url}${path}`, { ...init, headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' } });
    const res = await api('/api/v1/backfills', { method: 'POST', body: JSON.stringify({ dag_id: 'daily_bf', from_date: '2026-02-01', to_date: '2026-02-06' }) });
    const b = (await res.json()) as { id: number };
    const progress = async () => (await (await api(`/api/v1/backfills/${b.id}`)).json()) as { state: string; progress: { created: number; success: number; done: boolean } };
    // max_active_runs 2: the first runs are created at once; cancel before all six exist.
    for (let i = 0; i < 100 && (await progress()).progress.created === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await cli('dags', 'backfill-cancel', String(b.id))).out).toEqual([`backfill ${b.id} of daily_bf: cancelled`]);
    const atCancel = (await progress()).progress.created;
    expect(atCancel).toBeGreaterThanOrEqual(1);
    expect(atCancel).toBeLessThanOrEqual(2);
    for (let i = 0; i < 200 && !(await progress()).progress.done; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 400)); // a few scheduler ticks with free slots
    const feb = (await runsOf('daily_bf')).filter((r) => r.logical_date.startsWith('2026-02'));
    expect(feb.map((r) => [r.run_type, r.state])).toEqual(Array(atCancel).fill(['backfill', 'success']));
    expect(feb[0].dag_run_id).toBe('backfill__2026-02-01T00:00:00.000Z');
    const p = await progress();
    expect([p.state, p.progress.created, p.progress.success, p.progress.done]).toEqual(['cancelled', atCancel, atCancel, true]);
  });

  it('refuses a backfill of a DAG without schedule, and a reversed range, with what to do', async () => {
    await expect(cli('dags', 'backfill', 'manual_only', '--from', '2026-01-01', '--to', '2026-01-02')).rejects.toThrow(
      /backfill needs a schedule, but this DAG has none \(schedule: null\); trigger runs manually instead/,
    );
    await expect(cli('dags', 'backfill', 'daily_bf', '--from', 'yesterday', '--to', '2026-01-02')).rejects.toThrow(
      '--from "yesterday" is not a date; write an ISO date such as 2026-01-01 or 2026-01-01T00:00:00Z',
    );
    expect((await pf.store.listRuns('manual_only')).length).toBe(0);
  });
});
