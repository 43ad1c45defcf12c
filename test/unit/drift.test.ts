import { describe, expect, it } from 'vitest';
import {
  binProportions,
  featureDrift,
  kolmogorovSurvival,
  ksStatistic,
  populationStabilityIndex,
  psiFromProportions,
  quantileBinEdges,
  simulateNewLabels,
} from '../../dags/lib/drift.ts';
import { loadIris, pick, stratifiedSplit } from '../../dags/lib/iris.ts';
import { column, mean, mulberry32, sampleStd, shuffled } from '../../dags/lib/stats.ts';

const ds = loadIris();
const split = stratifiedSplit(ds, { test_fraction: 0.2, seed: 42 });
const train = pick(ds.features, split.train_idx);

describe('populationStabilityIndex', () => {
  it('is exactly 0 for identical samples, in any order', () => {
    const petal = column(ds.features, 2);
    expect(populationStabilityIndex(petal, petal)).toBe(0);
    expect(populationStabilityIndex(petal, shuffled(petal, mulberry32(3)))).toBe(0);
  });

  it('matches the hand computation for two median bins', () => {
    // Median of [1,2,3,4] is 2.5: expected 50% | 50%, actual [1,3,4,4] 25% | 75%.
    const expected = 0.25 * Math.log(0.5 / 0.25) + 0.25 * Math.log(0.75 / 0.5);
    expect(populationStabilityIndex([1, 2, 3, 4], [1, 3, 4, 4], { bins: 2 })).toBeCloseTo(expected, 14);
    expect(expected).toBeCloseTo(0.274653, 6);
  });

  it('counts an empty bin as epsilon = 1e-4 (deciles, two bins doubled, two emptied)', () => {
    const e = Array(10).fill(0.1);
    const a = [0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0, 0];
    const byHand = 2 * (0.1 * Math.log(2)) + 2 * ((1e-4 - 0.1) * Math.log(1e-4 / 0.1));
    expect(psiFromProportions(e, a)).toBeCloseTo(byHand, 14);
    expect(byHand).toBeCloseTo(1.518799, 6);
  });

  it('cuts type-7 quantile bins and merges cut points repeated by ties', () => {
    expect(quantileBinEdges([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 4)).toEqual([3.25, 5.5, 7.75]);
    expect(quantileBinEdges([1, 1, 1, 1, 2], 4)).toEqual([1]);
    expect(binProportions([1, 1, 1, 1, 2], [1])).toEqual([0.8, 0.2]);
  });

  it('rejects non-finite values naming the position', () => {
    expect(() => populationStabilityIndex([1, 2], [1, Number.NaN])).toThrow('actual sample[1] is NaN');
  });
});

describe('ksStatistic', () => {
  it('finds D = 1/2 for [1,2,3,4] vs [3,4,5,6] with the Kolmogorov p-value', () => {
    // F_a - F_b at x = 1,2,3,4,5,6: 1/4, 2/4, 3/4-1/4, 1-2/4, 1-3/4, 0 -> D = 1/2.
    // λ = sqrt(4*4/8) * 1/2; Q(λ) = 2 Σ (-1)^(k-1) exp(-2 k² λ²) = 2(e^-1 - e^-4 + e^-9 - e^-16 ...).
    const lambda = Math.sqrt(2) * 0.5;
    let q = 0;
    for (let k = 1; k <= 50; k++) q += 2 * (-1) ** (k - 1) * Math.exp(-2 * k * k * lambda * lambda);
    const r = ksStatistic([1, 2, 3, 4], [3, 4, 5, 6]);
    expect(r.statistic).toBe(0.5);
    expect(r.p_value).toBeCloseTo(q, 12);
    expect(r.p_value).toBeCloseTo(0.699374, 6); // scipy.special.kolmogorov(sqrt(2)/2)
  });

  it('steps over ties in both samples at once: D = 9/35', () => {
    // At x = 2.2 both samples' tied values are counted: F_a = 6/7, F_b = 3/5 -> 30/35 - 21/35.
    const r = ksStatistic([0.1, 0.5, 0.9, 1.3, 2.2, 2.2, 3.0], [0.4, 1.3, 1.3, 2.5, 2.6]);
    expect(r.statistic).toBeCloseTo(9 / 35, 15);
    expect(r.p_value).toBeCloseTo(0.9904872712, 9); // scipy.special.kolmogorov(sqrt(35/12) * 9/35)
  });

  it('gives D = 0, p = 1 for identical samples and D = 1 for disjoint ones', () => {
    expect(ksStatistic([3, 1, 2], [1, 2, 3])).toEqual({ statistic: 0, p_value: 1 });
    expect(ksStatistic([1, 2, 3], [4, 5, 6]).statistic).toBe(1);
  });

  it('reproduces the textbook 5% and 1% critical values of the Kolmogorov distribution', () => {
    expect(kolmogorovSurvival(1.3581)).toBeCloseTo(0.05, 5);
    expect(kolmogorovSurvival(1.6276)).toBeCloseTo(0.01, 5);
    // Both series agree where the implementation switches from one to the other.
    expect(kolmogorovSurvival(1.18 - 1e-12)).toBeCloseTo(kolmogorovSurvival(1.18), 10);
  });
});

describe('simulateNewLabels', () => {
  it('draws the same labelled batch for the same seed, recorded to 0.1 cm', () => {
    const a = simulateNewLabels(ds, { n: 3, seed: 1 });
    expect(a).toEqual({
      features: [[5.6, 2.8, 4.1, 1.2], [5.8, 3, 5.2, 1.9], [5.2, 2.7, 3.7, 1.4]],
      labels: ['versicolor', 'virginica', 'versicolor'],
    });
    expect(simulateNewLabels(ds, { n: 3, seed: 1 })).toEqual(a);
  });

  it('moves each feature mean by about shift standard deviations', () => {
    const batch = simulateNewLabels(ds, { n: 600, shift: 2, seed: 5 });
    expect(batch.features).toHaveLength(600);
    expect(new Set(batch.labels)).toEqual(new Set(ds.classes));
    for (let f = 0; f < 4; f++) {
      const moved = (mean(column(batch.features, f)) - mean(column(ds.features, f))) / sampleStd(column(ds.features, f));
      expect(Math.abs(moved - 2)).toBeLessThan(0.2);
    }
  });

  it('rejects a non-integer n with the expected form', () => {
    expect(() => simulateNewLabels(ds, { n: 2.5, seed: 1 })).toThrow('n must be an integer >= 1 (got 2.5)');
  });
});

describe('featureDrift', () => {
  it('detects drift in all four features for shift = 2', () => {
    const batch = simulateNewLabels(ds, { n: 150, shift: 2, seed: 11 });
    const report = featureDrift(train, batch.features, ds.feature_names);
    expect(report.drifted).toBe(true);
    expect(report.drifted_features).toEqual(ds.feature_names);
    expect(report.max_psi).toBeGreaterThan(1);
    expect(report.min_p_value).toBeLessThan(1e-10);
    expect(report).toMatchObject({ psi_threshold: 0.2, p_value_threshold: 0.05, n_reference: 120, n_fresh: 150 });
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });

  it('detects no drift for shift = 0 on any of 20 seeds', () => {
    const flagged = Array.from({ length: 20 }, (_, i) => i + 1).filter(
      (seed) => featureDrift(train, simulateNewLabels(ds, { n: 150, shift: 0, seed }).features, ds.feature_names).drifted,
    );
    expect(flagged).toEqual([]);
  });

  it('detects shift = 2 on every one of 20 seeds', () => {
    const missed = Array.from({ length: 20 }, (_, i) => i + 1).filter(
      (seed) => !featureDrift(train, simulateNewLabels(ds, { n: 150, shift: 2, seed }).features, ds.feature_names).drifted,
    );
    expect(missed).toEqual([]);
  });

  it('reports one entry per feature with its PSI, KS statistic and p-value', () => {
    const batch = simulateNewLabels(ds, { n: 150, shift: 0, seed: 3 });
    const report = featureDrift(train, batch.features, ds.feature_names);
    expect(report.per_feature.map((f) => f.name)).toEqual(ds.feature_names);
    const petal = report.per_feature[2];
    expect(petal.psi).toBe(populationStabilityIndex(column(train, 2), column(batch.features, 2)));
    expect({ ks: petal.ks, p_value: petal.p_value }).toEqual(
      (({ statistic, p_value }) => ({ ks: statistic, p_value }))(ksStatistic(column(train, 2), column(batch.features, 2))),
    );
    expect(report.drifted).toBe(false);
  });

  it('names the row whose width does not match the feature names', () => {
    expect(() => featureDrift(train, [[1, 2, 3]], ds.feature_names)).toThrow('featureDrift: fresh row 0 has 3 values but 4 feature names were given');
  });
});
