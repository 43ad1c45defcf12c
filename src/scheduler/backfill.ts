/**
 * Backfill: runs for exactly the data intervals whose start lies in [from, to], created as
 * `max_active_runs` allows (oldest first), independent of `catchup` and of whether the DAG is
 * paused, and without touching the cron clock (backfill runs are not scheduled runs).
 *
 * A backfill is a record in Redis that every scheduler tick advances (and `podflow dags
 * backfill` too, while it waits), so it survives the CLI exiting and several schedulers never
 * create a run twice: the pending intervals are popped atomically under a short lease, and
 * `(dag_id, logical_date)` is unique anyway.
 *
 * @example
 * const bf = await createBackfill(store, dag, { from: '2026-01-01', to: '2026-01-31' });
 * await advanceBackfills(store);              // what each scheduler tick does
 * await backfillProgress(store, bf.id);       // { created: 16, running: 16, success: 0, … }
 */
import { randomUUID } from 'node:crypto';
import type { DagRunRecord, DagSpec, Json } from '../dag/types.ts';
import { backfillIntervals, type DataInterval } from '../schedule/timetable.ts';
import { ScheduleError } from '../schedule/schedule-parser.ts';
import { DagRunExistsError, type StateStore } from '../state/store.ts';
import { triggerDagRun } from './trigger.ts';

export type BackfillState = 'running' | 'completed' | 'cancelled';

/** A backfill as stored and returned by the API (field names as Airflow 3's backfill). */
export interface BackfillRecord {
  id: number;
  dag_id: string;
  from_date: string;
  to_date: string;
  dag_run_conf: Record<string, Json>;
  /** running: runs still to create; completed: every run created; cancelled: no more runs. */
  state: BackfillState;
  /** Intervals in the range. */
  total: number;
  /** Intervals that already had a run (any type) and were skipped. */
  existing: number;
  created_at: string;
  completed_at: string | null;
}

export interface BackfillProgress {
  backfill: BackfillRecord;
  /** Intervals still waiting for a free run slot. */
  pending: number;
  /** Runs this backfill created, by state. */
  created: number;
  queued: number;
  running: number;
  success: number;
  failed: number;
  /** Every run created and finished (or the backfill was cancelled and its runs finished). */
  done: boolean;
}

/** A backfill request the user must fix (bad range, no schedule, unknown id). */
export class BackfillError extends Error {
  readonly code = 'BACKFILL_INVALID';
}

const keys = (store: StateStore) => {
  const p = store.keys.prefix;
  return {
    seq: `${p}:backfill_seq`,
    record: (id: number) => `${p}:backfill:${id}`,
    /** Sorted set: logical date ms -> "startISO|endISO" still to create. */
    pending: (id: number) => `${p}:backfill_pending:${id}`,
    /** Sorted set: logical date ms -> run id created by this backfill. */
    runs: (id: number) => `${p}:backfill_runs:${id}`,
    active: `${p}:backfills_active`,
    /** Sorted set of a DAG's backfill ids by id. */
    byDag: (dagId: string) => `${p}:backfills:${dagId}`,
    lease: (id: number) => `${p}:lease:backfill:${id}`,
  };
};

function parseDate(v: string | Date, what: string): Date {
  const d = v instanceof Date ? v : new Date(v);
  if (Number.isNaN(d.getTime())) throw new BackfillError(`${what} ${JSON.stringify(v)} is not a date; write an ISO date such as 2026-01-01 or 2026-01-01T00:00:00Z`);
  return d;
}

/** The run id of a backfill run: `backfill__<logical date ISO>`. */
export function backfillRunId(logical: Date): string {
  return `backfill__${logical.toISOString()}`;
}

/**
 * Plan a backfill of `dag` over [from, to] (interval starts, both inclusive) and store it.
 * Intervals that already have a run are skipped, so running the same backfill again creates
 * only what is missing. Runs are created by {@link advanceBackfills}.
 * @throws BackfillError on a bad range or a DAG without a schedule.
 */
export async function createBackfill(
  store: StateStore,
  dag: DagSpec,
  opts: { from: string | Date; to: string | Date; conf?: Record<string, Json> },
): Promise<BackfillRecord> {
  const from = parseDate(opts.from, '--from');
  const to = parseDate(opts.to, '--to');
  let intervals: DataInterval[];
  try {
    intervals = backfillIntervals(dag.schedule, from, to, {
      start_date: dag.start_date ? new Date(dag.start_date) : null,
      end_date: dag.end_date ? new Date(dag.end_date) : null,
    });
  } catch (e) {
    if (e instanceof ScheduleError) throw new BackfillError(`DAG '${dag.dag_id}' (${dag.file}): ${e.message}`);
    throw e;
  }
  const k = keys(store);
  const id = await store.redis.incr(k.seq);
  const taken = intervals.length ? await store.redis.hmget(store.keys.runsByDate(dag.dag_id), ...intervals.map((iv) => iv.start.toISOString())) : [];
  const todo = intervals.filter((_, i) => taken[i] === null);
  const record: BackfillRecord = {
    id,
    dag_id: dag.dag_id,
    from_date: from.toISOString(),
    to_date: to.toISOString(),
    dag_run_conf: opts.conf ?? {},
    state: todo.length ? 'running' : 'completed',
    total: intervals.length,
    existing: intervals.length - todo.length,
    created_at: new Date().toISOString(),
    completed_at: todo.length ? null : new Date().toISOString(),
  };
  const m = store.redis.multi().set(k.record(id), JSON.stringify(record)).zadd(k.byDag(dag.dag_id), id, String(id));
  // Chunked: a year of 5-minute intervals is 100k members.
  for (let i = 0; i < todo.length; i += 1000) {
    const args: (string | number)[] = [];
    for (const iv of todo.slice(i, i + 1000)) args.push(iv.start.getTime(), `${iv.start.toISOString()}|${iv.end.toISOString()}`);
    m.zadd(k.pending(id), ...args);
  }
  if (todo.length) m.sadd(k.active, String(id));
  await m.exec();
  return record;
}

export async function getBackfill(store: StateStore, id: number): Promise<BackfillRecord | null> {
  const raw = await store.redis.get(keys(store).record(id));
  return raw ? (JSON.parse(raw) as BackfillRecord) : null;
}

/** A DAG's backfills (or every DAG's), newest first. */
export async function listBackfills(store: StateStore, dagId?: string): Promise<BackfillRecord[]> {
  const k = keys(store);
  let ids: number[];
  if (dagId) ids = (await store.redis.zrevrange(k.byDag(dagId), 0, -1)).map(Number);
  else {
    const last = Number((await store.redis.get(k.seq)) ?? 0);
    ids = Array.from({ length: last }, (_, i) => last - i);
  }
  const out: BackfillRecord[] = [];
  for (const id of ids) {
    const b = await getBackfill(store, id);
    if (b) out.push(b);
  }
  return out;
}

async function saveState(store: StateStore, b: BackfillRecord, state: BackfillState): Promise<void> {
  const k = keys(store);
  b.state = state;
  b.completed_at = new Date().toISOString();
  await store.redis.multi().set(k.record(b.id), JSON.stringify(b)).srem(k.active, String(b.id)).del(k.pending(b.id)).exec();
}

const LEASE_MS = 10_000;

/** Release a lease only if it is still ours. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Stop creating runs for a backfill; runs it already created carry on. Takes the backfill's
 * lease, so a scheduler creating its runs at this moment finishes first and none follows.
 */
export async function cancelBackfill(store: StateStore, id: number): Promise<BackfillRecord> {
  const k = keys(store);
  const token = randomUUID();
  for (let i = 0; (await store.redis.set(k.lease(id), token, 'PX', LEASE_MS, 'NX')) !== 'OK'; i++) {
    if (i * 50 > LEASE_MS) break; // the holder died; its lease has expired by now
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    const b = await getBackfill(store, id);
    if (!b) throw new BackfillError(`there is no backfill ${id}; list backfills with \`podflow dags backfills <dag_id>\``);
    if (b.state === 'running') await saveState(store, b, 'cancelled');
    return b;
  } finally {
    await store.redis.eval(RELEASE, 1, k.lease(id), token);
  }
}

/**
 * Create the next runs of every active backfill, as many as each DAG's `max_active_runs`
 * leaves free (queued and running runs of any type count), oldest interval first. Returns the
 * runs created. Called by each scheduler tick; safe to call from several processes at once.
 */
export async function advanceBackfills(store: StateStore, opts: { onError?: (e: unknown, id: number) => void } = {}): Promise<DagRunRecord[]> {
  const k = keys(store);
  const ids = (await store.redis.smembers(k.active)).map(Number).sort((a, b) => a - b);
  if (ids.length === 0) return [];
  const activeByDag = new Map<string, number>();
  for (const a of await store.activeRuns()) activeByDag.set(a.dag_id, (activeByDag.get(a.dag_id) ?? 0) + 1);
  const created: DagRunRecord[] = [];
  for (const id of ids) {
    const token = randomUUID();
    if ((await store.redis.set(k.lease(id), token, 'PX', LEASE_MS, 'NX')) !== 'OK') continue;
    try {
      const b = await getBackfill(store, id);
      if (!b || b.state !== 'running') {
        await store.redis.srem(k.active, String(id));
        continue;
      }
      const dag = await store.getDag(b.dag_id);
      if (!dag) continue; // DAG file removed or broken: wait until it is back
      let active = activeByDag.get(dag.dag_id) ?? 0;
      while (active < dag.max_active_runs) {
        const popped = await store.redis.zpopmin(k.pending(id), 1);
        if (popped.length === 0) break;
        const [startIso, endIso] = popped[0].split('|');
        const start = new Date(startIso);
        try {
          const run = await triggerDagRun(store, dag, {
            run_type: 'backfill',
            dag_run_id: backfillRunId(start),
            logical_date: start,
            data_interval: { start, end: new Date(endIso) },
            conf: b.dag_run_conf,
          });
          await store.redis.zadd(k.runs(id), start.getTime(), run.dag_run_id);
          created.push(run);
          active++;
        } catch (e) {
          // A run for that logical date appeared since the plan (another backfill, a trigger):
          // the interval is covered, so move on (idempotent re-runs rely on this).
          if (e instanceof DagRunExistsError) {
            b.existing++;
            await store.redis.set(k.record(id), JSON.stringify(b));
            continue;
          }
          // Put it back so the next tick retries it.
          await store.redis.zadd(k.pending(id), start.getTime(), popped[0]);
          throw e;
        }
      }
      activeByDag.set(dag.dag_id, active);
      if ((await store.redis.zcard(k.pending(id))) === 0) await saveState(store, b, 'completed');
    } catch (e) {
      opts.onError?.(e, id);
    } finally {
      await store.redis.eval(RELEASE, 1, k.lease(id), token);
    }
  }
  return created;
}

/** What a backfill has done so far: pending intervals and its runs by state. */
export async function backfillProgress(store: StateStore, id: number): Promise<BackfillProgress> {
  const b = await getBackfill(store, id);
  if (!b) throw new BackfillError(`there is no backfill ${id}; list backfills with \`podflow dags backfills <dag_id>\``);
  const k = keys(store);
  const [pending, runIds] = await Promise.all([store.redis.zcard(k.pending(id)), store.redis.zrange(k.runs(id), 0, -1)]);
  const runs = await store.getRuns(b.dag_id, runIds);
  const count = (s: string) => runs.filter((r) => r.state === s).length;
  const p = { created: runs.length, queued: count('queued'), running: count('running'), success: count('success'), failed: count('failed') };
  return { backfill: b, pending, ...p, done: b.state !== 'running' && p.queued + p.running === 0 };
}

/** One progress line: "backfill 3 of daily: 4/6 created, 1 queued, 2 running, 1 succeeded, 0 failed". */
export function describeProgress(p: BackfillProgress): string {
  const b = p.backfill;
  const toCreate = b.total - b.existing;
  return (
    `backfill ${b.id} of ${b.dag_id}: ${p.created}/${toCreate} created, ${p.queued} queued, ${p.running} running, ${p.success} succeeded, ${p.failed} failed` +
    (b.existing ? ` (${b.existing} interval(s) already had a run)` : '') +
    (b.state === 'cancelled' ? ' [cancelled]' : '')
  );
}
