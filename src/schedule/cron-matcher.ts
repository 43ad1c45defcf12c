/**
 * Steps through the wall-clock times a five-field cron expression matches, on wall times
 * encoded as UTC milliseconds (no time zone, no DST: cron-timetable.ts resolves those).
 *
 * cron-parser steps through Luxon dates at roughly 120 µs a step; the scheduler asks for
 * many steps each tick, so plain expressions (numbers, ranges, lists, steps, names) get an
 * arithmetic matcher here, about a hundred times faster. Expressions with `L` or `#` keep
 * cron-parser. Both follow cron's day rule: when day-of-month and day-of-week are both
 * restricted, a day matching either runs.
 */
import type { CronExpression } from 'cron-parser';

const MIN_MS = 60_000;
/** Valid expressions match within 8 years (29 February skips 2100); days and months walked. */
const MAX_STEPS = 12 * 400 + 366 * 9;

export interface WallMatcher {
  /** First matching wall time strictly after `L`. */
  next(L: number): number;
  /** Last matching wall time strictly before `L`. */
  prev(L: number): number;
}

function flags(values: readonly (number | string)[], size: number, map: (v: number) => number = (v) => v): boolean[] {
  const out = new Array<boolean>(size).fill(false);
  for (const v of values) out[map(v as number)] = true;
  return out;
}

class PlainMatcher implements WallMatcher {
  readonly #minutes: number[];
  readonly #hours: number[];
  readonly #isHour: boolean[];
  readonly #isDom: boolean[];
  readonly #isMonth: boolean[];
  readonly #isDow: boolean[];
  readonly #domRestricted: boolean;
  readonly #dowRestricted: boolean;
  readonly #expression: string;

  constructor(cron: CronExpression, expression: string) {
    const f = cron.fields;
    this.#expression = expression;
    this.#minutes = [...(f.minute.values as number[])].sort((a, b) => a - b);
    this.#hours = [...(f.hour.values as number[])].sort((a, b) => a - b);
    this.#isHour = flags(f.hour.values, 24);
    this.#isDom = flags(f.dayOfMonth.values, 32);
    this.#isMonth = flags(f.month.values, 13);
    this.#isDow = flags(f.dayOfWeek.values, 7, (v) => v % 7);
    this.#domRestricted = !f.dayOfMonth.isWildcard;
    this.#dowRestricted = !f.dayOfWeek.isWildcard;
  }

  #dayMatches(d: Date): boolean {
    const dom = this.#isDom[d.getUTCDate()];
    const dow = this.#isDow[d.getUTCDay()];
    if (this.#domRestricted && this.#dowRestricted) return dom || dow;
    if (this.#dowRestricted) return dow;
    return dom;
  }

  #giveUp(L: number): never {
    throw new Error(`cron '${this.#expression}' matches no time within 8 years of ${new Date(L).toISOString()}; check the day and month fields`);
  }

  next(L: number): number {
    let t = Math.floor(L / MIN_MS) * MIN_MS + MIN_MS;
    for (let i = 0; i < MAX_STEPS; i++) {
      const d = new Date(t);
      const y = d.getUTCFullYear();
      const mo = d.getUTCMonth();
      const day = d.getUTCDate();
      if (!this.#isMonth[mo + 1]) {
        t = Date.UTC(y, mo + 1, 1);
        continue;
      }
      if (!this.#dayMatches(d)) {
        t = Date.UTC(y, mo, day + 1);
        continue;
      }
      const h = d.getUTCHours();
      const m = d.getUTCMinutes();
      if (this.#isHour[h]) {
        const minute = this.#minutes.find((x) => x >= m);
        if (minute !== undefined) return Date.UTC(y, mo, day, h, minute);
      }
      const hour = this.#hours.find((x) => x > h);
      if (hour !== undefined) return Date.UTC(y, mo, day, hour, this.#minutes[0]);
      t = Date.UTC(y, mo, day + 1);
    }
    return this.#giveUp(L);
  }

  prev(L: number): number {
    let t = Math.ceil(L / MIN_MS) * MIN_MS - MIN_MS;
    for (let i = 0; i < MAX_STEPS; i++) {
      const d = new Date(t);
      const y = d.getUTCFullYear();
      const mo = d.getUTCMonth();
      const day = d.getUTCDate();
      if (!this.#isMonth[mo + 1]) {
        t = Date.UTC(y, mo, 1) - MIN_MS;
        continue;
      }
      if (!this.#dayMatches(d)) {
        t = Date.UTC(y, mo, day) - MIN_MS;
        continue;
      }
      const h = d.getUTCHours();
      const m = d.getUTCMinutes();
      if (this.#isHour[h]) {
        const minute = this.#minutes.findLast((x) => x <= m);
        if (minute !== undefined) return Date.UTC(y, mo, day, h, minute);
      }
      const hour = this.#hours.findLast((x) => x < h);
      if (hour !== undefined) return Date.UTC(y, mo, day, hour, this.#minutes[this.#minutes.length - 1]);
      t = Date.UTC(y, mo, day) - MIN_MS;
    }
    return this.#giveUp(L);
  }
}

/** cron-parser, parsed in UTC so it sees wall times without any DST logic. */
class ParserMatcher implements WallMatcher {
  readonly #cron: CronExpression;
  constructor(cron: CronExpression) {
    this.#cron = cron;
  }
  next(L: number): number {
    this.#cron.reset(new Date(L));
    return this.#cron.next().getTime();
  }
  prev(L: number): number {
    this.#cron.reset(new Date(L));
    return this.#cron.prev().getTime();
  }
}

/** True when every field is plain numbers (no `L`, no `#`), so the arithmetic matcher applies. */
export function isPlain(cron: CronExpression): boolean {
  const f = cron.fields;
  const numeric = [f.minute, f.hour, f.dayOfMonth, f.month, f.dayOfWeek].every((x) => x.values.every((v) => typeof v === 'number'));
  return numeric && !f.dayOfMonth.hasLastChar && !f.dayOfWeek.hasLastChar && !f.dayOfWeek.nthDay && f.second.values.length === 1 && f.second.values[0] === 0;
}

/** The fastest matcher that is exact for `cron` (parsed with `tz: 'UTC'`). */
export function wallMatcher(cron: CronExpression, expression: string): WallMatcher {
  return isPlain(cron) ? new PlainMatcher(cron, expression) : new ParserMatcher(cron);
}

/** cron-parser's matcher regardless of shape; tests compare it with the fast one. */
export function parserMatcher(cron: CronExpression): WallMatcher {
  return new ParserMatcher(cron);
}
