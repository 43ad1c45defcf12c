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
 *
 * Executor switch, read when the file is parsed (the DAG's shape depends on it):
 * - `IRIS_EXECUTOR=inline` (default): every step is an inline function (the search in a
 *   process of its own per setting).
 * - `IRIS_EXECUTOR=pod`: every step is a pod task running `dags/lib/iris-steps.ts <step>` in
 *   `IRIS_IMAGE` (default ghcr.io/podflow/podflow:0.1.0, built from docker/Dockerfile, repo at
 *   /app). Steps hand data over through files in the run's folder under the artifacts folder:
 *   on a cluster the PVC `IRIS_ARTIFACTS_CLAIM` (default podflow-artifacts) mounted at
 *   /data/artifacts (the image's PODFLOW_ARTIFACTS) in every pod. Without a cluster the pod
 *   operator runs the same program locally (`local_command`), in the worker's artifacts folder.
 *   Each step's result JSON is its XCom; its `metrics` become the task's metrics.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { dag, type Json, type TaskContext } from 'podflow';
import { podTask, type PodTaskArgs } from '../plugins/kubernetes/authoring.ts';
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

const EXECUTOR = process.env.IRIS_EXECUTOR?.trim() || 'inline';
if (EXECUTOR !== 'inline' && EXECUTOR !== 'pod') {
  throw new Error(`dags/iris_training.ts: IRIS_EXECUTOR=${JSON.stringify(process.env.IRIS_EXECUTOR)} is neither 'inline' nor 'pod'; unset it to run the steps inline, or set IRIS_EXECUTOR=pod`);
}
const IMAGE = process.env.IRIS_IMAGE?.trim() || 'ghcr.io/podflow/podflow:0.1.0';
const ARTIFACTS_CLAIM = process.env.IRIS_ARTIFACTS_CLAIM?.trim() || 'podflow-artifacts';
/** Where the pods mount the artifacts volume: the image's PODFLOW_ARTIFACTS, as on the workers. */
const POD_ARTIFACTS = '/data/artifacts';

/**
 * One step as a pod task: the step program of dags/lib/iris-steps.ts, in the image (repo at
 * /app) on a cluster, or from this DAG folder as a local process without one.
 */
function stepTask(step: string, args: string[]): ReturnType<typeof podTask> {
  const common = ['--run-id', '{{ run_id }}'];
  const spec: PodTaskArgs = {
    image: IMAGE,
    command: ['node', '--import', 'tsx', '/app/dags/lib/iris-steps.ts', step, ...common, '--artifacts', POD_ARTIFACTS, ...args],
    // Locally the artifacts folder is the worker's (PODFLOW_ARTIFACTS); tsx resolves from the worker's folder (the repo).
    local_command: ['node', '--import', 'tsx', '{{ dag_dir }}/lib/iris-steps.ts', step, ...common, ...args],
    resources: { cpu: 1, memory: '1Gi' },
    volumes: [{ name: 'artifacts', pvc: { claim_name: ARTIFACTS_CLAIM }, mount_path: POD_ARTIFACTS }],
    // The image's user `node` is uid 1000: numeric, so runAsNonRoot can be verified; fsGroup makes the volume writable.
    pod_security_context: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 },
    result_file: '/tmp/result.json',
  };
  return podTask(spec);
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
    if (EXECUTOR === 'pod') {
      const ingestPod = d.operator('ingest', stepTask('ingest', []), { outlets: ['dataset://podflow/iris/raw'], doc: 'Write the Iris data set as CSV and hash it' });
      const splitPod = d.operator('split', stepTask('split', ['--seed', '{{ params.seed }}', '--test-fraction', '{{ params.test_fraction }}']), {
        inlets: ['dataset://podflow/iris/raw'],
      });
      const searchPod = d.operator('search', stepTask('search', ['--setting', '{{ map_value }}', '--seed', '{{ params.seed }}', '--folds', '{{ params.folds }}']), {
        expand: searchSpace() as unknown as Json[],
        group: 'tuning',
        doc: 'Score one hyper-parameter setting by stratified k-fold CV',
      });
      const selectPod = d.operator('select_best', stepTask('select_best', []), { group: 'tuning' });
      const trainPod = d.operator('train', stepTask('train', ['--seed', '{{ params.seed }}']));
      const evaluatePod = d.operator('evaluate', stepTask('evaluate', ['--min-accuracy', '{{ params.min_accuracy }}']));
      const publishPod = d.operator('publish', stepTask('publish', ['--dag-id', '{{ dag_id }}']), { outlets: ['dataset://podflow/iris/model'] });
      ingestPod.then(splitPod).then(searchPod).then(selectPod).then(trainPod).then(evaluatePod).then(publishPod);
      return;
    }

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
