/**
 * The steps of the `iris_training` example as a command-line program, for its pod executor
 * (IRIS_EXECUTOR=pod): each step runs as a container (or, without a cluster, as a local
 * process) and hands data to the next through files in the run's folder.
 *
 *   node --import tsx dags/lib/iris-steps.ts <step> --run-id ID [--artifacts DIR] [options]
 *
 *   ingest                                   writes iris.csv
 *   split       --seed N --test-fraction F   writes split.json
 *   search      --setting JSON|ID --seed N --folds K
 *                                            writes search/<setting id>.json
 *   select_best                              reads every search result, writes best.json
 *   train       --seed N                     writes model.json
 *   evaluate    --min-accuracy A             writes evaluation.json; exits 1 below A
 *   publish     --dag-id ID                  copies the model and writes metrics.json to
 *                                            <artifacts>/iris_training/
 *
 * The run's folder is <artifacts>/iris_training/runs/<run id, made file-name safe>, the same
 * folder the inline steps use. <artifacts> is --artifacts, else $PODFLOW_ARTIFACTS, else
 * ./artifacts; on a cluster every step's pod mounts the same volume there.
 *
 * Each step prints progress to stdout (the task log) and writes a small JSON summary to
 * $PODFLOW_RESULT_FILE when set (the task's return value). The pod operator records a
 * summary's `metrics` object of numbers as the task's metrics and its `artifacts` list
 * (`{ uri, media_type, ... }`) as the try's outputs, as the inline steps' ctx.metric() and
 * ctx.artifact() do. Exit codes: 0 done, 1 the step failed (e.g. accuracy below the bar),
 * 2 bad arguments or missing inputs.
 *
 * Files in dags/lib must never contain the orchestrator's package name (see iris.ts).
 */
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  evaluateModel,
  evaluateSetting,
  loadIris,
  pick,
  searchSpace,
  selectBest,
  stratifiedSplit,
  trainForest,
  writeIrisCsv,
  type DataSplit,
  type ForestModel,
  type HyperParams,
  type ModelEvaluation,
  type SettingResult,
} from './iris.ts';

/** The step names, in pipeline order. */
export const IRIS_STEPS = ['ingest', 'split', 'search', 'select_best', 'train', 'evaluate', 'publish'] as const;
export type IrisStep = (typeof IRIS_STEPS)[number];

/** An output file for lineage: `uri` plus metadata (media_type, size, sha256). */
export type StepArtifact = { uri: string; media_type?: string; size?: number; sha256?: string };

/** A step's summary: the task's return value; `metrics` become task metrics, `artifacts` the try's registered outputs. */
export type StepResult = Record<string, unknown> & { metrics?: Record<string, number>; artifacts?: StepArtifact[] };

const JSON_MEDIA = 'application/json';

/** Wrong arguments or missing inputs (exit code 2). */
export class StepUsageError extends Error {}
/** The step ran and its check failed (exit code 1). */
export class StepFailedError extends Error {}

export interface StepOptions {
  step: IrisStep;
  runId: string;
  /** The artifacts folder; the run's folder is below it. */
  artifacts: string;
  opts: Record<string, string>;
}

/** Parses `<step> --name value ...`; throws StepUsageError with the fix. */
export function parseStepArgs(argv: readonly string[], env: Record<string, string | undefined> = process.env): StepOptions {
  const [step, ...rest] = argv;
  if (!IRIS_STEPS.includes(step as IrisStep)) {
    throw new StepUsageError(`unknown step ${JSON.stringify(step)}; give one of ${IRIS_STEPS.join(', ')}`);
  }
  const opts: Record<string, string> = {};
  for (let i = 0; i < rest.length; i += 2) {
    const key = rest[i]!;
    if (!key.startsWith('--') || rest[i + 1] === undefined) throw new StepUsageError(`bad argument ${JSON.stringify(key)}: expected --name value pairs`);
    opts[key.slice(2)] = rest[i + 1]!;
  }
  const runId = opts['run-id'] ?? env.PODFLOW_RUN_ID;
  if (!runId) throw new StepUsageError('no run id: pass --run-id (the DAG passes {{ run_id }})');
  const artifacts = resolve(opts.artifacts ?? env.PODFLOW_ARTIFACTS ?? './artifacts');
  return { step: step as IrisStep, runId, artifacts, opts };
}

/** This run's folder: <artifacts>/iris_training/runs/<run id> (run ids made file-name safe, as the inline steps do). */
export function runFolderOf(artifacts: string, runId: string): string {
  return join(artifacts, 'iris_training', 'runs', runId.replace(/[^A-Za-z0-9_.-]/g, '_'));
}

function num(o: StepOptions, name: string): number {
  const raw = o.opts[name];
  const n = raw === undefined ? Number.NaN : Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isFinite(n)) {
    throw new StepUsageError(`--${name} must be a number, got ${JSON.stringify(raw)}`);
  }
  return n;
}

async function readJson<T>(path: string, producedBy: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new StepUsageError(`${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); it is written by the '${producedBy}' step of the same run: run that first, with the same --run-id and --artifacts`);
  }
  return JSON.parse(text) as T;
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** The hyper-parameter setting of `--setting`: the setting as JSON (the mapped value) or its id. */
function settingOf(o: StepOptions): HyperParams {
  const raw = o.opts.setting;
  if (!raw) throw new StepUsageError('--setting is required (a setting as JSON, or its id)');
  const space = searchSpace();
  if (raw.trim().startsWith('{')) {
    const p = JSON.parse(raw) as HyperParams;
    if (typeof p.id !== 'string' || ![p.nEstimators, p.maxFeatures, p.maxDepth, p.minNumSamples].every((v) => Number.isInteger(v))) {
      throw new StepUsageError(`--setting ${raw} is not a setting {id, nEstimators, maxFeatures, maxDepth, minNumSamples}`);
    }
    return p;
  }
  const p = space.find((s) => s.id === raw);
  if (!p) throw new StepUsageError(`--setting: no setting with id ${JSON.stringify(raw)}; ids: ${space.map((s) => s.id).join(', ')}`);
  return p;
}

/** Runs one step; returns its summary. `log` receives progress lines. */
export async function runStep(o: StepOptions, log: (line: string) => void = console.log): Promise<StepResult> {
  const dir = runFolderOf(o.artifacts, o.runId);
  await mkdir(dir, { recursive: true });
  const splitFile = join(dir, 'split.json');
  const modelFile = join(dir, 'model.json');
  switch (o.step) {
    case 'ingest': {
      const file = join(dir, 'iris.csv');
      const written = await writeIrisCsv(file);
      log(`wrote ${written.bytes} bytes of Iris data to ${file} (sha256 ${written.sha256})`);
      return {
        path: file,
        sha256: written.sha256,
        rows: loadIris().labels.length,
        artifacts: [{ uri: file, media_type: 'text/csv', sha256: written.sha256, size: written.bytes }],
      };
    }
    case 'split': {
      const s = stratifiedSplit(loadIris(), { test_fraction: num(o, 'test-fraction'), seed: num(o, 'seed') });
      await writeJson(splitFile, s);
      log(`stratified split: ${s.train_idx.length} train, ${s.test_idx.length} test rows`);
      return { path: splitFile, n_train: s.train_idx.length, n_test: s.test_idx.length, artifacts: [{ uri: splitFile, media_type: JSON_MEDIA }] };
    }
    case 'search': {
      const params = settingOf(o);
      const s = await readJson<DataSplit>(splitFile, 'split');
      const result = evaluateSetting(loadIris(), s, params, num(o, 'seed'), { folds: num(o, 'folds') });
      await mkdir(join(dir, 'search'), { recursive: true });
      await writeJson(join(dir, 'search', `${params.id}.json`), result);
      log(`setting ${params.id}: cross-validated accuracy ${result.validation_accuracy.toFixed(4)}`);
      return { ...result, metrics: { validation_accuracy: result.validation_accuracy } };
    }
    case 'select_best': {
      const files = new Set(await readdir(join(dir, 'search')).catch(() => [] as string[]));
      const missing = searchSpace().filter((p) => !files.has(`${p.id}.json`)).map((p) => p.id);
      if (missing.length) throw new StepUsageError(`no search result for ${missing.join(', ')} in ${join(dir, 'search')}; run the search step for every setting first`);
      const results = await Promise.all(searchSpace().map((p) => readJson<SettingResult>(join(dir, 'search', `${p.id}.json`), 'search')));
      const best = selectBest(results);
      await writeJson(join(dir, 'best.json'), best);
      log(`best of ${results.length} settings: ${best.params.id} (${best.validation_accuracy.toFixed(4)})`);
      return { ...best, metrics: { validation_accuracy: best.validation_accuracy } };
    }
    case 'train': {
      const best = await readJson<SettingResult>(join(dir, 'best.json'), 'select_best');
      const s = await readJson<DataSplit>(splitFile, 'split');
      const ds = loadIris();
      const { model_json } = trainForest(pick(ds.features, s.train_idx), pick(ds.labels, s.train_idx), best.params, num(o, 'seed'));
      await writeJson(modelFile, model_json);
      log(`trained ${best.params.id} on ${s.train_idx.length} rows`);
      return { model_path: modelFile, params: best.params, artifacts: [{ uri: modelFile, media_type: JSON_MEDIA }] };
    }
    case 'evaluate': {
      const model = await readJson<ForestModel>(modelFile, 'train');
      const s = await readJson<DataSplit>(splitFile, 'split');
      const ev = evaluateModel(model, loadIris(), s.test_idx);
      await writeJson(join(dir, 'evaluation.json'), ev);
      const min = num(o, 'min-accuracy');
      log(`held-out accuracy ${ev.accuracy.toFixed(4)} (${ev.correct}/${ev.n}); required >= ${min}`);
      if (ev.accuracy < min) throw new StepFailedError(`test accuracy ${ev.accuracy.toFixed(4)} is below min_accuracy ${min}: the model is not published`);
      return { ...ev, metrics: { accuracy: ev.accuracy } };
    }
    case 'publish': {
      const ev = await readJson<ModelEvaluation>(join(dir, 'evaluation.json'), 'evaluate');
      const best = await readJson<SettingResult>(join(dir, 'best.json'), 'select_best');
      await readJson<ForestModel>(modelFile, 'train');
      const out = join(o.artifacts, 'iris_training');
      await mkdir(out, { recursive: true });
      const model = join(out, 'model.json');
      const metricsFile = join(out, 'metrics.json');
      await copyFile(modelFile, model);
      await writeJson(metricsFile, {
        dag_id: o.opts['dag-id'] ?? 'iris_training',
        run_id: o.runId,
        accuracy: ev.accuracy,
        test_rows: ev.n,
        confusion_matrix: ev.confusion_matrix,
        params: best.params,
        published_at: new Date().toISOString(),
      });
      log(`published ${model} and ${metricsFile}`);
      // `metrics` is the operator's metrics object, so the file's path goes under another name.
      return {
        model,
        metrics_file: metricsFile,
        accuracy: ev.accuracy,
        metrics: { accuracy: ev.accuracy },
        artifacts: [
          { uri: model, media_type: JSON_MEDIA },
          { uri: metricsFile, media_type: JSON_MEDIA },
        ],
      };
    }
  }
}

/** CLI entry: runs the step of `argv`, writes the result file, returns the exit code. */
export async function main(argv: readonly string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const where = `iris-steps ${argv[0] ?? ''}`.trim();
  try {
    const o = parseStepArgs(argv, env);
    const result = await runStep(o);
    const text = JSON.stringify(result);
    if (env.PODFLOW_RESULT_FILE) await writeFile(env.PODFLOW_RESULT_FILE, text);
    console.log(`result: ${text}`);
    return 0;
  } catch (e) {
    console.error(`${where}: ${(e as Error).message}`);
    return e instanceof StepUsageError ? 2 : 1;
  }
}

// Run as a program (not when imported by tests).
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
