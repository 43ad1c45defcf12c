/**
 * Small numeric helpers shared by the example pipelines' ML code: a seeded PRNG, shuffling,
 * normal draws, and sample summaries. Pure functions, no I/O.
 *
 * @example
 * ```ts
 * const rng = mulberry32(42);
 * const order = shuffled([0, 1, 2, 3], rng); // same order for the same seed, on every machine
 * ```
 */

/** A source of uniform numbers in [0, 1). */
export type Rng = () => number;

/**
 * Mulberry32: a tiny 32-bit seeded PRNG. Good enough for shuffles and simulations, and, unlike
 * `Math.random`, reproducible from a seed, so a re-run of a task makes the same split.
 *
 * @param seed - any integer; only its low 32 bits are used.
 * @throws RangeError when `seed` is not a finite integer.
 */
export function mulberry32(seed: number): Rng {
  assertSeed(seed);
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Throws a RangeError naming the bad value unless `seed` is a finite integer. */
export function assertSeed(seed: number, what = 'seed'): void {
  if (!Number.isInteger(seed)) {
    throw new RangeError(`${what} must be an integer (got ${String(seed)}); pass e.g. { seed: 42 }`);
  }
}

/** A Fisher–Yates shuffled copy of `items`, drawing from `rng`. */
export function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** One standard normal draw (Box–Muller). */
export function standardNormal(rng: Rng): number {
  // 1 - u keeps the argument of log in (0, 1], so log never sees 0.
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Arithmetic mean; throws on an empty sample. */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('mean of an empty sample is undefined; pass at least one value');
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (n - 1 denominator); 0 for a single value. */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}

/** Column `j` of a row-major matrix. */
export function column(rows: readonly (readonly number[])[], j: number): number[] {
  return rows.map((r) => r[j]);
}

/** Ascending numeric sort of a copy (the default sort compares strings). */
export function sortedAscending(xs: readonly number[]): number[] {
  return xs.slice().sort((a, b) => a - b);
}

/**
 * The p-quantile of an ascending-sorted sample by linear interpolation between order statistics
 * (Hyndman–Fan type 7, the default of numpy and R).
 *
 * @param sorted - sample sorted ascending, non-empty.
 * @param p - probability in [0, 1].
 */
export function quantileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of an empty sample is undefined; pass at least one value');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile probability must be in [0, 1] (got ${p})`);
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}
