import { describe, expect, it } from 'vitest';
import type { ScheduleSpec } from '../../src/dag/types.ts';
import { CronExpressionParser } from 'cron-parser';
import { isPlain, parserMatcher, wallMatcher } from '../../src/schedule/cron-matcher.ts';
import { CronTimetable } from '../../src/schedule/cron-timetable.ts';
import { formatInterval, parseInterval } from '../../src/schedule/interval-timetable.ts';
import { offsetAt, resolveWallTime } from '../../src/schedule/time-zone.ts';
import {
  MAX_BACKFILL_INTERVALS,
  ScheduleError,
  backfillIntervals,
  manualInterval,
  nextDueInterval,
  runsDue,
  timetableFor,
  validateSchedule,
  type DataInterval,
  type Timetable,
} from '../../src/schedule/timetable.ts';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

const d = (iso: string) => new Date(iso);
const spec = (cron: string | null, timezone = 'UTC'): ScheduleSpec => ({ cron, timezone, datasets: null });
const tt = (cron: string, timezone = 'UTC', anchor: Date | null = null): Timetable => timetableFor(spec(cron, timezone), anchor)!;
const iso = (x: Date) => x.toISOString();
const ivIso = (ivs: DataInterval[]) => ivs.map((iv) => [iso(iv.start), iso(iv.end)]);

/** Fire times in [from, to) by repeated next(). */
function fires(t: Timetable, from: string, to: string): string[] {
  const out: string[] = [];
  for (let x = t.next(new Date(d(from).getTime() - 1)); x < d(to); x = t.next(x)) out.push(iso(x));
  return out;
}

/** Deterministic PRNG (mulberry32), so a failing property case can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('cron in a time zone, DST policy', () => {
  it("'30 2 * * *' in Europe/Berlin runs once on 2026-03-29 at 01:30Z (03:30 CEST) and once on 2026-10-25 at 00:30Z", () => {
    const berlin = tt('30 2 * * *', 'Europe/Berlin');
    expect(fires(berlin, '2026-03-28T00:00:00Z', '2026-03-31T00:00:00Z')).toEqual([
      '2026-03-28T01:30:00.000Z',
      '2026-03-29T01:30:00.000Z',
      '2026-03-30T00:30:00.000Z',
    ]);
    expect(fires(berlin, '2026-10-24T00:00:00Z', '2026-10-27T00:00:00Z')).toEqual([
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
  });

  it('the same DST days give one scheduled run each through runsDue and backfill', () => {
    const schedule = spec('30 2 * * *', 'Europe/Berlin');
    // Berlin calendar days 2026-03-29 and 2026-10-25 (local midnight to local midnight).
    const spring = backfillIntervals(schedule, d('2026-03-28T23:00:00Z'), d('2026-03-29T21:59:59Z'), { start_date: null, end_date: null });
    const autumn = backfillIntervals(schedule, d('2026-10-24T22:00:00Z'), d('2026-10-25T22:59:59Z'), { start_date: null, end_date: null });
    expect(ivIso(spring)).toEqual([['2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z']]);
    expect(ivIso(autumn)).toEqual([['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']]);
    const due = runsDue({
      schedule, start_date: d('2026-03-28T00:00:00Z'), end_date: null, catchup: true,
      lastScheduledLogicalDate: null, now: d('2026-03-31T00:00:00Z'), limit: 10,
    });
    expect(ivIso(due)).toEqual([
      ['2026-03-28T01:30:00.000Z', '2026-03-29T01:30:00.000Z'],
      ['2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z'],
    ]);
  });

  it('an hourly cron has no run in the repeated hour of the fall-back (runs once, not twice)', () => {
    expect(fires(tt('0 * * * *', 'Europe/Berlin'), '2026-10-24T23:00:00Z', '2026-10-25T03:00:01Z')).toEqual([
      '2026-10-24T23:00:00.000Z', // 01:00 CEST
      '2026-10-25T00:00:00.000Z', // 02:00 CEST, first 02:00
      '2026-10-25T02:00:00.000Z', // 03:00 CET; the second 02:00 (01:00Z) does not run
      '2026-10-25T03:00:00.000Z',
    ]);
  });

  it('an hourly cron keeps one run per real hour across the spring-forward (02:00 lands on 03:00)', () => {
    expect(fires(tt('0 * * * *', 'Europe/Berlin'), '2026-03-28T23:00:00Z', '2026-03-29T02:00:01Z')).toEqual([
      '2026-03-28T23:00:00.000Z',
      '2026-03-29T00:00:00.000Z',
      '2026-03-29T01:00:00.000Z',
      '2026-03-29T02:00:00.000Z',
    ]);
  });

  it('a gap time shifted onto another scheduled time runs once', () => {
    // 02:30 (gap) -> 03:30 CEST, which the expression also names.
    expect(fires(tt('30 2,3 * * *', 'Europe/Berlin'), '2026-03-29T00:00:00Z', '2026-03-29T12:00:00Z')).toEqual([
      '2026-03-29T01:30:00.000Z',
    ]);
  });

  it('a gap time shifted past a later wall time still fires in UTC order', () => {
    // 02:30 (gap) -> 01:30Z; 03:00 CEST = 01:00Z comes first.
    expect(fires(tt('0,30 2,3 * * *', 'Europe/Berlin'), '2026-03-29T00:00:00Z', '2026-03-29T12:00:00Z')).toEqual([
      '2026-03-29T01:00:00.000Z',
      '2026-03-29T01:30:00.000Z',
    ]);
    const t = tt('0,30 2,3 * * *', 'Europe/Berlin');
    expect(iso(t.next(d('2026-03-29T01:00:00Z')))).toBe('2026-03-29T01:30:00.000Z');
    expect(iso(t.next(d('2026-03-29T01:10:00Z')))).toBe('2026-03-29T01:30:00.000Z');
  });

  it('America/New_York: 02:30 on 2026-03-08 runs at 07:30Z (03:30 EDT); 01:30 on 2026-11-01 runs once, at 05:30Z (EDT)', () => {
    expect(fires(tt('30 2 * * *', 'America/New_York'), '2026-03-07T00:00:00Z', '2026-03-10T00:00:00Z')).toEqual([
      '2026-03-07T07:30:00.000Z',
      '2026-03-08T07:30:00.000Z',
      '2026-03-09T06:30:00.000Z',
    ]);
    expect(fires(tt('30 1 * * *', 'America/New_York'), '2026-10-31T00:00:00Z', '2026-11-03T00:00:00Z')).toEqual([
      '2026-10-31T05:30:00.000Z',
      '2026-11-01T05:30:00.000Z',
      '2026-11-02T06:30:00.000Z',
    ]);
  });

  it('Australia/Lord_Howe (30-minute DST): gap time shifted by 30 minutes, repeated time runs once', () => {
    // 2026-10-04 local: 02:00 +10:30 -> 02:30 +11; 02:15 runs at 02:45 +11 = 15:45Z on 10-03.
    expect(fires(tt('15 2 * * *', 'Australia/Lord_Howe'), '2026-10-02T00:00:00Z', '2026-10-05T00:00:00Z')).toEqual([
      '2026-10-02T15:45:00.000Z',
      '2026-10-03T15:45:00.000Z',
      '2026-10-04T15:15:00.000Z',
    ]);
    // 2026-04-05 local: 02:00 +11 -> 01:30 +10:30; 01:45 runs at its first occurrence, 14:45Z.
    expect(fires(tt('45 1 * * *', 'Australia/Lord_Howe'), '2026-04-03T00:00:00Z', '2026-04-06T00:00:00Z')).toEqual([
      '2026-04-03T14:45:00.000Z',
      '2026-04-04T14:45:00.000Z',
      '2026-04-05T15:15:00.000Z',
    ]);
  });

  it('Asia/Kolkata (UTC+05:30, no DST): 09:00 is 03:30Z every day', () => {
    expect(fires(tt('0 9 * * *', 'Asia/Kolkata'), '2026-03-28T00:00:00Z', '2026-03-31T00:00:00Z')).toEqual([
      '2026-03-28T03:30:00.000Z',
      '2026-03-29T03:30:00.000Z',
      '2026-03-30T03:30:00.000Z',
    ]);
  });

  it('next(t) is strictly after t, also when t is a fire time', () => {
    const t = tt('30 2 * * *', 'UTC');
    expect(iso(t.next(d('2026-01-01T02:30:00Z')))).toBe('2026-01-02T02:30:00.000Z');
    expect(iso(t.next(d('2026-01-01T02:29:59.999Z')))).toBe('2026-01-01T02:30:00.000Z');
    expect(iso(t.next(d('2026-01-01T02:30:00.001Z')))).toBe('2026-01-02T02:30:00.000Z');
  });

  it('day-of-month and day-of-week both set: either matches (as cron and Airflow)', () => {
    expect(fires(tt('0 0 1 * 1'), '2026-03-28T00:00:00Z', '2026-04-14T00:00:00Z')).toEqual([
      '2026-03-30T00:00:00.000Z',
      '2026-04-01T00:00:00.000Z',
      '2026-04-06T00:00:00.000Z',
      '2026-04-13T00:00:00.000Z',
    ]);
  });
});

describe('data intervals', () => {
  const berlin = tt('30 2 * * *', 'Europe/Berlin');

  it('intervalStartingAtOrAfter returns [fire, next fire) for the first fire >= t', () => {
    expect(ivIso([berlin.intervalStartingAtOrAfter(d('2026-03-29T01:30:00Z'))])).toEqual([
      ['2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z'],
    ]);
    expect(ivIso([berlin.intervalStartingAtOrAfter(d('2026-03-29T01:30:00.001Z'))])).toEqual([
      ['2026-03-30T00:30:00.000Z', '2026-03-31T00:30:00.000Z'],
    ]);
  });

  it('latestCompleted is the interval ending at the latest fire <= now', () => {
    expect(ivIso([berlin.latestCompleted(d('2026-03-29T01:30:00Z'))!])).toEqual([
      ['2026-03-28T01:30:00.000Z', '2026-03-29T01:30:00.000Z'],
    ]);
    expect(ivIso([berlin.latestCompleted(d('2026-03-29T01:29:59.999Z'))!])).toEqual([
      ['2026-03-27T01:30:00.000Z', '2026-03-28T01:30:00.000Z'],
    ]);
  });

  it('latestCompleted in the second pass of a repeated hour ends at the first pass', () => {
    const hourly = tt('0 * * * *', 'Europe/Berlin');
    // 01:30Z is 02:30 CET (second pass); the last fire was 02:00 CEST = 00:00Z.
    expect(ivIso([hourly.latestCompleted(d('2026-10-25T01:30:00Z'))!])).toEqual([
      ['2026-10-24T23:00:00.000Z', '2026-10-25T00:00:00.000Z'],
    ]);
    expect(ivIso([hourly.latestCompleted(d('2026-10-25T02:00:00Z'))!])).toEqual([
      ['2026-10-25T00:00:00.000Z', '2026-10-25T02:00:00.000Z'],
    ]);
  });

  it('latestCompleted just after a spring-forward sees the shifted gap time', () => {
    const t = tt('30 2 * * *', 'Europe/Berlin');
    expect(ivIso([t.latestCompleted(d('2026-03-29T01:45:00Z'))!])).toEqual([
      ['2026-03-28T01:30:00.000Z', '2026-03-29T01:30:00.000Z'],
    ]);
  });
});

describe('presets and fixed intervals', () => {
  it.each([
    ['@hourly', '0 * * * *'],
    ['@daily', '0 0 * * *'],
    ['@midnight', '0 0 * * *'],
    ['@weekly', '0 0 * * 0'],
    ['@monthly', '0 0 1 * *'],
    ['@yearly', '0 0 1 1 *'],
    ['@annually', '0 0 1 1 *'],
  ])('%s fires as %s', (preset, cron) => {
    const from = d('2026-02-10T13:17:00Z');
    const a = tt(preset, 'Europe/Berlin');
    const b = tt(cron, 'Europe/Berlin');
    const x = [a.next(from)];
    const y = [b.next(from)];
    for (let i = 0; i < 3; i++) {
      x.push(a.next(x[x.length - 1]));
      y.push(b.next(y[y.length - 1]));
    }
    expect(x.map(iso)).toEqual(y.map(iso));
  });

  it('@daily in Europe/Berlin fires at local midnight', () => {
    expect(iso(tt('@daily', 'Europe/Berlin').next(d('2026-07-01T12:00:00Z')))).toBe('2026-07-01T22:00:00.000Z');
  });

  it.each([
    ['every 15 minutes', 15 * MIN],
    ['every 2 hours', 2 * HOUR],
    ['every 30s', 30_000],
    ['every 30 seconds', 30_000],
    ['every hour', HOUR],
    ['every minute', MIN],
    ['every day', DAY],
    ['every 1h30m', 90 * MIN],
    ['Every 1 hour and 30 minutes', 90 * MIN],
    ['every 1.5 hours', 90 * MIN],
    ['every 2 weeks', 14 * DAY],
  ])("parses '%s' as %d ms", (text, ms) => {
    expect(parseInterval(text)).toEqual({ ms });
  });

  it.each([
    [15 * MIN, 'every 15 minutes'],
    [HOUR, 'every hour'],
    [90 * MIN, 'every 1 hour 30 minutes'],
    [30_000, 'every 30 seconds'],
    [DAY, 'every day'],
  ])('formats %d ms as "%s"', (ms, text) => {
    expect(formatInterval(ms)).toBe(text);
  });

  it('a fixed interval is anchored at start_date and ignores DST', () => {
    const t = tt('every 15 minutes', 'Europe/Berlin', d('2026-03-29T00:07:00Z'));
    expect(fires(t, '2026-03-29T00:50:00Z', '2026-03-29T01:40:00Z')).toEqual([
      '2026-03-29T00:52:00.000Z',
      '2026-03-29T01:07:00.000Z',
      '2026-03-29T01:22:00.000Z',
      '2026-03-29T01:37:00.000Z',
    ]);
    expect(ivIso([t.latestCompleted(d('2026-03-29T01:30:00Z'))!])).toEqual([
      ['2026-03-29T01:07:00.000Z', '2026-03-29T01:22:00.000Z'],
    ]);
    expect(ivIso([t.intervalStartingAtOrAfter(d('2026-03-29T01:07:00Z'))])).toEqual([
      ['2026-03-29T01:07:00.000Z', '2026-03-29T01:22:00.000Z'],
    ]);
  });

  it('a fixed interval without anchor aligns to the epoch (:00, :15, :30, :45 UTC)', () => {
    expect(iso(tt('every 15 minutes').next(d('2026-05-05T10:01:02Z')))).toBe('2026-05-05T10:15:00.000Z');
  });
});

describe('describe', () => {
  it.each([
    ['30 2 * * *', 'Europe/Berlin', 'at 02:30 every day, Europe/Berlin'],
    ['0 9 * * 1-5', 'America/New_York', 'at 09:00 on Monday to Friday, America/New_York'],
    ['0 6 * * 0,6', 'UTC', 'at 06:00 on Saturday and Sunday, UTC'],
    ['0 6 * * 1,3,5', 'UTC', 'at 06:00 on Monday, Wednesday and Friday, UTC'],
    ['@daily', 'UTC', 'at 00:00 every day, UTC'],
    ['@weekly', 'UTC', 'at 00:00 on Sunday, UTC'],
    ['@monthly', 'Asia/Kolkata', 'at 00:00 on day 1 of every month, Asia/Kolkata'],
    ['@yearly', 'UTC', 'at 00:00 on 1 January every year, UTC'],
    ['@hourly', 'UTC', 'at minute 0 of every hour, UTC'],
    ['*/15 * * * *', 'UTC', 'every 15 minutes, UTC'],
    ['* * * * *', 'UTC', 'every minute, UTC'],
    ['5 4 * 3 1-5', 'UTC', "cron '5 4 * 3 1-5', UTC"],
    ['0 0 L * *', 'UTC', "cron '0 0 L * *', UTC"],
    ['every 15 minutes', 'UTC', 'every 15 minutes'],
    ['30 2 * * *', 'europe/berlin', 'at 02:30 every day, Europe/Berlin'],
  ])("'%s' in %s reads \"%s\"", (cron, zone, text) => {
    expect(tt(cron, zone).describe()).toBe(text);
  });
});

describe('validateSchedule', () => {
  it('accepts valid crons, presets and intervals', () => {
    for (const c of ['30 2 * * *', '*/5 1-3 * * MON-FRI', '0 0 L * *', '@daily', '@ANNUALLY', 'every 15 minutes', '0 12 * * thu']) {
      expect(validateSchedule(c, 'Europe/Berlin')).toBeNull();
    }
  });

  it('names an unknown time zone and suggests the closest one', () => {
    expect(validateSchedule('30 2 * * *', 'Europe/Berln')).toBe(
      "time zone 'Europe/Berln' is not an IANA time zone name (did you mean 'Europe/Berlin'?); write a name such as 'Europe/Berlin', 'America/New_York' or 'UTC'",
    );
    expect(validateSchedule('30 2 * * *', 'CEST+2')).toBe(
      "time zone 'CEST+2' is not an IANA time zone name; write a name such as 'Europe/Berlin', 'America/New_York' or 'UTC'",
    );
  });

  it('explains an out-of-range cron field', () => {
    expect(validateSchedule('60 * * * *', 'UTC')).toBe(
      "schedule '60 * * * *' is not a valid cron expression (Constraint error, got value 60 expected range 0-59); " +
        "write five fields 'minute hour day-of-month month day-of-week' (e.g. '30 2 * * *'), a preset (@hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually) or a fixed interval (e.g. 'every 15 minutes')",
    );
  });

  it('explains wrong field counts, seconds, hashes, unknown presets, @once and a date that never comes', () => {
    expect(validateSchedule('* * * *', 'UTC')).toMatch(/^schedule '\* \* \* \*' has 4 field\(s\), not five; write five fields/);
    expect(validateSchedule('0 * * * * *', 'UTC')).toMatch(/six fields \(seconds are not supported\).*'every 30 seconds'$/);
    expect(validateSchedule('H 2 * * *', 'UTC')).toBe(
      "schedule 'H 2 * * *' uses 'H' (hashed values), which Podflow does not support; write a fixed number instead",
    );
    expect(validateSchedule('@fortnightly', 'UTC')).toBe(
      "schedule '@fortnightly' is not a known preset; use one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually",
    );
    expect(validateSchedule('@once', 'UTC')).toBe(
      "schedule '@once' is not supported; set the schedule to null and trigger the DAG once (podflow dags trigger)",
    );
    expect(validateSchedule('0 0 31 2 *', 'UTC')).toMatch(/^schedule '0 0 31 2 \*' is not a valid cron expression \(/);
    expect(validateSchedule('', 'UTC')).toMatch(/^schedule is empty; /);
  });

  it('explains bad fixed intervals', () => {
    expect(validateSchedule('every 15 fortnights', 'UTC')).toBe(
      "schedule 'every 15 fortnights': unknown unit 'fortnights'; write 'every <number> <unit>' with unit seconds, minutes, hours, days or weeks (e.g. 'every 15 minutes', 'every 2 hours', 'every 30s', 'every 1h30m')",
    );
    expect(validateSchedule('every 0 minutes', 'UTC')).toMatch(/^schedule 'every 0 minutes' is shorter than one second; /);
    expect(validateSchedule('every', 'UTC')).toMatch(/^schedule 'every' names no interval; /);
    expect(validateSchedule('every other day', 'UTC')).toMatch(/^schedule 'every other day' is not a fixed interval; /);
  });

  it('timetableFor throws the same message as a ScheduleError, and returns null for no schedule', () => {
    expect(timetableFor(spec(null))).toBeNull();
    expect(() => timetableFor(spec('61 * * * *'))).toThrow(ScheduleError);
    expect(() => timetableFor(spec('0 * * * *', 'Mars/Olympus'))).toThrow(/time zone 'Mars\/Olympus' is not an IANA time zone name/);
  });
});

describe('runsDue', () => {
  const daily = spec('0 0 * * *');
  const base = {
    schedule: daily,
    start_date: d('2026-01-01T00:00:00Z'),
    end_date: null,
    catchup: false,
    lastScheduledLogicalDate: null,
    now: d('2026-01-10T12:00:00Z'),
    limit: 16,
  };

  it('catchup=false: a DAG stopped for five intervals creates one run, for the latest completed interval', () => {
    // Last run covered 01-04; the scheduler was down while 01-05 .. 01-09 completed.
    const due = runsDue({ ...base, lastScheduledLogicalDate: d('2026-01-04T00:00:00Z') });
    expect(ivIso(due)).toEqual([['2026-01-09T00:00:00.000Z', '2026-01-10T00:00:00.000Z']]);
  });

  it('catchup=false: nothing when the latest interval already has a run', () => {
    expect(runsDue({ ...base, lastScheduledLogicalDate: d('2026-01-09T00:00:00Z') })).toEqual([]);
    expect(runsDue({ ...base, lastScheduledLogicalDate: d('2026-01-10T00:00:00Z') })).toEqual([]);
  });

  it('catchup=false on first start creates only the latest completed interval', () => {
    expect(ivIso(runsDue(base))).toEqual([['2026-01-09T00:00:00.000Z', '2026-01-10T00:00:00.000Z']]);
  });

  it('catchup=false never creates a run before start_date', () => {
    expect(runsDue({ ...base, start_date: d('2026-01-09T00:00:01Z') })).toEqual([]);
    expect(runsDue({ ...base, start_date: d('2026-02-01T00:00:00Z') })).toEqual([]);
    expect(ivIso(runsDue({ ...base, start_date: d('2026-01-09T00:00:00Z') }))).toEqual([
      ['2026-01-09T00:00:00.000Z', '2026-01-10T00:00:00.000Z'],
    ]);
  });

  it('catchup=true creates every missed interval, oldest first, up to the limit', () => {
    const due = runsDue({ ...base, catchup: true, lastScheduledLogicalDate: d('2026-01-04T00:00:00Z'), limit: 3 });
    expect(ivIso(due)).toEqual([
      ['2026-01-05T00:00:00.000Z', '2026-01-06T00:00:00.000Z'],
      ['2026-01-06T00:00:00.000Z', '2026-01-07T00:00:00.000Z'],
      ['2026-01-07T00:00:00.000Z', '2026-01-08T00:00:00.000Z'],
    ]);
    const all = runsDue({ ...base, catchup: true, lastScheduledLogicalDate: d('2026-01-04T00:00:00Z') });
    expect(all.map((iv) => iso(iv.start))).toEqual([
      '2026-01-05T00:00:00.000Z', '2026-01-06T00:00:00.000Z', '2026-01-07T00:00:00.000Z',
      '2026-01-08T00:00:00.000Z', '2026-01-09T00:00:00.000Z',
    ]);
  });

  it('catchup=true from scratch starts at the first fire >= start_date', () => {
    const due = runsDue({ ...base, catchup: true, start_date: d('2026-01-07T10:00:00Z') });
    expect(ivIso(due)).toEqual([
      ['2026-01-08T00:00:00.000Z', '2026-01-09T00:00:00.000Z'],
      ['2026-01-09T00:00:00.000Z', '2026-01-10T00:00:00.000Z'],
    ]);
  });

  it('creates no run for an interval that has not ended', () => {
    const due = runsDue({ ...base, catchup: true, lastScheduledLogicalDate: d('2026-01-08T00:00:00Z'), now: d('2026-01-09T23:59:59.999Z') });
    expect(due).toEqual([]);
    const atEnd = runsDue({ ...base, catchup: true, lastScheduledLogicalDate: d('2026-01-08T00:00:00Z'), now: d('2026-01-10T00:00:00Z') });
    expect(ivIso(atEnd)).toEqual([['2026-01-09T00:00:00.000Z', '2026-01-10T00:00:00.000Z']]);
  });

  it('end_date bounds the logical date (inclusive), with and without catchup', () => {
    const end_date = d('2026-01-06T00:00:00Z');
    const catchup = runsDue({ ...base, catchup: true, end_date, lastScheduledLogicalDate: d('2026-01-04T00:00:00Z') });
    expect(catchup.map((iv) => iso(iv.start))).toEqual(['2026-01-05T00:00:00.000Z', '2026-01-06T00:00:00.000Z']);
    // Without catchup, after end_date passed: the last interval starting at or before end_date, once.
    expect(ivIso(runsDue({ ...base, end_date, lastScheduledLogicalDate: d('2026-01-04T00:00:00Z') }))).toEqual([
      ['2026-01-06T00:00:00.000Z', '2026-01-07T00:00:00.000Z'],
    ]);
    expect(runsDue({ ...base, end_date, lastScheduledLogicalDate: d('2026-01-06T00:00:00Z') })).toEqual([]);
  });

  it('creates nothing when the limit is used up or the schedule is null', () => {
    expect(runsDue({ ...base, catchup: true, limit: 0 })).toEqual([]);
    expect(runsDue({ ...base, limit: -2 })).toEqual([]);
    expect(runsDue({ ...base, schedule: spec(null) })).toEqual([]);
  });

  it('without start_date behaves as catchup=false', () => {
    expect(ivIso(runsDue({ ...base, start_date: null, catchup: true }))).toEqual([
      ['2026-01-09T00:00:00.000Z', '2026-01-10T00:00:00.000Z'],
    ]);
  });

  it('fixed intervals are anchored at start_date', () => {
    const due = runsDue({
      ...base, schedule: spec('every 6 hours'), catchup: true, start_date: d('2026-01-09T01:00:00Z'), now: d('2026-01-10T02:00:00Z'),
    });
    expect(due.map((iv) => iso(iv.start))).toEqual([
      '2026-01-09T01:00:00.000Z', '2026-01-09T07:00:00.000Z', '2026-01-09T13:00:00.000Z', '2026-01-09T19:00:00.000Z',
    ]);
  });

  it('a stopped scheduler in a DST zone with catchup=false still creates exactly the latest interval', () => {
    const due = runsDue({
      ...base, schedule: spec('30 2 * * *', 'Europe/Berlin'), start_date: d('2026-03-01T00:00:00Z'),
      lastScheduledLogicalDate: d('2026-03-25T01:30:00Z'), now: d('2026-03-30T12:00:00Z'),
    });
    expect(ivIso(due)).toEqual([['2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z']]);
  });

  it('nextDueInterval names the interval the scheduler creates next', () => {
    expect(ivIso([nextDueInterval({ ...base, lastScheduledLogicalDate: d('2026-01-09T00:00:00Z') })!])).toEqual([
      ['2026-01-10T00:00:00.000Z', '2026-01-11T00:00:00.000Z'],
    ]);
    expect(ivIso([nextDueInterval({ ...base, catchup: true, lastScheduledLogicalDate: d('2026-01-04T00:00:00Z') })!])).toEqual([
      ['2026-01-05T00:00:00.000Z', '2026-01-06T00:00:00.000Z'],
    ]);
    expect(ivIso([nextDueInterval({ ...base, lastScheduledLogicalDate: d('2026-01-04T00:00:00Z') })!])).toEqual([
      ['2026-01-09T00:00:00.000Z', '2026-01-10T00:00:00.000Z'],
    ]);
    expect(nextDueInterval({ ...base, end_date: d('2026-01-05T00:00:00Z'), lastScheduledLogicalDate: d('2026-01-05T00:00:00Z') })).toBeNull();
    // end_date passed while stopped: the last interval within it is still to be created.
    expect(ivIso([nextDueInterval({ ...base, end_date: d('2026-01-05T00:00:00Z'), lastScheduledLogicalDate: d('2026-01-02T00:00:00Z') })!])).toEqual([
      ['2026-01-05T00:00:00.000Z', '2026-01-06T00:00:00.000Z'],
    ]);
    // Nothing completed yet after start_date: the first interval, due at its end.
    expect(ivIso([nextDueInterval({ ...base, catchup: true, start_date: d('2026-01-10T06:00:00Z') })!])).toEqual([
      ['2026-01-11T00:00:00.000Z', '2026-01-12T00:00:00.000Z'],
    ]);
  });
});

describe('backfillIntervals', () => {
  const daily = spec('0 0 * * *');
  const open = { start_date: null, end_date: null };

  it('returns exactly the intervals whose start lies in [from, to], both inclusive', () => {
    const ivs = backfillIntervals(daily, d('2026-01-02T00:00:00Z'), d('2026-01-04T00:00:00Z'), open);
    expect(ivIso(ivs)).toEqual([
      ['2026-01-02T00:00:00.000Z', '2026-01-03T00:00:00.000Z'],
      ['2026-01-03T00:00:00.000Z', '2026-01-04T00:00:00.000Z'],
      ['2026-01-04T00:00:00.000Z', '2026-01-05T00:00:00.000Z'],
    ]);
    expect(backfillIntervals(daily, d('2026-01-02T00:00:01Z'), d('2026-01-02T23:59:59Z'), open)).toEqual([]);
  });

  it('is bounded by start_date and end_date', () => {
    const ivs = backfillIntervals(daily, d('2026-01-01T00:00:00Z'), d('2026-01-31T00:00:00Z'), {
      start_date: d('2026-01-10T12:00:00Z'), end_date: d('2026-01-12T00:00:00Z'),
    });
    expect(ivs.map((iv) => iso(iv.start))).toEqual(['2026-01-11T00:00:00.000Z', '2026-01-12T00:00:00.000Z']);
  });

  it('refuses a reversed range, a missing schedule and a runaway range', () => {
    expect(() => backfillIntervals(daily, d('2026-02-01T00:00:00Z'), d('2026-01-01T00:00:00Z'), open)).toThrow(
      'backfill --from 2026-02-01T00:00:00.000Z is after --to 2026-01-01T00:00:00.000Z; swap them',
    );
    expect(() => backfillIntervals(spec(null), d('2026-01-01T00:00:00Z'), d('2026-01-02T00:00:00Z'), open)).toThrow(
      'backfill needs a schedule, but this DAG has none (schedule: null); trigger runs manually instead',
    );
    expect(() => backfillIntervals(spec('every 1 second'), d('2026-01-01T00:00:00Z'), d('2026-01-03T00:00:00Z'), open)).toThrow(
      `would create more than ${MAX_BACKFILL_INTERVALS} runs; narrow --from/--to`,
    );
  });
});

describe('manualInterval', () => {
  it('is [t, t] with logical date t', () => {
    expect(ivIso([manualInterval(d('2026-05-05T10:11:12.345Z'))])).toEqual([['2026-05-05T10:11:12.345Z', '2026-05-05T10:11:12.345Z']]);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties, checked against an independent brute-force oracle.

const ZONES = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'UTC'];
const CRONS = ['30 2 * * *', '0 * * * *', '*/15 * * * *', '15,45 1-3 * * *', '0 0 * * *', '45 1 * * *', '0 2,3 * * *', '5 */2 * * 1-5'];

const formats = new Map<string, Intl.DateTimeFormat>();

/** Intl's own answer, to check the cached offsets against. */
function intlOffset(u: number, zone: string): number {
  const f = formats.get(zone) ?? new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
  formats.set(zone, f);
  const p = Object.fromEntries(f.formatToParts(new Date(u)).map((x) => [x.type, x.value]));
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(u / 1000) * 1000;
}

const transitionCache = new Map<string, number[]>();

/** Offset changes in a year, found by scanning with Intl hour by hour, then minute by minute. */
function transitions(zone: string, year: number): number[] {
  const cached = transitionCache.get(`${zone} ${year}`);
  if (cached) return cached;
  const out: number[] = [];
  let prev = intlOffset(Date.UTC(year, 0, 1), zone);
  for (let u = Date.UTC(year, 0, 1) + HOUR; u <= Date.UTC(year + 1, 0, 1); u += HOUR) {
    const o = intlOffset(u, zone);
    if (o !== prev) {
      let m = u - HOUR;
      while (intlOffset(m, zone) === prev) m += MIN;
      out.push(m);
      prev = o;
    }
  }
  transitionCache.set(`${zone} ${year}`, out);
  return out;
}

/** Plain five-field cron matcher (numbers, ranges, lists, steps; Vixie day rule). */
function matcher(cron: string): (wall: Date) => boolean {
  const [mi, ho, dom, mon, dow] = cron.split(' ');
  const expand = (field: string, lo: number, hi: number): Set<number> => {
    const s = new Set<number>();
    for (const part of field.split(',')) {
      const [range, stepText] = part.split('/');
      const step = stepText ? Number(stepText) : 1;
      const [a, b] = range === '*' ? [lo, hi] : range.includes('-') ? range.split('-').map(Number) : [Number(range), stepText ? hi : Number(range)];
      for (let v = a; v <= b; v += step) s.add(v);
    }
    return s;
  };
  const M = expand(mi, 0, 59);
  const H = expand(ho, 0, 23);
  const D = expand(dom, 1, 31);
  const MO = expand(mon, 1, 12);
  const W = expand(dow, 0, 6);
  return (w) => {
    if (!M.has(w.getUTCMinutes()) || !H.has(w.getUTCHours()) || !MO.has(w.getUTCMonth() + 1)) return false;
    const dm = D.has(w.getUTCDate());
    const dw = W.has(w.getUTCDay());
    if (dom !== '*' && dow !== '*') return dm || dw;
    return dm && dw;
  };
}

/**
 * All fire times in [from, to) by the written policy, scanning every minute of UTC: a wall
 * time fires at its first occurrence; wall times skipped by a jump forward fire at
 * (wall time - offset before the jump).
 */
function oracleFires(cron: string, zone: string, from: number, to: number): number[] {
  const matches = matcher(cron);
  const seen = new Set<number>();
  const out = new Set<number>();
  let prevWall = from - MIN + offsetAt(from - MIN, zone);
  for (let u = from; u < to; u += MIN) {
    const off = offsetAt(u, zone);
    const wall = u + off;
    if (wall - prevWall > MIN) {
      const offBefore = prevWall - (u - MIN);
      for (let g = prevWall + MIN; g < wall; g += MIN) if (matches(new Date(g))) out.add(g - offBefore);
    }
    if (!seen.has(wall)) {
      seen.add(wall);
      if (matches(new Date(wall))) out.add(u);
    }
    prevWall = wall;
  }
  return [...out].sort((a, b) => a - b);
}

describe('time zone offsets', () => {
  it('cached offsets equal Intl at random instants and around every 2026 transition', () => {
    const r = rng(7);
    for (const zone of ZONES) {
      for (let i = 0; i < 300; i++) {
        const u = Date.UTC(1975, 0, 1) + Math.floor(r() * 70 * 365 * DAY);
        expect([zone, u, offsetAt(u, zone)]).toEqual([zone, u, intlOffset(u, zone)]);
      }
      for (const tr of transitions(zone, 2026)) {
        for (const dt of [-1001, -1000, -1, 0, 1, 999, 1000, 30 * MIN]) {
          expect([zone, tr + dt, offsetAt(tr + dt, zone)]).toEqual([zone, tr + dt, intlOffset(tr + dt, zone)]);
        }
      }
    }
  });

  it('resolveWallTime: first occurrence for a repeated time, gap-shifted for a missing one', () => {
    expect(resolveWallTime(Date.UTC(2026, 9, 25, 2, 30), 'Europe/Berlin')).toEqual({ instant: Date.parse('2026-10-25T00:30:00Z'), inGap: false });
    expect(resolveWallTime(Date.UTC(2026, 2, 29, 2, 30), 'Europe/Berlin')).toEqual({ instant: Date.parse('2026-03-29T01:30:00Z'), inGap: true });
    expect(resolveWallTime(Date.UTC(2026, 2, 29, 3, 0), 'Europe/Berlin')).toEqual({ instant: Date.parse('2026-03-29T01:00:00Z'), inGap: false });
  });
});

describe('properties', () => {
  it('next(t) > t and equals the oracle, and prev(t) <= t < next(prev(t)), around DST transitions in five zones', () => {
    const r = rng(42);
    let checked = 0;
    for (const zone of ZONES) {
      const centers = [...transitions(zone, 2026), ...transitions(zone, 2027)];
      if (centers.length === 0) centers.push(Date.UTC(2026, 2, 29, 1), Date.UTC(2026, 9, 25, 1));
      for (const center of centers) {
        for (const cron of CRONS) {
          const t = new CronTimetable(cron, zone);
          const from = center - 4 * DAY;
          const to = center + 4 * DAY;
          const oracle = oracleFires(cron, zone, from, to);
          const samples = [center - 1, center, center + 1, center + 30 * MIN, center - HOUR, center + HOUR - 1];
          for (let i = 0; i < 12; i++) samples.push(center - 2 * DAY + Math.floor(r() * 4 * DAY));
          for (const x of samples) {
            const expectedNext = oracle.find((f) => f > x)!;
            const expectedPrev = [...oracle].reverse().find((f) => f <= x)!;
            const n = t.next(new Date(x)).getTime();
            const p = t.prevAtOrBefore(new Date(x)).getTime();
            expect({ zone, cron, t: new Date(x).toISOString(), next: new Date(n).toISOString(), prev: new Date(p).toISOString() }).toEqual({
              zone, cron, t: new Date(x).toISOString(), next: new Date(expectedNext).toISOString(), prev: new Date(expectedPrev).toISOString(),
            });
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });

  it('consecutive next() calls walk the oracle fire list exactly, through each 2026 transition', () => {
    for (const zone of ZONES) {
      for (const center of transitions(zone, 2026)) {
        for (const cron of ['*/15 * * * *', '0,30 * * * *', '30 2 * * *']) {
          const t = new CronTimetable(cron, zone);
          const from = center - 2 * DAY;
          const oracle = oracleFires(cron, zone, from, center + 2 * DAY).filter((f) => f > from && f < center + DAY);
          const walked: number[] = [];
          for (let x = t.next(new Date(from)).getTime(); x < center + DAY; x = t.next(new Date(x)).getTime()) walked.push(x);
          expect({ zone, cron, walked }).toEqual({ zone, cron, walked: oracle });
        }
      }
    }
  });

  it('next(t) > t and next(prev(t)) = next(t) at random instants, 1971-2060, in every zone', () => {
    const r = rng(2026);
    const extraCrons = [...CRONS, '0 0 1 * *', '0 12 * * 0', '0 0 29 2 *'];
    for (let i = 0; i < 400; i++) {
      const zone = ZONES[Math.floor(r() * ZONES.length)];
      const cron = extraCrons[Math.floor(r() * extraCrons.length)];
      const t = new CronTimetable(cron, zone);
      const x = new Date(Date.UTC(1971, 0, 1) + Math.floor(r() * 89 * 365 * DAY));
      const n = t.next(x);
      const p = t.prevAtOrBefore(x);
      const ok = n > x && p <= x && t.next(p).getTime() === n.getTime();
      expect({ zone, cron, x: x.toISOString(), ok }).toEqual({ zone, cron, x: x.toISOString(), ok: true });
    }
  });
});

describe('wall-clock matcher', () => {
  /** A random plain field: '*', a value, a range, a list or a step. */
  function field(r: () => number, lo: number, hi: number): string {
    const v = () => lo + Math.floor(r() * (hi - lo + 1));
    switch (Math.floor(r() * 6)) {
      case 0: return '*';
      case 1: return String(v());
      case 2: { const a = v(); const b = v(); return `${Math.min(a, b)}-${Math.max(a, b)}`; }
      case 3: return [...new Set([v(), v(), v()])].join(',');
      case 4: return `*/${1 + Math.floor(r() * Math.min(12, hi - lo))}`;
      default: { const a = v(); return `${a}-${hi}/${1 + Math.floor(r() * 3)}`; }
    }
  }

  it('the arithmetic matcher steps exactly as cron-parser on 300 random plain expressions', () => {
    const r = rng(99);
    let compared = 0;
    for (let i = 0; i < 300; i++) {
      const expr = [field(r, 0, 59), field(r, 0, 23), r() < 0.5 ? '*' : field(r, 1, 28), r() < 0.6 ? '*' : field(r, 1, 12), r() < 0.5 ? '*' : field(r, 0, 6)].join(' ');
      const cron = CronExpressionParser.parse(expr, { tz: 'UTC', currentDate: new Date(0) });
      expect(isPlain(cron)).toBe(true);
      const fast = wallMatcher(cron, expr);
      const slow = parserMatcher(cron);
      for (let k = 0; k < 4; k++) {
        const L = Date.UTC(2000, 0, 1) + Math.floor(r() * 40 * 365 * DAY) + (k === 3 ? 0 : Math.floor(r() * MIN));
        expect({ expr, L, next: fast.next(L), prev: fast.prev(L) }).toEqual({ expr, L, next: slow.next(L), prev: slow.prev(L) });
        compared++;
      }
    }
    expect(compared).toBe(1200);
  });

  it('expressions with L or # keep cron-parser', () => {
    for (const expr of ['0 0 L * *', '0 0 * * 5#2', '0 0 * * 5L']) {
      expect(isPlain(CronExpressionParser.parse(expr, { tz: 'UTC' }))).toBe(false);
    }
    const last = tt('0 0 L * *', 'Europe/Berlin');
    expect(iso(last.next(d('2026-02-10T00:00:00Z')))).toBe('2026-02-27T23:00:00.000Z');
  });
});
