/**
 * Which data intervals become runs: scheduled (catchup or not), backfill and manual.
 * Pure functions; the scheduler passes the clock and what already exists in Redis.
 */
import type { ScheduleSpec } from '../dag/types.ts';
import { ScheduleError, timetableFor } from './schedule-parser.ts';
import type { DataInterval, Timetable } from './timetable.ts';

/** A backfill creating more runs than this is refused, so a typo in `--from` cannot flood Redis. */
export const MAX_BACKFILL_INTERVALS = 100_000;

export interface RunsDueInput {
  schedule: ScheduleSpec;
  start_date: Date | null;
  end_date: Date | null;
  catchup: boolean;
  /** Latest existing scheduled run's logical date (any state), or null when there is none. */
  lastScheduledLogicalDate: Date | null;
  now: Date;
  /** `max_active_runs` minus the DAG's active runs. */
  limit: number;
}

function ms(d: Date): number {
  return d.getTime();
}

/** The interval starting at the latest fire time <= t, or null. */
function intervalStartingAtOrBefore(tt: Timetable, t: Date): DataInterval | null {
  const ended = tt.latestCompleted(t);
  if (!ended) return null;
  return { start: ended.end, end: tt.next(ended.end) };
}

/**
 * The scheduled runs to create now, oldest first (Airflow semantics: the run for
 * [start, end) is due once end <= now; its logical date is start).
 *
 * - Bounds: an interval's start lies in [start_date, end_date] (both inclusive, either may be
 *   null); no run is ever created before `start_date`.
 * - `catchup: true`: every interval after the last scheduled run (or from `start_date`) whose
 *   end has passed, oldest first, at most `limit`.
 * - `catchup: false`: only the latest completed interval, also after the scheduler or the DAG
 *   was stopped for many intervals; nothing when that interval (or a later one) was already
 *   created. When `end_date` has passed, the latest interval starting at or before it.
 *   A DAG without `start_date` behaves this way too, whatever `catchup` says.
 * - Nothing when `limit <= 0` or the schedule is null.
 *
 * @throws ScheduleError when the schedule is invalid.
 */
export function runsDue(input: RunsDueInput): DataInterval[] {
  const { schedule, start_date, end_date, catchup, lastScheduledLogicalDate: last, now, limit } = input;
  if (limit <= 0) return [];
  const tt = timetableFor(schedule, start_date);
  if (!tt) return [];
  const beforeEnd = (iv: DataInterval) => end_date === null || ms(iv.start) <= ms(end_date);

  if (catchup && start_date) {
    let iv = tt.intervalStartingAtOrAfter(start_date);
    if (last && ms(last) >= ms(iv.start)) iv = tt.intervalStartingAtOrAfter(new Date(ms(last) + 1));
    const due: DataInterval[] = [];
    while (due.length < limit && ms(iv.end) <= ms(now) && beforeEnd(iv)) {
      due.push(iv);
      iv = { start: iv.end, end: tt.next(iv.end) };
    }
    return due;
  }

  let latest = tt.latestCompleted(now);
  if (latest && end_date && !beforeEnd(latest)) latest = intervalStartingAtOrBefore(tt, end_date);
  if (!latest) return [];
  if (start_date && ms(latest.start) < ms(start_date)) return [];
  if (last && ms(latest.start) <= ms(last)) return [];
  return [latest];
}

/**
 * The interval of the next scheduled run (for "next run" in `dags list` and the UI): the one
 * `runsDue` would create now if any, else the one whose end the scheduler waits for; null when
 * the schedule is null or `end_date` has passed.
 */
export function nextDueInterval(input: Omit<RunsDueInput, 'limit'>): DataInterval | null {
  const due = runsDue({ ...input, limit: 1 });
  if (due.length > 0) return due[0];
  const { schedule, start_date, end_date, catchup, lastScheduledLogicalDate: last, now } = input;
  const tt = timetableFor(schedule, start_date);
  if (!tt) return null;
  const floors: number[] = [];
  if (start_date) floors.push(ms(start_date));
  if (last) floors.push(ms(last) + 1);
  if (!catchup || !start_date) {
    // Nothing due: the latest completed interval exists already, so the next one follows it.
    const latest = tt.latestCompleted(now);
    if (latest) floors.push(ms(latest.start) + 1);
  }
  const iv = tt.intervalStartingAtOrAfter(new Date(floors.length ? Math.max(...floors) : ms(now)));
  return end_date && ms(iv.start) > ms(end_date) ? null : iv;
}

/**
 * Backfill: exactly the intervals whose start lies in [from, to] (inclusive), independent of
 * `catchup` and of `now`, bounded by `start_date`/`end_date`; oldest first.
 * The caller creates them respecting `max_active_runs` and skips logical dates that exist.
 * @throws ScheduleError when the schedule is null or invalid, `from` is after `to`, or the range
 *   holds more than MAX_BACKFILL_INTERVALS intervals.
 */
export function backfillIntervals(
  schedule: ScheduleSpec,
  from: Date,
  to: Date,
  bounds: { start_date: Date | null; end_date: Date | null },
): DataInterval[] {
  if (ms(from) > ms(to)) {
    throw new ScheduleError(`backfill --from ${from.toISOString()} is after --to ${to.toISOString()}; swap them`);
  }
  const tt = timetableFor(schedule, bounds.start_date);
  if (!tt) {
    throw new ScheduleError('backfill needs a schedule, but this DAG has none (schedule: null); trigger runs manually instead');
  }
  const lo = bounds.start_date && ms(bounds.start_date) > ms(from) ? bounds.start_date : from;
  const hi = bounds.end_date && ms(bounds.end_date) < ms(to) ? bounds.end_date : to;
  const out: DataInterval[] = [];
  let iv = tt.intervalStartingAtOrAfter(lo);
  while (ms(iv.start) <= ms(hi)) {
    if (out.length >= MAX_BACKFILL_INTERVALS) {
      throw new ScheduleError(
        `backfill from ${from.toISOString()} to ${to.toISOString()} would create more than ${MAX_BACKFILL_INTERVALS} runs; narrow --from/--to`,
      );
    }
    out.push(iv);
    iv = { start: iv.end, end: tt.next(iv.end) };
  }
  return out;
}

/**
 * The data interval of a manual trigger at time t: [t, t], logical date t.
 *
 * Choice: as in Airflow, the logical date of a manual run is the trigger time. Airflow 2 also
 * infers a schedule-aligned data interval for it; Podflow does not: a manual run covers no
 * scheduled interval ([t, t] is empty), so it never stands in for a scheduled run and the
 * scheduled runs around it are created as usual. (Its logical date only collides with a
 * scheduled run's when triggered exactly at a fire time; the caller refuses that duplicate.)
 */
export function manualInterval(t: Date): DataInterval {
  return { start: new Date(ms(t)), end: new Date(ms(t)) };
}
