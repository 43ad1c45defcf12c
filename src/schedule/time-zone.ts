/**
 * IANA time-zone arithmetic on epoch milliseconds, built on `Intl` only.
 *
 * Two kinds of numbers appear here:
 * - an *instant* `u`: epoch milliseconds (UTC), what Podflow stores and compares;
 * - a *wall time* `L`: the local calendar fields of a zone encoded as if they were UTC
 *   (`Date.UTC(year, month, day, hour, minute)`), what a cron expression matches against.
 */

const HOUR_MS = 3_600_000;
/** Offsets on Earth lie in [-12h, +14h], so any instant showing wall time L lies in [L - 14h, L + 12h]. */
const MAX_EAST_MS = 14 * HOUR_MS;
const MAX_WEST_MS = 12 * HOUR_MS;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** True when `timeZone` is a name `Intl` knows (IANA names, case-insensitive, and "UTC"). */
export function isValidTimeZone(timeZone: string): boolean {
  if (timeZone.trim() === '') return false;
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/**
 * The zone as the user wrote it, with the case fixed when it names a known zone
 * ("europe/berlin" -> "Europe/Berlin"). Not Intl's canonical id: ICU would turn
 * "Asia/Kolkata" into the legacy "Asia/Calcutta".
 */
export function canonicalTimeZone(timeZone: string): string {
  const lower = timeZone.toLowerCase();
  if (lower === 'utc') return 'UTC';
  return knownTimeZones().find((z) => z.toLowerCase() === lower) ?? timeZone;
}

/** Offset at instant `u` straight from Intl (slow: about 15 µs). */
function intlOffset(u: number, timeZone: string): number {
  const whole = Math.floor(u / 1000) * 1000;
  let year = 0;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let bc = false;
  for (const p of formatterFor(timeZone).formatToParts(new Date(whole))) {
    switch (p.type) {
      case 'year': year = Number(p.value); break;
      case 'month': month = Number(p.value); break;
      case 'day': day = Number(p.value); break;
      case 'hour': hour = Number(p.value); break;
      case 'minute': minute = Number(p.value); break;
      case 'second': second = Number(p.value); break;
      case 'era': bc = p.value.startsWith('B'); break;
      default: break;
    }
  }
  const d = new Date(0);
  d.setUTCFullYear(bc ? 1 - year : year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  return d.getTime() - whole;
}

const DAY_MS = 86_400_000;
const MAX_CACHED_DAYS = 200_000;

/** One UTC day of a zone: the offsets at its ends and the instant the offset changes, if it does. */
interface ZoneDay {
  offStart: number;
  offEnd: number;
  /** First instant (whole second) with `offEnd`; null when the day has one offset. */
  change: number | null;
}

const zoneDays = new Map<string, Map<number, ZoneDay>>();

/**
 * Intl is slow and the scheduler asks for the same days over and over, so offsets are cached
 * per UTC day, with the change instant found by bisection. This assumes at most one change per
 * UTC day, true of the rules of every zone in use today (a test compares against Intl).
 */
function zoneDay(day: number, timeZone: string): ZoneDay {
  let days = zoneDays.get(timeZone);
  if (!days) {
    days = new Map();
    zoneDays.set(timeZone, days);
  }
  let z = days.get(day);
  if (z) return z;
  if (days.size >= MAX_CACHED_DAYS) days.clear();
  const start = day * DAY_MS;
  const end = start + DAY_MS;
  const offStart = days.get(day - 1)?.offEnd ?? intlOffset(start, timeZone);
  const offEnd = days.get(day + 1)?.offStart ?? intlOffset(end, timeZone);
  let change: number | null = null;
  if (offStart !== offEnd) {
    let lo = start;
    let hi = end;
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (intlOffset(mid, timeZone) === offStart) lo = mid;
      else hi = mid;
    }
    change = hi;
  }
  z = { offStart, offEnd, change };
  days.set(day, z);
  return z;
}

/** Offset from UTC (ms, east positive) in effect at instant `u`. */
export function offsetAt(u: number, timeZone: string): number {
  formatterFor(timeZone); // throws RangeError for an unknown zone before anything is cached
  const z = zoneDay(Math.floor(u / DAY_MS), timeZone);
  return z.change === null || u < z.change ? z.offStart : z.offEnd;
}

/** Wall time (encoded as UTC) shown by the zone's clocks at instant `u`. */
export function wallTime(u: number, timeZone: string): number {
  return u + offsetAt(u, timeZone);
}

/** Where a wall time lands on the UTC time line. */
export interface ResolvedWallTime {
  /** The instant Podflow fires at. */
  instant: number;
  /** The wall time does not exist (spring-forward gap); `instant` is the gap-shifted one. */
  inGap: boolean;
}

/**
 * The instant for wall time `L` under Podflow's DST policy (see cron-timetable.ts):
 * - a wall time shown twice (fall-back) resolves to its first occurrence;
 * - a wall time that never shows (spring-forward gap) resolves with the offset in force
 *   before the change, i.e. it is shifted forward by the length of the gap
 *   (02:30 in Berlin on 2026-03-29 -> 03:30 CEST = 01:30Z), the same as Airflow/pendulum and
 *   the `compatible` disambiguation of JavaScript's Temporal.
 */
export function resolveWallTime(L: number, timeZone: string): ResolvedWallTime {
  const candidates = new Set<number>([
    offsetAt(L - MAX_EAST_MS, timeZone),
    offsetAt(L + MAX_WEST_MS, timeZone),
  ]);
  candidates.add(offsetAt(L - offsetAt(L, timeZone), timeZone));
  let best: number | null = null;
  for (const o of candidates) {
    const u = L - o;
    if (offsetAt(u, timeZone) === o && (best === null || u < best)) best = u;
  }
  if (best !== null) return { instant: best, inGap: false };
  // In a gap the offset before the change is the smaller one (clocks jumped forward).
  return { instant: L - Math.min(...candidates), inGap: true };
}

let zoneNames: string[] | null = null;

/** All IANA zone names the runtime knows, for "did you mean" hints. */
export function knownTimeZones(): string[] {
  if (!zoneNames) {
    const intl = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
    zoneNames = intl.supportedValuesOf ? intl.supportedValuesOf('timeZone') : [];
  }
  return zoneNames;
}
