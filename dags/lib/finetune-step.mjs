#!/usr/bin/env node
/**
 * The steps of the gpu_finetune example, small enough to run on a laptop in seconds:
 * a softmax classifier pretrained on a source domain is fine-tuned on a shifted target
 * domain (the shape of a real fine-tune: base weights + new data + a few epochs).
 *
 *   node finetune-step.mjs prepare  [--data DIR] [--samples N] [--seed S]
 *   node finetune-step.mjs finetune [--data DIR] [--epochs E] [--lr LR] [--batch B]
 *   node finetune-step.mjs evaluate [--data DIR] [--min-accuracy A]
 *
 * DIR defaults to $PODFLOW_ARTIFACTS/gpu_finetune/runs/<run id> (local mode); in a pod it is the
 * PVC mount. Each step writes its summary as JSON to $PODFLOW_RESULT_FILE when set (the
 * task's return value) and prints progress lines to stdout (the task log).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const CLASSES = 3;
const FEATURES = 4;

function parseArgs(argv) {
  const [step, ...rest] = argv;
  const opts = {};
  for (let i = 0; i < rest.length; i += 2) {
    const key = rest[i];
    if (!key?.startsWith('--') || rest[i + 1] === undefined) fail(`bad argument ${JSON.stringify(key)}: expected --name value pairs`);
    opts[key.slice(2)] = rest[i + 1];
  }
  return { step, opts };
}

function fail(message) {
  console.error(`finetune-step: ${message}`);
  process.exit(2);
}

function num(opts, name, dflt) {
  if (opts[name] === undefined) return dflt;
  const n = Number(opts[name]);
  if (!Number.isFinite(n)) fail(`--${name} must be a number, got ${JSON.stringify(opts[name])}`);
  return n;
}

function dataDir(opts) {
  if (opts.data) return resolve(opts.data);
  const run = (process.env.PODFLOW_RUN_ID ?? 'adhoc').replace(/[^A-Za-z0-9_.-]/g, '_');
  return resolve(process.env.PODFLOW_ARTIFACTS ?? 'artifacts', 'gpu_finetune', 'runs', run);
}

function result(value) {
  const file = process.env.PODFLOW_RESULT_FILE;
  if (file) writeFileSync(file, JSON.stringify(value));
  console.log(`result: ${JSON.stringify(value)}`);
}

// Seeded PRNG (mulberry32) and Box-Muller normals: the same seed gives the same data everywhere.
function rng(seed) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

const SOURCE_CENTERS = [
  [0, 0, 0, 0],
  [3, 0, 1, 0],
  [0, 3, 0, 1],
];
// The target domain: the same classes, measured by a shifted and rescaled instrument.
const SHIFT = [1.8, -1.2, 0.8, 0.5];

function sample(r, n, target) {
  const X = [];
  const y = [];
  for (let i = 0; i < n; i++) {
    const c = i % CLASSES;
    const x = SOURCE_CENTERS[c].map((m, j) => m + r.normal() * 0.9);
    X.push(target ? x.map((v, j) => v * (j === 0 ? 1.3 : 1) + SHIFT[j]) : x);
    y.push(c);
  }
  return { X, y };
}

function newModel() {
  return { W: Array.from({ length: CLASSES }, () => new Array(FEATURES).fill(0)), b: new Array(CLASSES).fill(0) };
}

function probs(model, x) {
  const z = model.W.map((w, k) => w.reduce((s, wj, j) => s + wj * x[j], model.b[k]));
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const sum = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / sum);
}

function lossAndAccuracy(model, X, y) {
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < X.length; i++) {
    const p = probs(model, X[i]);
    loss -= Math.log(Math.max(p[y[i]], 1e-12));
    if (p.indexOf(Math.max(...p)) === y[i]) correct++;
  }
  return { loss: loss / X.length, accuracy: correct / X.length };
}

/** One epoch of mini-batch SGD on the cross-entropy; returns the mean training loss. */
function epoch(model, X, y, lr, batch, r) {
  const order = X.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(r.uniform() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  for (let start = 0; start < order.length; start += batch) {
    const idx = order.slice(start, start + batch);
    const gW = model.W.map((w) => w.map(() => 0));
    const gb = model.b.map(() => 0);
    for (const i of idx) {
      const p = probs(model, X[i]);
      for (let k = 0; k < CLASSES; k++) {
        const d = p[k] - (y[i] === k ? 1 : 0);
        gb[k] += d;
        for (let j = 0; j < FEATURES; j++) gW[k][j] += d * X[i][j];
      }
    }
    for (let k = 0; k < CLASSES; k++) {
      model.b[k] -= (lr * gb[k]) / idx.length;
      for (let j = 0; j < FEATURES; j++) model.W[k][j] -= (lr * gW[k][j]) / idx.length;
    }
  }
  return lossAndAccuracy(model, X, y).loss;
}

function readJson(path, what) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    fail(`cannot read ${what} at ${path} (${e.code ?? e.message}); run the prepare step first with the same --data`);
  }
}

function sha256(text) {
  return createHash('sha256').update(text).digest('hex');
}

function prepare(opts) {
  const dir = dataDir(opts);
  const n = num(opts, 'samples', 600);
  const seed = num(opts, 'seed', 7);
  if (n < 30) fail('--samples must be at least 30');
  mkdirSync(dir, { recursive: true });
  const r = rng(seed);
  // Pretraining on plentiful source data stands in for downloading a base model.
  const source = sample(r, 3000, false);
  const base = newModel();
  for (let e = 0; e < 15; e++) epoch(base, source.X, source.y, 0.1, 64, r);
  const src = lossAndAccuracy(base, source.X, source.y);
  console.log(`base model: source accuracy ${src.accuracy.toFixed(3)} after pretraining on ${source.X.length} rows`);
  const target = sample(r, n, true);
  const cut = Math.floor(n * 0.8);
  const data = { train: { X: target.X.slice(0, cut), y: target.y.slice(0, cut) }, val: { X: target.X.slice(cut), y: target.y.slice(cut) } };
  const text = JSON.stringify(data);
  writeFileSync(join(dir, 'target.json'), text);
  writeFileSync(join(dir, 'base-model.json'), JSON.stringify(base));
  console.log(`target data: ${cut} training and ${n - cut} validation rows written to ${dir}`);
  result({ data_dir: dir, n_train: cut, n_val: n - cut, data_sha256: sha256(text), base_source_accuracy: Number(src.accuracy.toFixed(4)) });
}

function finetune(opts) {
  const dir = dataDir(opts);
  const epochs = num(opts, 'epochs', 1);
  const lr = num(opts, 'lr', 0.05);
  const batch = num(opts, 'batch', 16);
  if (!Number.isInteger(epochs) || epochs < 1) fail('--epochs must be a whole number >= 1');
  const data = readJson(join(dir, 'target.json'), 'the target data');
  const model = readJson(join(dir, 'base-model.json'), 'the base model');
  const device = process.env.NVIDIA_VISIBLE_DEVICES || process.env.CUDA_VISIBLE_DEVICES ? `gpu ${process.env.NVIDIA_VISIBLE_DEVICES || process.env.CUDA_VISIBLE_DEVICES}` : 'cpu';
  console.log(`fine-tuning on ${device}: ${data.train.X.length} rows, ${epochs} epoch(s), lr ${lr}, batch ${batch}`);
  const before = lossAndAccuracy(model, data.val.X, data.val.y);
  console.log(`before: val loss ${before.loss.toFixed(4)} accuracy ${before.accuracy.toFixed(3)}`);
  const r = rng(1234);
  let trainLoss = before.loss;
  for (let e = 1; e <= epochs; e++) {
    trainLoss = epoch(model, data.train.X, data.train.y, lr, batch, r);
    const v = lossAndAccuracy(model, data.val.X, data.val.y);
    console.log(`epoch ${e}/${epochs}: train loss ${trainLoss.toFixed(4)} val loss ${v.loss.toFixed(4)} accuracy ${v.accuracy.toFixed(3)}`);
  }
  const after = lossAndAccuracy(model, data.val.X, data.val.y);
  const checkpoint = join(dir, 'finetuned-model.json');
  const text = JSON.stringify(model);
  writeFileSync(checkpoint, text);
  result({
    device,
    epochs,
    base_val_accuracy: Number(before.accuracy.toFixed(4)),
    val_accuracy: Number(after.accuracy.toFixed(4)),
    train_loss: Number(trainLoss.toFixed(4)),
    checkpoint,
    checkpoint_sha256: sha256(text),
  });
}

function evaluate(opts) {
  const dir = dataDir(opts);
  const min = num(opts, 'min-accuracy', 0.8);
  const data = readJson(join(dir, 'target.json'), 'the target data');
  const model = readJson(join(dir, 'finetuned-model.json'), 'the fine-tuned model');
  const confusion = Array.from({ length: CLASSES }, () => new Array(CLASSES).fill(0));
  for (let i = 0; i < data.val.X.length; i++) {
    const p = probs(model, data.val.X[i]);
    confusion[data.val.y[i]][p.indexOf(Math.max(...p))]++;
  }
  const correct = confusion.reduce((s, row, k) => s + row[k], 0);
  const accuracy = correct / data.val.X.length;
  console.log(`validation accuracy ${accuracy.toFixed(3)} (${correct}/${data.val.X.length}); confusion ${JSON.stringify(confusion)}`);
  result({ accuracy: Number(accuracy.toFixed(4)), confusion_matrix: confusion, min_accuracy: min });
  if (accuracy < min) {
    console.error(`accuracy ${accuracy.toFixed(3)} is below --min-accuracy ${min}: train longer (params.epochs) or lower the bar`);
    process.exit(1);
  }
}

const { step, opts } = parseArgs(process.argv.slice(2));
const steps = { prepare, finetune, evaluate };
if (!steps[step]) fail(`unknown step ${JSON.stringify(step)}; use prepare, finetune or evaluate`);
steps[step](opts);
