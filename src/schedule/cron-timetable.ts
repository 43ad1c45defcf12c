/**
 * Cron schedules evaluated on the wall clock of an IANA time zone; fire times are UTC instants.
 *
 * **Daylight-saving policy** (the README states it in these words):
 *
 * Cron expressions match the wall clock of the DAG's time zone; runs are stored and compared
 * in UTC.
 * - A wall-clock time that falls into the spring-forward gap runs once, right after the
 *   change, shifted by the length of the gap: `30 2 * * *` in Europe/Berlin runs on
 *   2026-03-29 at 03:30 CEST (01:30Z). When the shifted time coincides with another
 *   scheduled time, there is one run.
 * - A wall-clock time repeated by the fall-back runs once, at its first occurrence:
 *   `30 2 * * *` in Europe/Berlin runs on 2026-10-25 at 02:30 CEST (00:30Z) and not again at
 *   02:30 CET. This holds for every cron schedule, hourly ones included: `0 * * * *` has no
 *   run at the second 02:00, and its data interval spans two hours. For a run at every hour of
 *   elapsed time, use a fixed interval (`every 1 hour`) or the UTC time zone.
 * - The next fire time is always strictly later than the previous one: no run is created
 *   twice and time never goes backwards.
 *
 * cron-parser's own time-zone handling differs (it fires `0 * * * *` twice in the repeated
 * hour), so cron-parser only parses here; fields are matched on a zone-free wall clock
 * (cron-matcher.ts) and the time-zone resolution is ours (time-zone.ts).
 */
import { CronExpressionParser, type CronExpression } from 'cron-parser';
import type { DataInterval, Timetable } from './timetable.ts';
import { wallMatcher, type WallMatcher } from './cron-matcher.ts';
import { canonicalTimeZone, offsetAt, resolveWallTime, wallTime } from './time-zone.ts';

/** A whole day covers every real-world gap (Samoa skipped one calendar day in 2011). */
const GAP_LOOKBACK_MS = 25 * 3_600_000;
const MAX_STEPS = 100_000;

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January', 'February', 'March', 'April', 'May', 'June',
  'July', 'August', 'September', 'October', 'November', 'December',
];

/** A cron expression (five fields) in a time zone. Construct through `timetableFor`. */
export class CronTimetable implements Timetable {
  readonly expression: string;
  readonly timezone: string;
  /** The name the user wrote when it was a preset ("@daily"), for `describe`. */
  readonly preset: string | null;
  readonly #cron: CronExpression;
  readonly #matcher: WallMatcher;

  /** @throws when the expression is not valid for cron-parser; `validateSchedule` reports it kindly first. */
  constructor(expression: string, timezone: string, preset: string | null = null) {
    this.expression = expression;
    this.timezone = canonicalTimeZone(timezone);
    this.preset = preset;
    // 'UTC' with wall times encoded as UTC: cron-parser matches fields without any DST logic.
    this.#cron = CronExpressionParser.parse(expression, { tz: 'UTC', currentDate: new Date(0) });
    this.#matcher = wallMatcher(this.#cron, expression);
  }

  /** First wall time matching the fields strictly after wall time `L`. */
  #nextWall(L: number): number {
    return this.#matcher.next(L);
  }

  /** Last wall time matching the fields strictly before wall time `L`. */
  #prevWall(L: number): number {
    return this.#matcher.prev(L);
  }

  next(t: Date): Date {
    const tm = t.getTime();
    const tz = this.timezone;
    // Just after a spring-forward, wall times inside the gap (earlier than the wall clock now
    // shows) resolve to instants after t; start matching that far back.
    let lookBack = 0;
    const gap = offsetAt(tm, tz) - offsetAt(tm - GAP_LOOKBACK_MS, tz);
    if (gap > 0 && offsetAt(tm - gap, tz) < offsetAt(tm, tz)) lookBack = gap;

    let L = wallTime(tm, tz) - lookBack;
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < MAX_STEPS; i++) {
      L = this.#nextWall(L);
      const r = resolveWallTime(L, tz);
      if (r.instant > tm) {
        best = Math.min(best, r.instant);
        // Later wall times resolve later than a non-gap one; a gap time may still be beaten
        // by the first times after the gap, so keep going past those.
        if (!r.inGap) return new Date(best);
      }
      // Wall times of a fall-back's repeated hour resolve to the first pass (<= t): skipped.
    }
    throw new Error(
      `cron '${this.expression}' (${tz}) found no fire time after ${t.toISOString()} within ${MAX_STEPS} steps; ` +
        'this is a bug in Podflow, please report the expression and time zone',
    );
  }

  /** The latest fire time <= t. */
  prevAtOrBefore(t: Date): Date {
    const tm = t.getTime();
    const tz = this.timezone;
    // In the second pass of a fall-back's repeated hour the wall clock shows times already
    // passed once: wall times up to the fall-back amount ahead resolved (first pass) before t.
    let lookAhead = 0;
    const fallBack = offsetAt(tm - GAP_LOOKBACK_MS, tz) - offsetAt(tm, tz);
    if (fallBack > 0 && offsetAt(tm - fallBack, tz) > offsetAt(tm, tz)) lookAhead = fallBack;

    let L = wallTime(tm, tz) + lookAhead + 1;
    let best = Number.NEGATIVE_INFINITY;
    let stopBelow = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < MAX_STEPS; i++) {
      L = this.#prevWall(L);
      if (L < stopBelow) return new Date(best);
      const r = resolveWallTime(L, tz);
      if (r.instant <= tm) {
        best = Math.max(best, r.instant);
        if (!r.inGap && stopBelow === Number.NEGATIVE_INFINITY) {
          // Earlier non-gap wall times resolve earlier; only the wall times of a spring-forward
          // gap just before this one (shifted after the change) can still resolve later.
          const gap = offsetAt(r.instant, tz) - offsetAt(r.instant - GAP_LOOKBACK_MS, tz);
          if (gap <= 0) return new Date(best);
          stopBelow = L - gap;
        }
      }
    }
    throw new Error(
      `cron '${this.expression}' (${tz}) found no fire time before ${t.toISOString()} within ${MAX_STEPS} steps; ` +
        'this is a bug in Podflow, please report the expression and time zone',
    );
  }

  intervalStartingAtOrAfter(t: Date): DataInterval {
    const start = this.next(new Date(t.getTime() - 1));
    return { start, end: this.next(start) };
  }

  latestCompleted(now: Date): DataInterval {
    const end = this.prevAtOrBefore(now);
    return { start: this.prevAtOrBefore(new Date(end.getTime() - 1)), end };
  }

  describe(): string {
    return `${describeFields(this.#cron, this.expression)}, ${this.timezone}`;
  }
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

function joinWords(words: string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

function weekdayPhrase(days: number[]): string {
  const set = [...new Set(days.map((d) => d % 7))].sort((a, b) => a - b);
  if (set.length === 5 && set.join() === '1,2,3,4,5') return 'Monday to Friday';
  if (set.length === 2 && set.join() === '0,6') return 'Saturday and Sunday';
  return joinWords(set.map((d) => WEEKDAYS[d]));
}

/** Plain-English wording for common shapes; anything else is shown as the expression itself. */
function describeFields(cron: CronExpression, expression: string): string {
  const f = cron.fields;
  const minutes = f.minute.values as number[];
  const hours = f.hour.values as number[];
  const domAll = f.dayOfMonth.isWildcard;
  const monAll = f.month.isWildcard;
  const dowAll = f.dayOfWeek.isWildcard;
  const plain = (vals: (number | string)[]) => vals.every((v) => typeof v === 'number');
  const fallback = `cron '${expression}'`;
  if (!plain(f.dayOfMonth.values) || !plain(f.dayOfWeek.values) || /#/.test(expression)) return fallback;

  if (domAll && monAll && dowAll && hours.length === 24) {
    if (minutes.length === 60) return 'every minute';
    const step = minutes.length > 1 ? minutes[1] - minutes[0] : 0;
    if (minutes[0] === 0 && step > 0 && minutes.every((m, i) => m === i * step) && 60 % step === 0) {
      return `every ${step} minutes`;
    }
    if (minutes.length === 1) return `at minute ${minutes[0]} of every hour`;
    return fallback;
  }
  if (minutes.length !== 1 || hours.length !== 1) return fallback;
  const at = `at ${pad2(hours[0])}:${pad2(minutes[0])}`;
  const doms = f.dayOfMonth.values as number[];
  const months = f.month.values as number[];
  if (domAll && monAll && dowAll) return `${at} every day`;
  if (domAll && monAll && !dowAll) return `${at} on ${weekdayPhrase(f.dayOfWeek.values as number[])}`;
  if (!domAll && dowAll && doms.length === 1) {
    if (monAll) return `${at} on day ${doms[0]} of every month`;
    if (months.length === 1) return `${at} on ${doms[0]} ${MONTHS[months[0] - 1]} every year`;
  }
  return fallback;
}
