import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import type { DagRunRecord, DagSpec, Json, TaskInstanceRecord, TaskOutcome, TaskSpec } from '../../src/dag/types.ts';
import { createLineage, type Lineage, type TryEndInfo } from '../../src/lineage/lineage.ts';
import { lineageGraph, renderProvenance, renderTree, runProvenance, type DatasetNode, type TryNode } from '../../src/lineage/query.ts';
import { LineageStore } from '../../src/lineage/store.ts';
import { dagSpec as baseDagSpec, runRecord as baseRunRecord, taskSpec as baseTaskSpec, tiRecord } from '../support/records.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const silent = pino({ level: 'silent' });

const taskSpec = baseTaskSpec;

function dagSpec(file: string, fileHash: string, tasks: TaskSpec[], params: Record<string, Json> = {}): DagSpec {
  return baseDagSpec('iris_training', tasks, { file, file_hash: fileHash, params, max_active_runs: 1, schedule: { cron: '@daily', timezone: 'UTC', datasets: null } });
}

function runRecord(run_id: string, conf: Record<string, Json> = {}): DagRunRecord {
  return baseRunRecord('iris_training', run_id, { conf });
}

function ti(run_id: string, task_id: string, try_number: number, start: string, end: string): TaskInstanceRecord {
  return tiRecord('iris_training', run_id, task_id, { try_number, start_date: start, end_date: end, hostname: 'worker-1' });
}

let redis: Redis;
let dir: string;
const opened: Lineage[] = [];

function lineage(prefix = uniquePrefix('lineage')): Lineage {
  const l = createLineage({ redis, prefix, env: {}, logger: silent, cwd: dir });
  opened.push(l);
  return l;
}

beforeAll(async () => {
  redis = new Redis(redisUrl());
  dir = await mkdtemp(join(tmpdir(), 'pf-lineage-store-'));
});
afterAll(async () => {
  for (const l of opened) await l.close();
  redis.disconnect();
  await rm(dir, { recursive: true, force: true });
});

async function runTask(
  l: Lineage,
  dag: DagSpec,
  run: DagRunRecord,
  task: TaskSpec,
  times: [string, string],
  extra: Partial<TryEndInfo> & { outcome?: TaskOutcome; try_number?: number } = {},
) {
  const t = ti(run.dag_run_id, task.task_id, extra.try_number ?? 1, times[0], times[1]);
  l.tryStarted({ dag, task, run, ti: t, executor: 'local' });
  return l.tryFinished({
    dag,
    task,
    run,
    ti: t,
    executor: 'local',
    outcome: extra.outcome ?? { state: 'success' },
    artifacts_registered: extra.artifacts_registered ?? [],
    metrics: extra.metrics,
    ...(extra.upstream_tries ? { upstream_tries: extra.upstream_tries } : {}),
  });
}

describe('a model file traced back to its data set through steps that pass data by XCom', () => {
  // iris_training's shape: split reads the data set file and registers the split; train gets the
  // split by XCom and writes the model; evaluate gets the model by XCom, records accuracy and
  // writes metrics; publish declares the model file as an inlet.
  const RUN = 'manual__2026-12-03T10:00:00+00:00';
  const DATA = 'sepal_length,sepal_width,petal_length,petal_width,species\n5.1,3.5,1.4,0.2,setosa\n7.0,3.2,4.7,1.4,versicolor\n';
  const SPLIT = '{"train":[0],"test":[1]}';
  const MODEL = '{"kind":"random-forest","trees":50}';
  const METRICS = '{"accuracy":0.9667}';
  const DAG_SRC = "export default dag('iris_training')\n";
  let l: Lineage;
  let store: LineageStore;
  let commit: string;
  let dagFile: string;
  const uri = (rel: string) => pathToFileURL(join(dir, rel)).href;

  beforeAll(async () => {
    await mkdir(join(dir, 'repo', 'dags'), { recursive: true });
    await mkdir(join(dir, 'data'));
    await mkdir(join(dir, 'artifacts'));
    dagFile = join(dir, 'repo', 'dags', 'iris_training.ts');
    await writeFile(dagFile, DAG_SRC);
    const git = (...a: string[]) => execFileSync('git', ['-C', join(dir, 'repo'), ...a], { encoding: 'utf8' }).trim();
    git('init', '-q');
    git('add', '.');
    git('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-q', '-m', 'iris');
    commit = git('rev-parse', 'HEAD');
    await writeFile(join(dir, 'data', 'iris.csv'), DATA);

    l = lineage();
    store = l.store;
    const split = taskSpec('split', { inlets: ['data/iris.csv'], downstream_task_ids: ['train'] });
    const train = taskSpec('train', {
      upstream_task_ids: ['split'],
      downstream_task_ids: ['evaluate'],
      artifacts: ['artifacts/model.json'],
      operator_args: { resources: { cpu: '2', memory: '4Gi' } },
    });
    const evaluate = taskSpec('evaluate', { upstream_task_ids: ['train'], downstream_task_ids: ['publish'] });
    const publish = taskSpec('publish', { upstream_task_ids: ['evaluate'], inlets: ['artifacts/model.json'] });
    const dag = dagSpec(dagFile, sha(DAG_SRC), [split, train, evaluate, publish], { n_estimators: 50, max_depth: 4 });
    const run = runRecord(RUN, { max_depth: 5 });
    await writeFile(join(dir, 'artifacts', 'split.json'), SPLIT);
    await runTask(l, dag, run, split, ['2026-12-03T10:00:01.000Z', '2026-12-03T10:00:02.000Z'], {
      outcome: { state: 'success', return_value: { train_rows: 120, test_rows: 30 } },
      artifacts_registered: [{ uri: 'artifacts/split.json' }],
    });
    await writeFile(join(dir, 'artifacts', 'model.json'), MODEL);
    await runTask(l, dag, run, train, ['2026-12-03T10:00:03.000Z', '2026-12-03T10:00:33.000Z']);
    await writeFile(join(dir, 'artifacts', 'metrics.json'), METRICS);
    await runTask(l, dag, run, evaluate, ['2026-12-03T10:00:34.000Z', '2026-12-03T10:00:35.000Z'], {
      artifacts_registered: [{ uri: 'artifacts/metrics.json', meta: { media_type: 'application/json' } }],
      metrics: { accuracy: 0.9667 },
    });
    await runTask(l, dag, run, publish, ['2026-12-03T10:00:36.000Z', '2026-12-03T10:00:37.000Z']);
  });

  const TIMES: Record<string, [string, string]> = {
    split: ['2026-12-03T10:00:01.000Z', '2026-12-03T10:00:02.000Z'],
    train: ['2026-12-03T10:00:03.000Z', '2026-12-03T10:00:33.000Z'],
    evaluate: ['2026-12-03T10:00:34.000Z', '2026-12-03T10:00:35.000Z'],
    publish: ['2026-12-03T10:00:36.000Z', '2026-12-03T10:00:37.000Z'],
  };
  const tryNode = (task: string, over: Partial<TryNode> = {}): TryNode => ({
    kind: 'try',
    id: `iris_training/${RUN}/${task}/-1/1`,
    dag_id: 'iris_training',
    run_id: RUN,
    task_id: task,
    map_index: -1,
    try_number: 1,
    state: 'success',
    start: TIMES[task][0],
    end: TIMES[task][1],
    dag_file: dagFile,
    dag_file_hash: sha(DAG_SRC),
    git_commit: commit,
    operator: 'inline',
    executor: 'local',
    image: null,
    image_digest: null,
    params: { n_estimators: 50, max_depth: 5 },
    conf: { max_depth: 5 },
    metrics: {},
    return_value: null,
    inputs: [],
    upstream: [],
    outputs: [],
    downstream: [],
    ...over,
  });
  const ds = (rel: string, content: string, media: string, over: Partial<DatasetNode> = {}): DatasetNode => ({
    kind: 'dataset',
    uri: uri(rel),
    sha256: sha(content),
    size: Buffer.byteLength(content),
    media_type: media,
    etag: null,
    version_id: null,
    produced_by: [],
    consumed_by: [],
    ...over,
  });

  it('returns the graph as JSON: model <- train (params) <- split (XCom, split hash) <- data set hash; then evaluate (accuracy); read by publish', async () => {
    const g = await lineageGraph(store, join(dir, 'artifacts', 'model.json'));
    expect(g).toEqual(
      ds('artifacts/model.json', MODEL, 'application/json', {
        produced_by: [
          tryNode('train', {
            upstream: [
              tryNode('split', {
                return_value: { train_rows: 120, test_rows: 30 },
                inputs: [ds('data/iris.csv', DATA, 'text/csv')],
                outputs: [ds('artifacts/split.json', SPLIT, 'application/json')],
              }),
            ],
            downstream: [
              tryNode('evaluate', {
                metrics: { accuracy: 0.9667 },
                outputs: [ds('artifacts/metrics.json', METRICS, 'application/json')],
                downstream: [tryNode('publish')],
              }),
            ],
          }),
        ],
        consumed_by: [tryNode('publish', { elided: 'seen' })],
      }),
    );
  });

  it('renders the tree naming the data set hash, the run, the code hash, the hyper-parameters and the accuracy', async () => {
    const text = renderTree(await lineageGraph(store, uri('artifacts/model.json')));
    const h = (s: string) => `sha256:${sha(s).slice(0, 12)}`;
    const code = `code ${dagFile} ${h(DAG_SRC)}  git ${commit.slice(0, 12)}`;
    const run = (t: string) => `run ${RUN}  ${TIMES[t][0]} → ${TIMES[t][1]}`;
    const same = (t: string) => `same run  ${TIMES[t][0]} → ${TIMES[t][1]}`;
    expect(text).toBe(
      [
        `${uri('artifacts/model.json')}  ${h(MODEL)}  ${MODEL.length} B  application/json`,
        `├─ produced by iris_training.train  try 1  success`,
        `│  │  ${run('train')}`,
        `│  │  ${code}`,
        `│  │  params max_depth=5 n_estimators=50`,
        `│  ├─ after iris_training.split  try 1  success`,
        `│  │  │  ${same('split')}`,
        '│  │  │  returned {"train_rows":120,"test_rows":30}',
        `│  │  ├─ read ${uri('data/iris.csv')}  ${h(DATA)}  ${DATA.length} B  text/csv`,
        `│  │  └─ wrote ${uri('artifacts/split.json')}  ${h(SPLIT)}  ${SPLIT.length} B  application/json`,
        `│  └─ then iris_training.evaluate  try 1  success`,
        `│     │  ${same('evaluate')}`,
        `│     │  metrics accuracy=0.9667`,
        `│     ├─ wrote ${uri('artifacts/metrics.json')}  ${h(METRICS)}  ${METRICS.length} B  application/json`,
        `│     └─ then iris_training.publish  try 1  success`,
        `│           ${same('publish')}`,
        `└─ read by iris_training.publish  try 1  success`,
        `      (shown above)`,
        '',
      ].join('\n'),
    );
  });

  it('walks downstream from the data set: split, what it wrote, then train (by XCom) and onwards', async () => {
    const g = await lineageGraph(store, uri('data/iris.csv'), { direction: 'downstream' });
    const names = (n: DatasetNode | TryNode): unknown =>
      n.kind === 'dataset'
        ? { ds: n.uri.slice(n.uri.lastIndexOf('/') + 1), by: n.consumed_by.map(names) }
        : { try: n.task_id, ...(n.elided ? { elided: n.elided } : {}), wrote: n.outputs.map(names), then: n.downstream.map(names) };
    expect(names(g)).toEqual({
      ds: 'iris.csv',
      by: [
        {
          try: 'split',
          wrote: [{ ds: 'split.json', by: [] }],
          then: [
            {
              try: 'train',
              wrote: [{ ds: 'model.json', by: [{ try: 'publish', wrote: [], then: [] }] }],
              then: [
                {
                  try: 'evaluate',
                  wrote: [{ ds: 'metrics.json', by: [] }],
                  then: [{ try: 'publish', elided: 'seen', wrote: [], then: [] }],
                },
              ],
            },
          ],
        },
      ],
    });
  });

  it('gives the whole provenance of the run, with its external inputs, outputs, metrics and cost', async () => {
    const p = await runProvenance(store, 'iris_training', RUN);
    const ref = (rel: string, content: string) => ({ uri: uri(rel), sha256: sha(content), size: content.length, media_type: rel.endsWith('.csv') ? 'text/csv' : 'application/json', etag: null, version_id: null });
    expect(p && { ...p, tries: p.tries.map((t) => [t.task_id, t.state, t.upstream_tries]) }).toEqual({
      dag_id: 'iris_training',
      run_id: RUN,
      run_type: 'manual',
      logical_date: '2026-12-03T10:00:00.000Z',
      dag_file: dagFile,
      dag_file_hash: sha(DAG_SRC),
      git_commit: commit,
      conf: { max_depth: 5 },
      params: { n_estimators: 50, max_depth: 5 },
      start: '2026-12-03T10:00:01.000Z',
      end: '2026-12-03T10:00:37.000Z',
      inputs: [ref('data/iris.csv', DATA)],
      outputs: [ref('artifacts/split.json', SPLIT), ref('artifacts/model.json', MODEL), ref('artifacts/metrics.json', METRICS)],
      metrics: { accuracy: 0.9667 },
      cost: { cpu_seconds: 60, memory_gib_seconds: 120, gpu_seconds: 0 },
      tries: [
        ['split', 'success', []],
        ['train', 'success', [`iris_training/${RUN}/split/-1/1`]],
        ['evaluate', 'success', [`iris_training/${RUN}/train/-1/1`]],
        ['publish', 'success', [`iris_training/${RUN}/evaluate/-1/1`]],
      ],
    });
    const text = renderProvenance(p!);
    expect(text.split('\n').slice(0, 6)).toEqual([
      `run ${RUN} of iris_training (manual)  2026-12-03T10:00:01.000Z → 2026-12-03T10:00:37.000Z`,
      `code ${dagFile} sha256:${sha(DAG_SRC).slice(0, 12)}  git ${commit.slice(0, 12)}`,
      'params max_depth=5 n_estimators=50',
      'conf max_depth=5',
      'metrics accuracy=0.9667',
      'cost cpu 60 core·s  memory 120 GiB·s  gpu 0 GPU·s (asked)',
    ]);
  });

  it('exports every record as NDJSON, filtered by DAG and time', async () => {
    const all = new PassThrough();
    const chunks: string[] = [];
    all.on('data', (c) => chunks.push(String(c)));
    expect(await store.exportNdjson(all)).toBe(4);
    expect(chunks.join('').trimEnd().split('\n').map((line) => JSON.parse(line).task_id)).toEqual(['split', 'train', 'evaluate', 'publish']);
    expect(await store.exportNdjson(new PassThrough().resume(), { dag_id: 'iris_training', since: '2026-12-03T10:00:33.000Z' })).toBe(3);
    expect(await store.exportNdjson(new PassThrough().resume(), { dag_id: 'other' })).toBe(0);
  });

  it('keeps records for the retention period', async () => {
    const ttl = await redis.ttl(`${store.producedKey(uri('x')).replace(/produced:.*$/, '')}try:iris_training/${RUN}/train/-1/1`);
    expect([30 * 86400 - 1, 30 * 86400]).toContain(ttl);
  });
});

describe('versions, failures and retries', () => {
  it('picks the producer whose recorded hash matches the file on disk', async () => {
    const l = lineage();
    const dagFile = join(dir, 'v.ts');
    const train = taskSpec('train', { artifacts: ['versions/model.json'] });
    const dag = dagSpec(dagFile, sha('v'), [train]);
    await mkdir(join(dir, 'versions'), { recursive: true });
    const model = join(dir, 'versions', 'model.json');
    await writeFile(model, '{"v":1}');
    await runTask(l, dag, runRecord('run_a'), train, ['2026-12-01T00:00:00.000Z', '2026-12-01T00:01:00.000Z']);
    await writeFile(model, '{"v":2}');
    await runTask(l, dag, runRecord('run_b'), train, ['2026-12-02T00:00:00.000Z', '2026-12-02T00:01:00.000Z']);
    expect((await lineageGraph(l.store, model)).produced_by.map((t) => t.run_id)).toEqual(['run_b']);
    await writeFile(model, '{"v":1}');
    expect((await lineageGraph(l.store, model)).produced_by.map((t) => t.run_id)).toEqual(['run_a']);
    expect((await lineageGraph(l.store, model, { allProducers: true })).produced_by.map((t) => t.run_id)).toEqual(['run_b', 'run_a']);
  });

  it('does not index a failed try as a producer, and follows the successful retry', async () => {
    const l = lineage();
    const dagFile = join(dir, 'f.ts');
    await mkdir(join(dir, 'retry'), { recursive: true });
    const prep = taskSpec('prep', { outlets: ['s3://lake/iris/clean.parquet'], operator_args: { resources: { cpu: '1', gpus: 1 } } });
    const fit = taskSpec('fit', { upstream_task_ids: ['prep'] });
    const dag = dagSpec(dagFile, sha('f'), [prep, fit]);
    const run = runRecord('run_r');
    const failed = await runTask(l, dag, run, prep, ['2026-12-01T00:00:00.000Z', '2026-12-01T00:00:10.000Z'], {
      outcome: { state: 'failed', error: 'exit code 1', exit_code: 1 },
    });
    expect([failed.state, failed.error, failed.exit_code, failed.artifacts]).toEqual(['failed', 'exit code 1', 1, []]);
    expect(await l.store.producersOf('s3://lake/iris/clean.parquet')).toEqual([]);
    await runTask(l, dag, run, prep, ['2026-12-01T00:01:00.000Z', '2026-12-01T00:01:20.000Z'], { try_number: 2 });
    const fitRec = await runTask(l, dag, run, fit, ['2026-12-01T00:02:00.000Z', '2026-12-01T00:02:05.000Z']);
    expect(fitRec.upstream_tries).toEqual(['iris_training/run_r/prep/-1/2']);
    expect((await l.store.producersOf('s3://lake/iris/clean.parquet')).map((t) => t.id)).toEqual(['iris_training/run_r/prep/-1/2']);
    // both tries of prep cost: 10 s + 20 s of 1 CPU and 1 GPU
    expect(await l.store.runCost('iris_training', 'run_r')).toEqual({ cpu_seconds: 30, memory_gib_seconds: 0, gpu_seconds: 30 });
  });

  it('follows every map index of a mapped upstream, and takes times from the worker when given', async () => {
    const l = lineage();
    const score = taskSpec('score');
    const reduce = taskSpec('reduce', { upstream_task_ids: ['score'] });
    const dag = dagSpec(join(dir, 'map.ts'), sha('map'), [score, reduce]);
    const run = runRecord('run_map');
    for (const idx of [1, 0]) {
      const t = { ...ti('run_map', 'score', 1, '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:01.000Z'), map_index: idx };
      await l.tryFinished({ dag, task: score, run, ti: t, executor: 'local', outcome: { state: 'success' }, artifacts_registered: [] });
    }
    const t = { ...ti('run_map', 'reduce', 1, '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z'), start_date: null, end_date: null };
    const rec = await l.tryFinished({
      dag,
      task: reduce,
      run,
      ti: t,
      executor: 'local',
      outcome: { state: 'success' },
      artifacts_registered: [],
      started_at: new Date('2026-12-01T00:00:02.000Z'),
      ended_at: new Date('2026-12-01T00:00:04.500Z'),
    });
    expect([rec.upstream_tries, rec.start, rec.end, rec.duration_s]).toEqual([
      ['iris_training/run_map/score/0/1', 'iris_training/run_map/score/1/1'],
      '2026-12-01T00:00:02.000Z',
      '2026-12-01T00:00:04.500Z',
      2.5,
    ]);
  });

  it('records what the pod really ran on: image, digest, node, GPU model and the resources of its spec', async () => {
    const l = lineage();
    const t = taskSpec('finetune', { operator: 'pod', operator_args: { image: 'ghcr.io/acme/ft:{{ params.tag }}', resources: { cpu: '1', gpus: 2 } } });
    const rec = await runTask(l, dagSpec(join(dir, 'pod.ts'), sha('pod'), [t]), runRecord('run_pod'), t, ['2026-12-01T00:00:00.000Z', '2026-12-01T00:01:40.000Z'], {
      outcome: {
        state: 'success',
        exit_code: 0,
        facts: {
          pod_name: 'iris-training-finetune-1-abcde',
          image: 'ghcr.io/acme/ft:v3',
          image_digest: 'ghcr.io/acme/ft@sha256:' + 'a'.repeat(64),
          node_name: 'gke-spot-a100-1',
          gpu_product: 'NVIDIA-A100-SXM4-40GB',
          resources: { requests: { cpu: '4', memory: '16Gi' }, limits: { memory: '16Gi', 'nvidia.com/gpu': '1' } },
        },
      },
    });
    expect([rec.image, rec.image_digest, rec.node, rec.gpu_model, rec.resources, rec.cost, rec.facts.pod_name]).toEqual([
      'ghcr.io/acme/ft:v3',
      'ghcr.io/acme/ft@sha256:' + 'a'.repeat(64),
      'gke-spot-a100-1',
      'NVIDIA-A100-SXM4-40GB',
      { cpu: 4, memory_gib: 16, gpu: 1 },
      { cpu_seconds: 400, memory_gib_seconds: 1600, gpu_seconds: 100 },
      'iris-training-finetune-1-abcde',
    ]);
  });

  it("links a dataset to its producer in the same run even when the producer's end is stamped after the consumer's start", async () => {
    const l = lineage();
    const ingest = taskSpec('ingest', { outlets: ['dataset://podflow/iris/raw'] });
    const split = taskSpec('split', { upstream_task_ids: ['ingest'], inlets: ['dataset://podflow/iris/raw'], outlets: ['dataset://podflow/iris/split'] });
    const dag = dagSpec(join(dir, 'skew.ts'), sha('skew'), [ingest, split]);
    const run = runRecord('run_skew');
    // an older run's ingest really did end before this split started: it must not be picked
    await runTask(l, dag, runRecord('run_old'), ingest, ['2026-11-30T00:00:00.000Z', '2026-11-30T00:00:01.000Z']);
    await runTask(l, dag, run, ingest, ['2026-12-01T00:00:00.000Z', '2026-12-01T00:00:02.500Z']);
    await runTask(l, dag, run, split, ['2026-12-01T00:00:02.400Z', '2026-12-01T00:00:03.000Z']);
    const g = await lineageGraph(l.store, 'dataset://podflow/iris/raw', { direction: 'downstream' });
    expect(g.consumed_by.map((c) => c.id)).toEqual(['iris_training/run_skew/split/-1/1']);
    const up = await lineageGraph(l.store, 'dataset://podflow/iris/raw');
    expect(up.produced_by[0].downstream.map((d) => d.task_id)).toEqual(['split']);
    const fromSplit = await lineageGraph(l.store, 'dataset://podflow/iris/split');
    expect(fromSplit.produced_by[0].inputs.map((i) => [i.uri, i.produced_by.map((p) => p.id)])).toEqual([
      ['dataset://podflow/iris/raw', ['iris_training/run_skew/ingest/-1/1']],
    ]);
    const prov = await runProvenance(l.store, 'iris_training', 'run_skew');
    expect(prov?.inputs).toEqual([]);
    const splitUp = (await lineageGraph(l.store, 'dataset://podflow/iris/raw', { allProducers: true })).produced_by.map((p) => p.run_id);
    expect(splitUp).toEqual(['run_skew', 'run_old']);
  });

  it('records a missing declared artifact with its error instead of failing', async () => {
    const l = lineage();
    const t = taskSpec('train', { artifacts: ['nowhere/model.pt'] });
    const rec = await runTask(l, dagSpec(join(dir, 'm.ts'), sha('m'), [t]), runRecord('run_m'), t, ['2026-12-01T00:00:00.000Z', '2026-12-01T00:00:01.000Z']);
    expect([rec.artifacts.length, rec.artifacts[0].sha256, rec.artifacts[0].error?.includes('cannot read')]).toEqual([1, null, true]);
    expect(await l.store.producersOf(join(dir, 'nowhere/model.pt'))).toEqual([]);
  });

  it('skips index entries whose record has expired', async () => {
    const l = lineage();
    const t = taskSpec('pub', { outlets: ['gs://b/x'] });
    const rec = await runTask(l, dagSpec(join(dir, 'e.ts'), sha('e'), [t]), runRecord('run_e'), t, ['2026-12-01T00:00:00.000Z', '2026-12-01T00:00:01.000Z']);
    await redis.del(`${l.store.producedKey('gs://b/x').replace(/produced:.*$/, '')}try:${rec.id}`); // as if its TTL ran out
    expect(await l.store.producersOf('gs://b/x')).toEqual([]);
    expect(await redis.zcard(l.store.producedKey('gs://b/x'))).toBe(0);
  });

  it('says nothing is known about a URI no try declared', async () => {
    const l = lineage();
    const g = await lineageGraph(l.store, 's3://unknown/thing');
    expect(g.produced_by.length + g.consumed_by.length).toBe(0);
    expect(renderTree(g)).toBe(
      's3://unknown/thing\n   (no recorded producer or consumer: it was never declared as an inlet, outlet or artifact, or its records are past retention)\n',
    );
    expect(await runProvenance(l.store, 'iris_training', 'never')).toBeNull();
  });
});
