/**
 * Timetables: when a DAG's scheduled runs fire and which data interval each covers.
 *
 * Semantics follow Airflow: the run for data interval [start, end) is created once `end` has
 * passed, and its logical date is `start`. Everything is a pure function of its inputs (no
 * Redis, no clock): the scheduler passes `now`.
 *
 * @example
 * ```ts
 * const tt = timetableFor({ cron: '30 2 * * *', timezone: 'Europe/Berlin', datasets: null });
 * tt?.next(new Date('2026-03-28T12:00:00Z')); // 2026-03-29T01:30:00Z (03:30 CEST, see the DST policy)
 * tt?.describe();                             // "at 02:30 every day, Europe/Berlin"
 * ```
 */

/** A half-open span [start, end) of data a run processes; `start` is the run's logical date. */
export interface DataInterval {
  start: Date;
  end: Date;
}

export interface Timetable {
  /** Fire times strictly after t (next(t) > t for every t). */
  next(t: Date): Date;
  /** The data interval that starts at the first fire time >= t. */
  intervalStartingAtOrAfter(t: Date): DataInterval;
  /** The latest interval whose end <= now, or null. */
  latestCompleted(now: Date): DataInterval | null;
  /** Human description for `dags list` ("at 02:30 every day, Europe/Berlin"). */
  describe(): string;
}

export { ScheduleError, timetableFor, validateSchedule, parseSchedule, type ParsedSchedule } from './schedule-parser.ts';
export { runsDue, backfillIntervals, manualInterval, nextDueInterval, MAX_BACKFILL_INTERVALS } from './run-planning.ts';
export type { RunsDueInput } from './run-planning.ts';
