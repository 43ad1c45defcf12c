import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import pino from 'pino';
import { dag } from '../../src/dag/dag.ts';
import type { DagOptions } from '../../src/dag/dag.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';
import { StateStore } from '../../src/state/store.ts';
import { taskQueue } from '../../src/worker/jobs.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A scheduler whose clock the test sets; no worker, so created runs stay put. */
async function schedulerFor(options: DagOptions) {
  const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const prefix = uniquePrefix('cron');
  const store = new StateStore(redis, prefix);
  const queue = taskQueue(redis, prefix);
  const spec = dag(options, (d) => {
    d.task('only', async () => 1);
  }).toSpec('dags/x.ts', 'h');
  await store.putDag(spec);
  let now = new Date(0);
  const scheduler = new Scheduler({ store, queue, logger: pino({ level: 'silent' }), intervalMs: 1000, parallelism: 32, retentionDays: 30, now: () => now });
  cleanups.push(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    redis.disconnect();
  });
  return {
    store,
    async at(iso: string) {
      now = new Date(iso);
      await scheduler.tick();
      return (await store.listRuns(spec.dag_id, { limit: 1000 })).reverse();
    },
  };
}

const interval = (r: { logical_date: string; data_interval_start: string; data_interval_end: string; run_type: string }) => [
  r.run_type,
  r.logical_date,
  r.data_interval_start,
  r.data_interval_end,
];

describe('cron runs follow Airflow interval semantics', () => {
  it('creates the run for [start, end) once the interval has ended, with logical date = start', async () => {
    const s = await schedulerFor({ dag_id: 'daily', schedule: '0 3 * * *', start_date: '2026-06-01', catchup: true, max_active_runs: 100 });
    expect(await s.at('2026-06-01T03:00:00Z')).toEqual([]);
    expect(await s.at('2026-06-02T02:59:59Z')).toEqual([]);
    const runs = await s.at('2026-06-02T03:00:00Z');
    expect(runs.map(interval)).toEqual([['scheduled', '2026-06-01T03:00:00.000Z', '2026-06-01T03:00:00.000Z', '2026-06-02T03:00:00.000Z']]);
    expect(runs[0].dag_run_id).toBe('scheduled__2026-06-01T03:00:00.000Z');
  });

  it('catchup=true creates every missed interval oldest first, bounded by max_active_runs', async () => {
    const s = await schedulerFor({ dag_id: 'hourly', schedule: '@hourly', start_date: '2026-06-01T00:00:00Z', catchup: true, max_active_runs: 3 });
    const runs = await s.at('2026-06-01T05:30:00Z');
    expect(runs.map((r) => r.logical_date)).toEqual(['2026-06-01T00:00:00.000Z', '2026-06-01T01:00:00.000Z', '2026-06-01T02:00:00.000Z']);
  });

  it('catchup=false stopped for five intervals creates one run, for the latest completed interval', async () => {
    const s = await schedulerFor({ dag_id: 'nocatch', schedule: '@hourly', start_date: '2026-06-01T00:00:00Z', catchup: false });
    expect((await s.at('2026-06-01T01:00:00Z')).map((r) => r.logical_date)).toEqual(['2026-06-01T00:00:00.000Z']);
    // Scheduler down from 01:00 to 06:10: five intervals passed.
    const runs = await s.at('2026-06-01T06:10:00Z');
    expect(runs.map((r) => r.logical_date)).toEqual(['2026-06-01T00:00:00.000Z', '2026-06-01T05:00:00.000Z']);
    expect((await s.at('2026-06-01T06:20:00Z')).length).toBe(2);
  });

  it("'30 2 * * *' in Europe/Berlin gives one run on each DST change day, at 01:30Z and 00:30Z", async () => {
    const s = await schedulerFor({ dag_id: 'berlin', schedule: '30 2 * * *', timezone: 'Europe/Berlin', start_date: '2026-03-27T00:00:00Z', catchup: true, max_active_runs: 1000 });
    const runs = await s.at('2026-10-27T12:00:00Z');
    const starts = runs.map((r) => r.logical_date);
    expect(starts.filter((t) => t.startsWith('2026-03-29'))).toEqual(['2026-03-29T01:30:00.000Z']);
    expect(starts.filter((t) => t.startsWith('2026-10-25'))).toEqual(['2026-10-25T00:30:00.000Z']);
    expect(new Set(starts).size).toBe(starts.length);
  });

  it('a paused DAG creates no runs', async () => {
    const s = await schedulerFor({ dag_id: 'paused', schedule: '@hourly', start_date: '2026-06-01T00:00:00Z', catchup: true });
    await s.store.setPaused('paused', true);
    expect(await s.at('2026-06-01T05:00:00Z')).toEqual([]);
    await s.store.setPaused('paused', false);
    expect((await s.at('2026-06-01T05:00:00Z')).length).toBe(5);
  });
});
