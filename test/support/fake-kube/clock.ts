/**
 * Time stamps in the forms the Kubernetes API uses. Log lines carry nanosecond stamps that must
 * be strictly increasing, or a client resuming with `sinceTime` could not tell lines apart.
 */

let lastNs = 0n;
const hrtimeOrigin = process.hrtime.bigint();
const wallOriginNs = BigInt(Date.now()) * 1_000_000n;

/** Nanoseconds since the epoch, strictly increasing within this process. */
export function nowNs(): bigint {
  let ns = wallOriginNs + (process.hrtime.bigint() - hrtimeOrigin);
  if (ns <= lastNs) ns = lastNs + 1n;
  lastNs = ns;
  return ns;
}

/** RFC 3339 with second precision, as metav1.Time is serialized: `2026-12-03T18:25:15Z`. */
export function rfc3339(ms: number = Date.now()): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** RFC 3339 with microseconds, as metav1.MicroTime (event `eventTime`) is serialized. */
export function rfc3339Micro(ns: bigint = nowNs()): string {
  return rfc3339NanoFixed(ns).slice(0, 26) + 'Z';
}

/**
 * Fixed-width RFC 3339 with nanoseconds, the form the kubelet prefixes log lines with when
 * `timestamps=true` (`2026-12-03T18:25:15.123456789Z`).
 */
export function rfc3339NanoFixed(ns: bigint): string {
  const seconds = ns / 1_000_000_000n;
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return new Date(Number(seconds) * 1000).toISOString().slice(0, 19) + '.' + fraction + 'Z';
}

/**
 * Parses an RFC 3339 time (any fraction length, `Z` or an offset) to nanoseconds since the
 * epoch, as the API server parses `sinceTime`. Returns undefined when the text is not RFC 3339.
 */
export function parseRfc3339Ns(text: string): bigint | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(text);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3].toUpperCase()}`);
  if (Number.isNaN(ms)) return undefined;
  const fraction = BigInt((m[2] ?? '').padEnd(9, '0'));
  return BigInt(ms) * 1_000_000n + fraction;
}
