/** A duration as written in a DAG: seconds as a number, or a string such as "90s", "5m", "1h30m", "250ms". */
export type Duration = number | string;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a Duration; throws a message that shows the accepted forms. */
export function parseDuration(value: Duration, what = 'duration'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`${what} must be a non-negative number of seconds, got ${value}`);
    return Math.round(value * 1000);
  }
  const text = value.trim();
  const re = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]];
    matched = re.lastIndex;
  }
  if (text.length === 0 || matched !== text.length) {
    throw new Error(`${what} ${JSON.stringify(value)} is not a duration: write seconds as a number (30) or a string like "30s", "5m", "1h30m", "250ms"`);
  }
  return Math.round(total);
}
