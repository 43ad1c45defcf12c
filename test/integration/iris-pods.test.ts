/**
 * iris_training with IRIS_EXECUTOR=pod: every step a pod task running dags/lib/iris-steps.ts.
 * Locally (no cluster) the real scheduler and worker run the steps as processes and the
 * pipeline trains and publishes for real; against the fake Kubernetes API every pod the
 * operator creates is schema-valid and carries the image, the step's argv and the PVC.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { Watch, type V1Pod } from '@kubernetes/client-node';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { runDetail } from '../../src/api/serializers.ts';
import { Keys } from '../../src/state/keys.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import { startFakeKube, type FakeKube } from '../support/fake-kube/server.ts';
import { until, validatePodSchema } from '../../plugins/kubernetes/test/helpers.ts';
import { runProvenance } from '../../src/lineage/query.ts';
import { evaluateModel, evaluateSetting, loadIris, pick, searchSpace, selectBest, stratifiedSplit, trainForest } from '../../dags/lib/iris.ts';
import { main as irisStep } from '../../dags/lib/iris-steps.ts';

const repoDags = new URL('../../dags/', import.meta.url).pathname;
const IMAGE = 'registry.example.com/ml/podflow:iris-test';
const STEPS = ['ingest', 'split', 'search', 'select_best', 'train', 'evaluate', 'publish'];
// DAGs of the repo's folder that would otherwise start scheduled runs and compete for worker slots.
const REPO_DAGS = ['iris_training', 'nightly_report', 'retrain_on_new_labels', 'gpu_finetune'];

const saved = { IRIS_EXECUTOR: process.env.IRIS_EXECUTOR, IRIS_IMAGE: process.env.IRIS_IMAGE };

/** A key prefix whose DAGs start paused: manual runs still run, no scheduled run competes. */
async function pausedPrefix(): Promise<string> {
  const prefix = uniquePrefix('iris-pods');
  const redis = new Redis(redisUrl());
  const keys = new Keys(prefix);
  for (const id of REPO_DAGS) await redis.hset(keys.dagMeta(id), 'is_paused', '1');
  await redis.quit();
  return prefix;
}

/** The pipeline computed in this process, as the inline DAG does: the accuracy the pod steps must reach. */
function expectedAccuracy(seed: number): number {
  const ds = loadIris();
  const split = stratifiedSplit(ds, { test_fraction: 0.2, seed });
  const best = selectBest(searchSpace().map((p) => evaluateSetting(ds, split, p, seed, { folds: 5 })));
  const { model_json } = trainForest(pick(ds.features, split.train_idx), pick(ds.labels, split.train_idx), best.params, seed);
  return evaluateModel(model_json, ds, split.test_idx).accuracy;
}

beforeAll(() => {
  // Read when the DAG file is parsed; the loader's child processes inherit this environment.
  process.env.IRIS_EXECUTOR = 'pod';
  process.env.IRIS_IMAGE = IMAGE;
});

afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('dags/lib/iris-steps.ts, the step program', () => {
  it('exits 2 naming the missing input, and 1 when evaluate is below min_accuracy, writing no result file', async () => {
    const artifacts = mkdtempSync(join(tmpdir(), 'iris-steps-'));
    const resultFile = join(artifacts, 'result.json');
    const env = { PODFLOW_RESULT_FILE: resultFile };
    const errors: string[] = [];
    const origError = console.error;
    const origLog = console.log;
    console.error = (m: string) => void errors.push(m);
    console.log = () => undefined;
    try {
      const common = ['--run-id', 'r/1', '--artifacts', artifacts];
      expect(await irisStep(['train', ...common, '--seed', '42'], env)).toBe(2);
      expect(errors.pop()).toBe(`iris-steps train: ${join(artifacts, 'iris_training', 'runs', 'r_1', 'best.json')} cannot be read (ENOENT); it is written by the 'select_best' step of the same run: run that first, with the same --run-id and --artifacts`);
      expect(await irisStep(['split', ...common, '--seed', '42', '--test-fraction', '0.2'], env)).toBe(0);
      expect(JSON.parse(readFileSync(resultFile, 'utf8'))).toMatchObject({ n_train: 120, n_test: 30 });
      for (const p of searchSpace()) expect(await irisStep(['search', ...common, '--setting', p.id, '--seed', '42', '--folds', '5'], env)).toBe(0);
      expect(await irisStep(['select_best', ...common], env)).toBe(0);
      expect(await irisStep(['train', ...common, '--seed', '42'], env)).toBe(0);
      rmSync(resultFile);
      expect(await irisStep(['evaluate', ...common, '--min-accuracy', '1.01'], env)).toBe(1);
      expect(errors.pop()).toMatch(/^iris-steps evaluate: test accuracy 0\.\d{4} is below min_accuracy 1\.01: the model is not published$/);
      expect(existsSync(resultFile)).toBe(false);
      expect(await irisStep(['evaluate', ...common, '--min-accuracy', 'high'], env)).toBe(2);
      expect(errors.pop()).toBe('iris-steps evaluate: --min-accuracy must be a number, got "high"');
    } finally {
      console.error = origError;
      console.log = origLog;
    }
  }, 120_000);
});

describe('iris_training with IRIS_EXECUTOR=pod, local mode (no cluster)', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({ env: { PODFLOW_DAGS_FOLDER: repoDags, PODFLOW_KUBE_MODE: 'local', PODFLOW_PREFIX: await pausedPrefix() } });
  });
  afterAll(async () => pf?.close());

  it('every step is a pod task, the search mapped over the six settings', async () => {
    expect(await pf.store.importErrors()).toEqual([]);
    const dag = (await pf.store.getDag('iris_training'))!;
    expect(dag.tasks.map((t) => [t.task_id, t.operator])).toEqual(STEPS.map((s) => [s, 'pod']));
    const search = dag.tasks.find((t) => t.task_id === 'search')!;
    expect(search.expand).toMatchObject({ kind: 'literal', values: searchSpace() });
    expect(search.operator_args.image).toBe(IMAGE);
  });

  it('runs every step as a local process to success: accuracy recorded on evaluate, model and metrics published', async () => {
    const dag = (await pf.store.getDag('iris_training'))!;
    const run = await triggerDagRun(pf.store, dag, { conf: { seed: 42 } });
    const done = await pf.waitForRun('iris_training', run.dag_run_id, 240_000);
    const detail = await runDetail(pf.store, done);
    expect(detail.task_instances.filter((t) => t.state !== 'success').map((t) => [t.task_id, t.map_index, t.state, t.note])).toEqual([]);
    expect(detail.state).toBe('success');
    expect(detail.task_instances.filter((t) => t.task_id === 'search').map((t) => t.map_index)).toEqual([0, 1, 2, 3, 4, 5]);

    const accuracy = expectedAccuracy(42);
    expect(accuracy).toBeGreaterThanOrEqual(0.9);
    const evaluate = detail.task_instances.find((t) => t.task_id === 'evaluate')!;
    expect(evaluate.metrics).toEqual({ accuracy });
    const search = detail.task_instances.filter((t) => t.task_id === 'search');
    expect(search.every((t) => typeof t.metrics.validation_accuracy === 'number')).toBe(true);
    const selected = detail.task_instances.find((t) => t.task_id === 'select_best')!;
    expect(selected.metrics.validation_accuracy).toBe(Math.max(...search.map((t) => t.metrics.validation_accuracy!)));

    const evalXcom = await pf.store.getXcom({ dag_id: 'iris_training', dag_run_id: run.dag_run_id, task_id: 'evaluate', map_index: -1 }, 'return_value');
    expect(evalXcom).toMatchObject({ accuracy, n: 30, metrics: { accuracy } });

    const out = join(pf.config.artifactsFolder, 'iris_training');
    const model = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')) as { format: string };
    expect(model.format).toBe('random-forest.v1');
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { accuracy: number; run_id: string; dag_id: string };
    expect([metrics.accuracy, metrics.run_id, metrics.dag_id]).toEqual([accuracy, run.dag_run_id, 'iris_training']);
    const runDir = join(out, 'runs', run.dag_run_id.replace(/[^A-Za-z0-9_.-]/g, '_'));
    for (const f of ['iris.csv', 'split.json', 'best.json', 'model.json', 'evaluation.json', ...searchSpace().map((p) => `search/${p.id}.json`)]) {
      expect(existsSync(join(runDir, f)), f).toBe(true);
    }

    // The result files' `artifacts` reach lineage as the tries' outputs, hashed like inline ones.
    const prov = await until(async () => {
      const p = await runProvenance(pf.lineage.store, 'iris_training', run.dag_run_id);
      return p && p.tries.some((t) => t.task_id === 'publish') ? p : null;
    }, 'lineage of the publish try', 30_000);
    const outputs = (task: string) => prov.tries.find((t) => t.task_id === task)!.outputs.map((o) => o.uri).sort();
    expect(outputs('ingest')).toEqual(['dataset://podflow/iris/raw', pathToFileURL(join(runDir, 'iris.csv')).href]);
    expect(outputs('publish')).toEqual(['dataset://podflow/iris/model', pathToFileURL(join(out, 'metrics.json')).href, pathToFileURL(join(out, 'model.json')).href]);
    const publishedModel = prov.tries.find((t) => t.task_id === 'publish')!.outputs.find((o) => o.uri.endsWith('/model.json'))!;
    expect(publishedModel.sha256).toMatch(/^[0-9a-f]{64}$/);
  }, 300_000);
});

describe('iris_training with IRIS_EXECUTOR=pod, cluster mode (fake Kubernetes API)', () => {
  let kube: FakeKube;
  let pf: TestPodflow;
  let stopWatch: AbortController | undefined;
  const seen = new Map<string, V1Pod>();

  beforeAll(async () => {
    kube = await startFakeKube();
    kube.script({ labels: { 'podflow.io/task-id': 'search' } }, { kind: 'succeed', logs: ['scored'], resultFile: { validation_accuracy: 0.95, metrics: { validation_accuracy: 0.95 } } });
    kube.script({ labels: { 'podflow.io/task-id': 'evaluate' } }, { kind: 'succeed', logs: ['held-out accuracy 0.9667'], resultFile: { accuracy: 0.9667, n: 30, metrics: { accuracy: 0.9667 } } });
    kube.script({ labels: { 'podflow.io/managed-by': 'podflow' } }, { kind: 'succeed', logs: ['done'], resultFile: { ok: true } });
    // Every pod as the API server stored it, caught before the operator deletes it.
    stopWatch = await new Watch(kube.kubeConfig()).watch('/api/v1/namespaces/default/pods', {}, (type: string, pod: V1Pod) => {
      if (type === 'ADDED') seen.set(pod.metadata!.name!, pod);
    }, () => undefined);
    const kubeconfig = join(mkdtempSync(join(tmpdir(), 'pf-kc-')), 'config');
    writeFileSync(kubeconfig, kube.kubeConfig().exportConfig());
    pf = await startTestPodflow({
      env: { PODFLOW_DAGS_FOLDER: repoDags, PODFLOW_KUBE_MODE: 'cluster', KUBECONFIG: kubeconfig, PODFLOW_KUBE_NAMESPACE: 'default', PODFLOW_PREFIX: await pausedPrefix() },
    });
  });

  afterAll(async () => {
    stopWatch?.abort();
    await pf?.close();
    await kube?.stop();
  });

  it('each step is a schema-valid pod with the image, the step argv and the artifacts PVC; result metrics are recorded', async () => {
    const dag = (await pf.store.getDag('iris_training'))!;
    const runId = 'manual__iris_pods_cluster';
    await triggerDagRun(pf.store, dag, { dag_run_id: runId, conf: { seed: 7 } });
    const done = await pf.waitForRun('iris_training', runId, 120_000);
    const detail = await runDetail(pf.store, done);
    expect(detail.task_instances.filter((t) => t.state !== 'success').map((t) => [t.task_id, t.map_index, t.state, t.note])).toEqual([]);
    expect(detail.state).toBe('success');
    expect(detail.task_instances.find((t) => t.task_id === 'evaluate')!.metrics).toEqual({ accuracy: 0.9667 });
    expect(detail.task_instances.filter((t) => t.task_id === 'search').map((t) => t.metrics)).toEqual(searchSpace().map(() => ({ validation_accuracy: 0.95 })));
    expect(kube.pods('default')).toEqual([]);

    const pods = [...seen.values()].filter((p) => p.metadata?.annotations?.['podflow.io/run-id'] === runId);
    const key = (p: V1Pod) => `${p.metadata!.labels!['podflow.io/task-id']}[${p.metadata!.labels!['podflow.io/map-index']}]`;
    const base = ['node', '--import', 'tsx', '/app/dags/lib/iris-steps.ts'];
    const common = ['--run-id', runId, '--artifacts', '/data/artifacts'];
    const expected: Record<string, string[]> = {
      'ingest[none]': [...base, 'ingest', ...common],
      'split[none]': [...base, 'split', ...common, '--seed', '7', '--test-fraction', '0.2'],
      ...Object.fromEntries(searchSpace().map((p, i) => [`search[${i}]`, [...base, 'search', ...common, '--setting', JSON.stringify(p), '--seed', '7', '--folds', '5']])),
      'select_best[none]': [...base, 'select_best', ...common],
      'train[none]': [...base, 'train', ...common, '--seed', '7'],
      'evaluate[none]': [...base, 'evaluate', ...common, '--min-accuracy', '0.9'],
      'publish[none]': [...base, 'publish', ...common, '--dag-id', 'iris_training'],
    };
    expect(pods.map(key).sort()).toEqual(Object.keys(expected).sort());
    for (const pod of pods) {
      const { status: _status, ...built } = pod;
      expect(() => validatePodSchema(built), key(pod)).not.toThrow();
      const c = pod.spec!.containers[0]!;
      expect([c.image, c.command, c.args ?? []], key(pod)).toEqual([IMAGE, expected[key(pod)], []]);
      expect(pod.spec!.volumes, key(pod)).toContainEqual({ name: 'artifacts', persistentVolumeClaim: { claimName: 'podflow-artifacts' } });
      expect(c.volumeMounts, key(pod)).toContainEqual({ name: 'artifacts', mountPath: '/data/artifacts' });
      expect(pod.spec!.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000 });
      expect(c.terminationMessagePath).toBe('/tmp/result.json');
    }
  }, 180_000);
});
