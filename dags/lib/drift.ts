/**
 * Data-drift statistics for the `retrain_on_new_labels` example pipeline: the population
 * stability index (PSI) and the two-sample Kolmogorov–Smirnov test, per feature, plus a
 * simulator of new labelled batches with an optional covariate shift. Pure functions, no I/O;
 * every result is plain JSON.
 *
 * @example
 * ```ts
 * const ds = loadIris();
 * const batch = simulateNewLabels(ds, { n: 150, shift: 2, seed: 7 });
 * const report = featureDrift(ds.features, batch.features, ds.feature_names);
 * if (report.drifted) retrain();
 * ```
 */
import { assertSeed, column, mulberry32, quantileSorted, sampleStd, sortedAscending, standardNormal } from './stats.ts';

/** Options of {@link populationStabilityIndex}. */
export type PsiOptions = {
  /** Number of quantile bins cut from the expected sample; default 10 (deciles). */
  bins?: number;
  /** Stand-in for an empty bin's proportion, so log(0) never occurs; default 1e-4. */
  epsilon?: number;
};

/** Result of {@link ksStatistic}. */
export type KsResult = {
  /** D = sup_x |F_a(x) - F_b(x)|, in [0, 1]. */
  statistic: number;
  /** Asymptotic two-sided p-value, Q_KS(sqrt(n m / (n + m)) * D). */
  p_value: number;
};

/** Drift of one feature. */
export type FeatureDrift = { name: string; psi: number; ks: number; p_value: number; drifted: boolean };

/** Result of {@link featureDrift}. */
export type DriftReport = {
  per_feature: FeatureDrift[];
  max_psi: number;
  min_p_value: number;
  /** True when at least one feature drifted. */
  drifted: boolean;
  drifted_features: string[];
  psi_threshold: number;
  p_value_threshold: number;
  n_reference: number;
  n_fresh: number;
};

/** A batch of labelled rows, as {@link simulateNewLabels} returns it. */
export type LabelledBatch = { features: number[][]; labels: string[] };

function assertSample(xs: readonly number[], what: string): void {
  if (xs.length === 0) throw new RangeError(`${what} is empty; drift needs at least one value on each side`);
  const bad = xs.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new RangeError(`${what}[${bad}] is ${String(xs[bad])}; drift statistics need finite numbers (drop or impute missing values first)`);
}

/**
 * Interior cut points of `bins` equal-frequency bins of `expected` (type-7 quantiles at
 * k/bins, k = 1 .. bins-1), with repeated cut points dropped: a value tied across a quantile
 * (common in Iris, recorded to 0.1 cm) must not create an empty bin on both sides.
 */
export function quantileBinEdges(expected: readonly number[], bins: number): number[] {
  if (!Number.isInteger(bins) || bins < 2) throw new RangeError(`bins must be an integer >= 2 (got ${String(bins)})`);
  assertSample(expected, 'expected sample');
  const sorted = sortedAscending(expected);
  const edges: number[] = [];
  for (let k = 1; k < bins; k++) {
    const q = quantileSorted(sorted, k / bins);
    if (edges.length === 0 || q > edges[edges.length - 1]) edges.push(q);
  }
  return edges;
}

/**
 * Share of `sample` in each bin cut by `edges`: bin 0 is (-inf, e0], bin i is (e(i-1), e(i)],
 * the last is (e(last), +inf). Returns edges.length + 1 proportions summing to 1.
 */
export function binProportions(sample: readonly number[], edges: readonly number[]): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (const x of sample) {
    let lo = 0;
    let hi = edges.length;
    // Binary search for the first edge >= x; bins are closed on the right.
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (edges[mid] >= x) hi = mid;
      else lo = mid + 1;
    }
    counts[lo]++;
  }
  return counts.map((c) => c / sample.length);
}

/**
 * PSI from binned proportions: sum over bins of (a - e) * ln(a / e). A proportion of 0 is
 * replaced by `epsilon` (not renormalised), the usual convention.
 */
export function psiFromProportions(expected: readonly number[], actual: readonly number[], epsilon = 1e-4): number {
  if (expected.length !== actual.length) throw new RangeError(`PSI needs the same bins on both sides (${expected.length} expected, ${actual.length} actual)`);
  if (!(epsilon > 0)) throw new RangeError(`epsilon must be > 0 (got ${epsilon})`);
  let psi = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i], epsilon);
    const a = Math.max(actual[i], epsilon);
    psi += (a - e) * Math.log(a / e);
  }
  return psi;
}

/**
 * Population stability index of `actual` against `expected`: bins are equal-frequency
 * (quantile) bins of `expected` (see {@link quantileBinEdges}), empty bins count as `epsilon`.
 * 0 means identical binned distributions; the usual reading is < 0.1 stable, 0.1–0.25
 * moderate shift, > 0.25 major shift.
 *
 * @param opts.bins - default 10.
 * @param opts.epsilon - default 1e-4.
 */
export function populationStabilityIndex(expected: readonly number[], actual: readonly number[], opts: PsiOptions = {}): number {
  const { bins = 10, epsilon = 1e-4 } = opts;
  assertSample(actual, 'actual sample');
  const edges = quantileBinEdges(expected, bins);
  return psiFromProportions(binProportions(expected, edges), binProportions(actual, edges), epsilon);
}

/**
 * Survival function of the Kolmogorov distribution, Q_KS(λ) = P(K > λ)
 * = 2 Σ_{k≥1} (-1)^(k-1) exp(-2 k² λ²). For λ < 1.18 the alternating series converges slowly,
 * so the equivalent theta-function form 1 - (√(2π)/λ) Σ_{k≥1} exp(-(2k-1)² π² / (8 λ²)) is used.
 * Equals `scipy.special.kolmogorov(λ)`.
 */
export function kolmogorovSurvival(lambda: number): number {
  if (!(lambda > 0)) return 1;
  let sum = 0;
  if (lambda < 1.18) {
    for (let k = 1; k <= 100; k++) {
      const term = Math.exp(-((2 * k - 1) ** 2) * Math.PI ** 2 / (8 * lambda * lambda));
      sum += term;
      if (term < 1e-17) break;
    }
    return Math.min(1, Math.max(0, 1 - (Math.sqrt(2 * Math.PI) / lambda) * sum));
  }
  for (let k = 1; k <= 100; k++) {
    const term = Math.exp(-2 * k * k * lambda * lambda);
    sum += k % 2 === 1 ? term : -term;
    if (term < 1e-17) break;
  }
  return Math.min(1, Math.max(0, 2 * sum));
}

/**
 * Two-sample Kolmogorov–Smirnov test. The statistic is exact (ties handled by stepping over
 * each distinct value in both samples at once); the p-value is the large-sample one,
 * Q_KS(√(n m / (n + m)) · D), as `scipy.stats.kstwobign.sf` gives it. It is conservative
 * for small samples and with many ties.
 */
export function ksStatistic(a: readonly number[], b: readonly number[]): KsResult {
  assertSample(a, 'first sample');
  assertSample(b, 'second sample');
  const x = sortedAscending(a);
  const y = sortedAscending(b);
  const n = x.length;
  const m = y.length;
  let i = 0;
  let j = 0;
  let d = 0;
  // Once either sample is used up the gap only shrinks, so stopping there is exact.
  while (i < n && j < m) {
    const v = Math.min(x[i], y[j]);
    while (i < n && x[i] === v) i++;
    while (j < m && y[j] === v) j++;
    d = Math.max(d, Math.abs(i / n - j / m));
  }
  return { statistic: d, p_value: kolmogorovSurvival(Math.sqrt((n * m) / (n + m)) * d) };
}

/**
 * Per-feature drift of `fresh` rows against `train` rows. A feature drifts when its PSI is at
 * least `psi_threshold` (the shift is large enough to matter) AND its KS p-value is below
 * `p_value_threshold` (the shift is not sampling noise: PSI of small samples is noisy).
 *
 * @param names - one name per column.
 * @param opts.psi_threshold - default 0.2.
 * @param opts.p_value_threshold - default 0.05.
 * @param opts.bins - PSI bins; default 10.
 */
export function featureDrift(
  train: readonly (readonly number[])[],
  fresh: readonly (readonly number[])[],
  names: readonly string[],
  opts: { psi_threshold?: number; p_value_threshold?: number; bins?: number } = {},
): DriftReport {
  const { psi_threshold = 0.2, p_value_threshold = 0.05, bins = 10 } = opts;
  if (train.length === 0 || fresh.length === 0) {
    throw new RangeError(`featureDrift needs rows on both sides (reference ${train.length}, fresh ${fresh.length})`);
  }
  for (const [what, rows] of [['reference', train], ['fresh', fresh]] as const) {
    const bad = rows.findIndex((r) => r.length !== names.length);
    if (bad >= 0) throw new RangeError(`featureDrift: ${what} row ${bad} has ${rows[bad].length} values but ${names.length} feature names were given`);
  }
  const per_feature = names.map((name, f): FeatureDrift => {
    const ref = column(train, f);
    const now = column(fresh, f);
    const psi = populationStabilityIndex(ref, now, { bins });
    const { statistic, p_value } = ksStatistic(ref, now);
    return { name, psi, ks: statistic, p_value, drifted: psi >= psi_threshold && p_value < p_value_threshold };
  });
  const drifted_features = per_feature.filter((f) => f.drifted).map((f) => f.name);
  return {
    per_feature,
    max_psi: Math.max(...per_feature.map((f) => f.psi)),
    min_p_value: Math.min(...per_feature.map((f) => f.p_value)),
    drifted: drifted_features.length > 0,
    drifted_features,
    psi_threshold,
    p_value_threshold,
    n_reference: train.length,
    n_fresh: fresh.length,
  };
}

/**
 * Simulates a batch of newly labelled samples, as a labelling job would deliver them: rows are
 * drawn with replacement from `ds` (so the class mix follows the data), each measurement is
 * re-taken with Gaussian error of `noise` standard deviations of its feature, then offset by
 * `shift` standard deviations (a covariate shift, e.g. a miscalibrated instrument), rounded to
 * one decimal like the Iris records and kept >= 0.1. Labels are the drawn rows' true labels.
 *
 * @param opts.n - rows to produce (integer >= 1).
 * @param opts.shift - offset in feature standard deviations; default 0 (no drift).
 * @param opts.seed - integer seed; same seed, same batch.
 * @param opts.noise - measurement error in feature standard deviations; default 0.1.
 */
export function simulateNewLabels(
  ds: { features: readonly (readonly number[])[]; labels: readonly string[] },
  opts: { n: number; shift?: number; seed: number; noise?: number },
): LabelledBatch {
  const { n, shift = 0, seed, noise = 0.1 } = opts;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be an integer >= 1 (got ${String(n)})`);
  if (!Number.isFinite(shift)) throw new RangeError(`shift must be a finite number of standard deviations (got ${String(shift)})`);
  if (!(noise >= 0)) throw new RangeError(`noise must be >= 0 (got ${String(noise)})`);
  assertSeed(seed);
  if (ds.features.length === 0) throw new RangeError('simulateNewLabels needs a non-empty data set to draw from');
  const sd = ds.features[0].map((_, f) => sampleStd(column(ds.features, f)));
  const rng = mulberry32(seed);
  const features: number[][] = [];
  const labels: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = Math.floor(rng() * ds.features.length);
    features.push(ds.features[r].map((x, f) => {
      const measured = x + (noise * standardNormal(rng) + shift) * sd[f];
      return Math.max(0.1, Math.round(measured * 10) / 10);
    }));
    labels.push(ds.labels[r]);
  }
  return { features, labels };
}
