/**
 * iris_training: a real, small ML pipeline on the Iris data set.
 *
 * ingest -> split (stratified) -> search (one mapped instance per hyper-parameter setting,
 * run in parallel) -> select_best (by cross-validated accuracy) -> train -> evaluate (fails
 * the run below params.min_accuracy) -> publish (model and metrics JSON under the artifacts
 * folder, PODFLOW_ARTIFACTS, default ./artifacts).
 *
 * Trigger by hand: `npx podflow dags trigger iris_training --wait`
 * or with settings: `--conf '{"seed": 7, "min_accuracy": 0.85}'`.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { dag, type Json, type TaskContext } from 'podflow';
import {
  evaluateModel,
  evaluateSetting,
  loadIris,
  searchSpace,
  selectBest,
  stratifiedSplit,
  trainForest,
  pick,
  writeIrisCsv,
  type DataSplit,
  type ForestModel,
  type HyperParams,
  type SettingResult,
} from './lib/iris.ts';

function artifactsRoot(): string {
  return resolve(process.env.PODFLOW_ARTIFACTS ?? './artifacts');
}

/** This run's folder: artifacts/iris_training/runs/<run id>/ (run ids made file-name safe). */
async function runFolder(ctx: TaskContext): Promise<string> {
  const dir = join(artifactsRoot(), 'iris_training', 'runs', ctx.run_id.replace(/[^A-Za-z0-9_.-]/g, '_'));
  await mkdir(dir, { recursive: true });
  return dir;
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

const num = (v: Json | undefined, name: string): number => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`param '${name}' must be a number, got ${JSON.stringify(v)}`);
  return v;
};

export default dag(
  {
    dag_id: 'iris_training',
    description: 'Train, tune and publish a random-forest classifier on the Iris data set',
    schedule: '0 3 * * *',
    timezone: 'UTC',
    start_date: '2026-01-01',
    catchup: false,
    max_active_runs: 1,
    tags: ['ml', 'example'],
    params: { seed: 42, test_fraction: 0.2, folds: 5, min_accuracy: 0.9 },
    default_args: { retries: 1, retry_delay: '5s', execution_timeout: '10m', owner: 'ml-platform' },
  },
  (d) => {
    const ingest = d.task(
      'ingest',
      async (ctx) => {
        const file = join(await runFolder(ctx), 'iris.csv');
        const written = await writeIrisCsv(file);
        await ctx.artifact(file, { media_type: 'text/csv', sha256: written.sha256, size: written.bytes });
        ctx.log.info(`wrote ${written.bytes} bytes of Iris data`, { sha256: written.sha256 });
        return { path: file, sha256: written.sha256, rows: loadIris().labels.length };
      },
      { outlets: ['dataset://podflow/iris/raw'], doc: 'Write the Iris data set as CSV and hash it' },
    );

    const split = d.task(
      'split',
      async (ctx) => {
        const ds = loadIris();
        const s = stratifiedSplit(ds, { test_fraction: num(ctx.params.test_fraction, 'test_fraction'), seed: num(ctx.params.seed, 'seed') });
        const file = join(await runFolder(ctx), 'split.json');
        await writeJson(file, s);
        await ctx.artifact(file, { media_type: 'application/json' });
        ctx.log.info(`stratified split: ${s.train_idx.length} train, ${s.test_idx.length} test rows`);
        return s;
      },
      { inlets: ['dataset://podflow/iris/raw'] },
    );

    const search = d.task(
      'search',
      async (ctx) => {
        const params = ctx.map_value as unknown as HyperParams;
        const s = (await ctx.xcom.pull('split')) as unknown as DataSplit;
        const result = evaluateSetting(loadIris(), s, params, num(ctx.params.seed, 'seed'), { folds: num(ctx.params.folds, 'folds') });
        await ctx.metric('validation_accuracy', result.validation_accuracy);
        ctx.log.info(`setting ${params.id}: cross-validated accuracy ${result.validation_accuracy.toFixed(4)}`);
        return result as unknown as Json;
      },
      {
        expand: searchSpace() as unknown as Json[],
        group: 'tuning',
        // Each setting trains in a process of its own, so the search really runs in parallel.
        isolation: 'process',
        doc: 'Score one hyper-parameter setting by stratified k-fold CV',
      },
    );

    const selectBestTask = d.task(
      'select_best',
      async (ctx) => {
        const results = (await ctx.xcom.pull('search')) as unknown as SettingResult[];
        const best = selectBest(results);
        await ctx.metric('validation_accuracy', best.validation_accuracy);
        ctx.log.info(`best of ${results.length} settings: ${best.params.id} (${best.validation_accuracy.toFixed(4)})`);
        return best as unknown as Json;
      },
      { group: 'tuning' },
    );

    const train = d.task('train', async (ctx) => {
      const best = (await ctx.xcom.pull('select_best')) as unknown as SettingResult;
      const s = (await ctx.xcom.pull('split')) as unknown as DataSplit;
      const ds = loadIris();
      const { model_json } = trainForest(pick(ds.features, s.train_idx), pick(ds.labels, s.train_idx), best.params, num(ctx.params.seed, 'seed'));
      const file = join(await runFolder(ctx), 'model.json');
      await writeJson(file, model_json);
      await ctx.artifact(file, { media_type: 'application/json' });
      ctx.log.info(`trained ${best.params.id} on ${s.train_idx.length} rows`);
      return { model_path: file, params: best.params as unknown as Json };
    });

    const evaluate = d.task('evaluate', async (ctx) => {
      const trained = (await ctx.xcom.pull('train')) as { model_path: string };
      const s = (await ctx.xcom.pull('split')) as unknown as DataSplit;
      const model = JSON.parse(await readFile(trained.model_path, 'utf8')) as ForestModel;
      const ev = evaluateModel(model, loadIris(), s.test_idx);
      await ctx.metric('accuracy', ev.accuracy);
      const min = num(ctx.params.min_accuracy, 'min_accuracy');
      ctx.log.info(`held-out accuracy ${ev.accuracy.toFixed(4)} (${ev.correct}/${ev.n}); required >= ${min}`);
      if (ev.accuracy < min) {
        throw new Error(`test accuracy ${ev.accuracy.toFixed(4)} is below min_accuracy ${min}: the model is not published`);
      }
      return ev as unknown as Json;
    });

    const publish = d.task(
      'publish',
      async (ctx) => {
        const trained = (await ctx.xcom.pull('train')) as { model_path: string; params: Json };
        const ev = (await ctx.xcom.pull('evaluate')) as { accuracy: number; n: number; confusion_matrix: Json };
        const out = join(artifactsRoot(), 'iris_training');
        await mkdir(out, { recursive: true });
        const model = join(out, 'model.json');
        const metrics = join(out, 'metrics.json');
        await copyFile(trained.model_path, model);
        await writeJson(metrics, {
          dag_id: ctx.dag_id,
          run_id: ctx.run_id,
          accuracy: ev.accuracy,
          test_rows: ev.n,
          confusion_matrix: ev.confusion_matrix,
          params: trained.params,
          published_at: new Date().toISOString(),
        });
        await ctx.artifact(model, { media_type: 'application/json' });
        await ctx.artifact(metrics, { media_type: 'application/json' });
        await ctx.metric('accuracy', ev.accuracy);
        ctx.log.info(`published ${model} and ${metrics}`);
        return { model, metrics, accuracy: ev.accuracy };
      },
      { outlets: ['dataset://podflow/iris/model'] },
    );

    ingest.then(split).then(search).then(selectBestTask).then(train).then(evaluate).then(publish);
  },
);
