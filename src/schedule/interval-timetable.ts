/**
 * Fixed-interval schedules ("every 15 minutes"): elapsed time, not wall-clock time, so daylight
 * saving never shifts them. Fire times are `anchor + k * step` for every integer k, where the
 * anchor is the DAG's `start_date` (the Unix epoch when it has none, which aligns
 * "every 15 minutes" to :00, :15, :30 and :45 UTC).
 */
import type { DataInterval, Timetable } from './timetable.ts';

const UNIT_MS: Record<string, number> = {
  s: 1_000, sec: 1_000, secs: 1_000, second: 1_000, seconds: 1_000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hrs: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
};

const UNIT_NAMES: [number, string][] = [
  [604_800_000, 'week'],
  [86_400_000, 'day'],
  [3_600_000, 'hour'],
  [60_000, 'minute'],
  [1_000, 'second'],
];

/** The smallest interval accepted; shorter ones would flood Redis with runs. */
export const MIN_INTERVAL_MS = 1_000;

/** Looks like a fixed-interval schedule (starts with "every"), valid or not. */
export function isIntervalSchedule(text: string): boolean {
  return /^\s*every\b/i.test(text);
}

/**
 * Parses "every 15 minutes", "every 2 hours", "every 30s", "every hour", "every 1h30m".
 * @returns the step in ms, or an error message naming the problem and what to write instead.
 */
export function parseInterval(text: string): { ms: number } | { error: string } {
  const hint =
    "write 'every <number> <unit>' with unit seconds, minutes, hours, days or weeks " +
    "(e.g. 'every 15 minutes', 'every 2 hours', 'every 30s', 'every 1h30m')";
  const body = text.trim().replace(/^every\s*/i, '').trim().toLowerCase();
  if (body === '') return { error: `schedule '${text}' names no interval; ${hint}` };
  // "every hour", "every day": a bare unit means one of it.
  if (UNIT_MS[body] !== undefined) return { ms: UNIT_MS[body] };
  const part = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*,?\s*(?:and\s+)?/gy;
  let ms = 0;
  let consumed = 0;
  for (let m = part.exec(body); m; m = part.exec(body)) {
    const unit = UNIT_MS[m[2]];
    if (unit === undefined) return { error: `schedule '${text}': unknown unit '${m[2]}'; ${hint}` };
    ms += Number(m[1]) * unit;
    consumed = part.lastIndex;
  }
  if (consumed !== body.length) return { error: `schedule '${text}' is not a fixed interval; ${hint}` };
  ms = Math.round(ms);
  if (ms < MIN_INTERVAL_MS) {
    return { error: `schedule '${text}' is shorter than one second; ${hint}` };
  }
  return { ms };
}

/** "every 15 minutes", "every 1 hour 30 minutes", "every day". */
export function formatInterval(ms: number): string {
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, name] of UNIT_NAMES) {
    const n = Math.floor(rest / unit);
    if (n > 0) {
      parts.push(`${n} ${name}${n === 1 ? '' : 's'}`);
      rest -= n * unit;
    }
  }
  if (rest > 0) parts.push(`${rest} ms`);
  if (parts.length === 1 && parts[0].startsWith('1 ')) return `every ${parts[0].slice(2)}`;
  return `every ${parts.join(' ')}`;
}

/** Fixed step from an anchor. Construct through `timetableFor`. */
export class IntervalTimetable implements Timetable {
  readonly stepMs: number;
  readonly anchorMs: number;

  constructor(stepMs: number, anchor: Date | null) {
    if (!(stepMs >= MIN_INTERVAL_MS)) throw new Error(`interval step ${stepMs} ms is below ${MIN_INTERVAL_MS} ms`);
    this.stepMs = stepMs;
    this.anchorMs = anchor ? anchor.getTime() : 0;
  }

  /** Index k of the fire time at or before t. */
  #floorIndex(tm: number): number {
    return Math.floor((tm - this.anchorMs) / this.stepMs);
  }

  #at(k: number): Date {
    return new Date(this.anchorMs + k * this.stepMs);
  }

  next(t: Date): Date {
    return this.#at(this.#floorIndex(t.getTime()) + 1);
  }

  intervalStartingAtOrAfter(t: Date): DataInterval {
    const k = Math.ceil((t.getTime() - this.anchorMs) / this.stepMs);
    return { start: this.#at(k), end: this.#at(k + 1) };
  }

  latestCompleted(now: Date): DataInterval {
    const k = this.#floorIndex(now.getTime());
    return { start: this.#at(k - 1), end: this.#at(k) };
  }

  describe(): string {
    return formatInterval(this.stepMs);
  }
}
