/**
 * Turns a DAG's `schedule` (cron, preset or fixed interval, plus time zone) into a Timetable,
 * and explains in plain words what is wrong with one that does not parse.
 */
import { CronExpressionParser } from 'cron-parser';
import type { ScheduleSpec } from '../dag/types.ts';
import { CronTimetable } from './cron-timetable.ts';
import { IntervalTimetable, isIntervalSchedule, parseInterval } from './interval-timetable.ts';
import { CRON_PRESETS, presetExpression } from './presets.ts';
import { isValidTimeZone, knownTimeZones } from './time-zone.ts';
import type { Timetable } from './timetable.ts';

/** A schedule that cannot be used; `message` says what is wrong and what to write instead. */
export class ScheduleError extends Error {
  readonly code = 'SCHEDULE_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleError';
  }
}

export type ParsedSchedule =
  | { kind: 'cron'; expression: string; preset: string | null }
  | { kind: 'interval'; ms: number };

const CRON_HINT =
  "write five fields 'minute hour day-of-month month day-of-week' (e.g. '30 2 * * *'), " +
  `a preset (${Object.keys(CRON_PRESETS).join(', ')}) or a fixed interval (e.g. 'every 15 minutes')`;

/** Parses the `cron` text of a schedule; `{ error }` explains a problem. */
export function parseSchedule(cron: string): ParsedSchedule | { error: string } {
  const text = cron.trim();
  if (text === '') return { error: `schedule is empty; ${CRON_HINT}, or set the schedule to null for manual runs only` };
  if (text.startsWith('@')) {
    const expression = presetExpression(text);
    if (expression) return { kind: 'cron', expression, preset: text.toLowerCase() };
    if (text.toLowerCase() === '@once') {
      return { error: "schedule '@once' is not supported; set the schedule to null and trigger the DAG once (podflow dags trigger)" };
    }
    return { error: `schedule '${text}' is not a known preset; use one of ${Object.keys(CRON_PRESETS).join(', ')}` };
  }
  if (isIntervalSchedule(text)) {
    const r = parseInterval(text);
    return 'error' in r ? r : { kind: 'interval', ms: r.ms };
  }
  const fields = text.split(/\s+/);
  if (fields.length === 6) {
    return { error: `schedule '${text}' has six fields (seconds are not supported); ${CRON_HINT}; for sub-minute runs write 'every 30 seconds'` };
  }
  if (fields.length !== 5) return { error: `schedule '${text}' has ${fields.length} field(s), not five; ${CRON_HINT}` };
  if (fields.some((f) => /(^|[,/(-])h(?![a-z])/i.test(f))) {
    // 'H' (hashed values) picks a random minute per process: two schedulers would disagree.
    return { error: `schedule '${text}' uses 'H' (hashed values), which Podflow does not support; write a fixed number instead` };
  }
  const expression = fields.join(' ');
  try {
    const c = CronExpressionParser.parse(expression, { tz: 'UTC', currentDate: new Date(0) });
    c.next(); // expressions such as '0 0 31 2 *' parse but never fire
  } catch (err) {
    return { error: `schedule '${text}' is not a valid cron expression (${(err as Error).message}); ${CRON_HINT}` };
  }
  return { kind: 'cron', expression, preset: null };
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

function timeZoneSuggestion(timezone: string): string | null {
  const lower = timezone.toLowerCase();
  let best: string | null = null;
  let bestDistance = 4;
  for (const zone of knownTimeZones()) {
    const d = editDistance(lower, zone.toLowerCase());
    if (d < bestDistance) {
      best = zone;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * Checks a schedule before a DAG is accepted.
 * @returns null when `cron` and `timezone` are usable, else a message naming the problem and
 *   what to write instead (the loader prefixes file and DAG id and shows it as an import error).
 * @example validateSchedule('30 2 * * *', 'Europe/Berln')
 *   // "time zone 'Europe/Berln' is not an IANA time zone name (did you mean 'Europe/Berlin'?); ..."
 */
export function validateSchedule(cron: string, timezone: string): string | null {
  if (!isValidTimeZone(timezone)) {
    const hint = timeZoneSuggestion(timezone);
    return (
      `time zone '${timezone}' is not an IANA time zone name` +
      (hint ? ` (did you mean '${hint}'?)` : '') +
      "; write a name such as 'Europe/Berlin', 'America/New_York' or 'UTC'"
    );
  }
  const parsed = parseSchedule(cron);
  return 'error' in parsed ? parsed.error : null;
}

/**
 * The timetable for a schedule, or null when `schedule.cron` is null (manual runs only).
 * @param anchor where fixed intervals start counting ("every 15 minutes" fires at
 *   anchor + k * 15 min); pass the DAG's `start_date`. Default: the Unix epoch. Ignored by cron.
 * @throws ScheduleError when the schedule is invalid (see `validateSchedule`).
 */
export function timetableFor(schedule: ScheduleSpec, anchor: Date | null = null): Timetable | null {
  if (schedule.cron === null) return null;
  const key = `${schedule.cron}\u0000${schedule.timezone}\u0000${anchor ? anchor.getTime() : ''}`;
  const cached = timetables.get(key);
  if (cached) return cached;
  const problem = validateSchedule(schedule.cron, schedule.timezone);
  if (problem) throw new ScheduleError(problem);
  const parsed = parseSchedule(schedule.cron) as ParsedSchedule;
  const tt =
    parsed.kind === 'interval'
      ? new IntervalTimetable(parsed.ms, anchor)
      : new CronTimetable(parsed.expression, schedule.timezone, parsed.preset);
  if (timetables.size >= MAX_CACHED_TIMETABLES) timetables.clear();
  timetables.set(key, tt);
  return tt;
}

/** Timetables are immutable; the scheduler asks for each DAG's every tick, and parsing costs ~1 ms. */
const timetables = new Map<string, Timetable>();
const MAX_CACHED_TIMETABLES = 10_000;
