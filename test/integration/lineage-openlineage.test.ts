import { describe, expect, it, beforeAll, afterAll, afterEach } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { openLineageSchemaDir } from '../support/openlineage-schema.ts';
import { dagSpec as baseDagSpec, runRecord as baseRunRecord, taskSpec as baseTaskSpec, tiRecord } from '../support/records.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import type { DagRunRecord, DagSpec, Json, TaskInstanceRecord, TaskSpec } from '../../src/dag/types.ts';
import { createLineage, type Lineage } from '../../src/lineage/lineage.ts';
import {
  dagRunEvent,
  dagRunUuid,
  datasetName,
  openLineageContext,
  taskRunEvent,
  taskRunUuid,
  uuidV5,
  type RunEvent,
} from '../../src/lineage/openlineage.ts';

// ---- the OpenLineage schema: ../shared/openlineage beside the repository (as in CI), else the vendored copy ----

type Check = (data: unknown) => string[];
let checkEvent: (ev: RunEvent) => string[];

function loadSchemas(): void {
  const dir = openLineageSchemaDir();
  // the spec itself is not strict-mode clean (`required` under `not`, `example` keywords)
  const ajv = new Ajv2020.default({ allErrors: true, strict: false });
  addFormats.default(ajv);
  const core = JSON.parse(readFileSync(join(dir, 'OpenLineage.json'), 'utf8'));
  ajv.addSchema(core);
  const facetSchemas = new Map<string, { id: string; check: Check }>();
  for (const f of readdirSync(join(dir, 'facets'))) {
    const s = JSON.parse(readFileSync(join(dir, 'facets', f), 'utf8'));
    ajv.addSchema(s);
    const v = ajv.getSchema(s.$id)!;
    const check: Check = (d) => (v(d) ? [] : (v.errors ?? []).map((e) => `${f}${e.instancePath} ${e.message}`));
    // each facet file's root lists the facet under its conventional name
    for (const name of Object.keys(s.properties)) facetSchemas.set(name, { id: s.$id, check });
  }
  const validateCore = ajv.getSchema(core.$id)!;
  const facetsOk = (where: string, facets: Record<string, { _schemaURL?: string }> | undefined): string[] => {
    const errs: string[] = [];
    for (const [name, body] of Object.entries(facets ?? {})) {
      const fs = facetSchemas.get(name);
      if (!fs) {
        errs.push(`${where}.${name}: no schema in ${dir}facets for this facet`);
        continue;
      }
      errs.push(...fs.check({ [name]: body }).map((e) => `${where}: ${e}`));
      if (!body._schemaURL?.startsWith(`${fs.id}#/$defs/`)) errs.push(`${where}.${name}: _schemaURL ${body._schemaURL} is not ${fs.id}#/$defs/…`);
    }
    return errs;
  };
  checkEvent = (ev) => {
    const errs = validateCore(ev) ? [] : (validateCore.errors ?? []).map((e) => `OpenLineage.json${e.instancePath} ${e.message}`);
    errs.push(...facetsOk('run.facets', ev.run.facets), ...facetsOk('job.facets', ev.job.facets));
    for (const [i, d] of [...ev.inputs.entries()]) errs.push(...facetsOk(`inputs[${i}].facets`, d.facets), ...facetsOk(`inputs[${i}].inputFacets`, d.inputFacets));
    for (const [i, d] of [...ev.outputs.entries()]) errs.push(...facetsOk(`outputs[${i}].facets`, d.facets), ...facetsOk(`outputs[${i}].outputFacets`, d.outputFacets));
    return errs;
  };
}

// ---- fixtures ----

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

const taskSpec = baseTaskSpec;

function dagSpec(dag_id: string, file: string, tasks: TaskSpec[], params: Record<string, Json> = {}): DagSpec {
  return baseDagSpec(dag_id, tasks, { file, file_hash: sha(file), params, max_active_runs: 1 });
}

function runRecord(dag_id: string, run_id: string): DagRunRecord {
  return baseRunRecord(dag_id, run_id, { end_date: '2026-12-03T10:01:00.000Z' });
}

function ti(run: DagRunRecord, task_id: string, try_number = 1): TaskInstanceRecord {
  return tiRecord(run.dag_id, run.dag_run_id, task_id, { try_number, start_date: '2026-12-03T10:00:01.000Z', end_date: '2026-12-03T10:00:02.000Z', hostname: 'w1' });
}

function captureLogger(): { logger: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

interface Receiver {
  url: string;
  port: number;
  events: RunEvent[];
  auth: (string | undefined)[];
  hold: boolean;
  /** Requests received and not answered yet. */
  pending(): number;
  release(): void;
  close(): Promise<void>;
}

/** A Marquez-like receiver on 127.0.0.1: POST /api/v1/lineage answers 201. */
async function receiver(): Promise<Receiver> {
  const held: (() => void)[] = [];
  const r = { events: [], auth: [], hold: false } as unknown as Receiver;
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const answer = () => {
        if (req.method !== 'POST' || req.url !== '/api/v1/lineage') {
          res.writeHead(404).end();
          return;
        }
        r.events.push(JSON.parse(body));
        r.auth.push(req.headers.authorization);
        res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
      };
      if (r.hold) held.push(answer);
      else answer();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const addr = server.address();
  r.port = typeof addr === 'object' && addr ? addr.port : 0;
  r.url = `http://127.0.0.1:${r.port}`;
  r.pending = () => held.length;
  r.release = () => {
    r.hold = false;
    for (const a of held.splice(0)) a();
  };
  r.close = () =>
    new Promise<void>((ok) => {
      r.release();
      server.closeAllConnections();
      server.close(() => ok());
    });
  return r;
}

// ---- setup ----

let redis: Redis;
let dir: string;
let dagsFolder: string;
let commit: string;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  loadSchemas();
  redis = new Redis(redisUrl());
  dir = await mkdtemp(join(tmpdir(), 'pf-ol-'));
  dagsFolder = join(dir, 'dags');
  await mkdir(dagsFolder);
  await writeFile(join(dagsFolder, 'iris_training.ts'), 'export {}\n');
  const git = (...a: string[]) => execFileSync('git', ['-C', dagsFolder, ...a], { encoding: 'utf8' }).trim();
  git('init', '-q');
  git('add', '.');
  git('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-q', '-m', 'dags');
  git('remote', 'add', 'origin', 'https://github.com/acme/pipelines.git');
  commit = git('rev-parse', 'HEAD');
  await mkdir(join(dir, 'data'));
  await writeFile(join(dir, 'data', 'iris.csv'), 'a,b\n1,2\n');
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  redis?.disconnect();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function lineageFor(url: string, logger: Logger, extraEnv: Record<string, string> = {}): Lineage {
  const l = createLineage({
    redis,
    prefix: uniquePrefix('ol'),
    env: {
      PODFLOW_OPENLINEAGE_TRANSPORT: 'http',
      PODFLOW_OPENLINEAGE_URL: url,
      PODFLOW_OPENLINEAGE_API_KEY: 'k3y',
      PODFLOW_OPENLINEAGE_NAMESPACE: 'ml-prod',
      ...extraEnv,
    },
    logger,
    cwd: dir,
    emitter: { backoffMs: 1 },
  });
  cleanups.push(() => l.close(1000));
  return l;
}

const summary = (evs: RunEvent[]) => evs.map((e) => `${e.eventType} ${e.job.name}`);

describe('OpenLineage events over HTTP', () => {
  it('a successful run sends valid events in order: run START, each task START/COMPLETE, run COMPLETE', async () => {
    const rcv = await receiver();
    cleanups.push(() => rcv.close());
    const { logger } = captureLogger();
    const l = lineageFor(rcv.url, logger);
    const split = taskSpec('split', { inlets: ['data/iris.csv'] });
    const train = taskSpec('train', { upstream_task_ids: ['split'], outlets: ['s3://models/iris/model.onnx'], artifacts: ['artifacts/model.json'] });
    const dag = dagSpec('iris_training', join(dagsFolder, 'iris_training.ts'), [split, train]);
    const run = runRecord('iris_training', 'manual__ok');

    l.runStarted({ dag, run });
    l.tryStarted({ dag, task: split, run, ti: ti(run, 'split'), executor: 'local' });
    await l.tryFinished({ dag, task: split, run, ti: ti(run, 'split'), executor: 'local', outcome: { state: 'success', return_value: { rows: 1 } }, artifacts_registered: [] });
    l.tryStarted({ dag, task: train, run, ti: ti(run, 'train'), executor: 'local' });
    await mkdir(join(dir, 'artifacts'), { recursive: true });
    await writeFile(join(dir, 'artifacts', 'model.json'), '{"m":1}');
    await l.tryFinished({
      dag,
      task: train,
      run,
      ti: ti(run, 'train'),
      executor: 'local',
      outcome: { state: 'success' },
      artifacts_registered: [{ uri: 's3://models/iris/model.onnx', meta: { etag: '"e1"', size: 4096 } }],
      metrics: { accuracy: 0.97 },
    });
    l.runFinished({ dag, run, state: 'success' });
    expect(await l.flush(10_000)).toBe(true);

    expect(summary(rcv.events)).toEqual([
      'START iris_training',
      'START iris_training.split',
      'COMPLETE iris_training.split',
      'START iris_training.train',
      'COMPLETE iris_training.train',
      'COMPLETE iris_training',
    ]);
    expect(rcv.events.map(checkEvent)).toEqual(rcv.events.map(() => []));
    expect(new Set(rcv.auth)).toEqual(new Set(['Bearer k3y']));
    expect(l.stats()).toEqual({ emitted: 6, delivered: 6, dropped: 0, failed: 0, queued: 0 });

    const [runStart, splitStart, splitDone, trainStart, trainDone, runDone] = rcv.events;
    const dagRunId = dagRunUuid('ml-prod', 'iris_training', 'manual__ok');
    expect([runStart.run.runId, runDone.run.runId]).toEqual([dagRunId, dagRunId]);
    expect(splitStart.run.runId).toBe(splitDone.run.runId);
    expect(trainStart.run.runId).toBe(taskRunUuid('ml-prod', { dag_id: 'iris_training', run_id: 'manual__ok', task_id: 'train', map_index: -1, try_number: 1 }));
    expect(trainDone.run.facets.parent).toMatchObject({ run: { runId: dagRunId }, job: { namespace: 'ml-prod', name: 'iris_training' } });
    expect(trainDone.job.facets.jobType).toMatchObject({ processingType: 'BATCH', integration: 'PODFLOW', jobType: 'TASK' });
    expect(runDone.job.facets.jobType).toMatchObject({ jobType: 'DAG' });
    expect(trainDone.job.facets.sourceCodeLocation).toMatchObject({
      type: 'git',
      url: `https://github.com/acme/pipelines/blob/${commit}/iris_training.ts`,
      version: commit,
    });
    expect(trainDone.run.facets.processing_engine).toMatchObject({ name: 'podflow', version: '0.1.0' });
    expect(trainDone.run.facets.nominalTime).toMatchObject({ nominalStartTime: '2026-12-02T10:00:00.000Z', nominalEndTime: '2026-12-03T10:00:00.000Z' });
    expect(splitDone.inputs).toEqual([
      {
        namespace: 'file',
        name: join(dir, 'data', 'iris.csv'),
        facets: { version: expect.objectContaining({ datasetVersion: sha('a,b\n1,2\n') }) },
      },
    ]);
    expect(trainDone.outputs.map((o) => [o.namespace, o.name, (o.facets?.version as { datasetVersion?: string })?.datasetVersion, (o.outputFacets?.outputStatistics as { size?: number })?.size])).toEqual([
      ['s3://models', 'iris/model.onnx', '"e1"', 4096],
      ['file', join(dir, 'artifacts', 'model.json'), sha('{"m":1}'), 7],
    ]);
    expect(trainStart.outputs.map((o) => o.name)).toEqual(['iris/model.onnx', join(dir, 'artifacts', 'model.json')]);
  });

  it('a failed run sends FAIL with the error message for the task and for the run, in order and valid', async () => {
    const rcv = await receiver();
    cleanups.push(() => rcv.close());
    const { logger } = captureLogger();
    const l = lineageFor(rcv.url, logger);
    const train = taskSpec('train', { inlets: ['data/iris.csv'], outlets: ['s3://models/iris/model.onnx'] });
    const dag = dagSpec('iris_training', join(dagsFolder, 'iris_training.ts'), [train]);
    const run = runRecord('iris_training', 'manual__bad');
    l.runStarted({ dag, run });
    l.tryStarted({ dag, task: train, run, ti: ti(run, 'train'), executor: 'local' });
    const rec = await l.tryFinished({
      dag,
      task: train,
      run,
      ti: ti(run, 'train'),
      executor: 'local',
      outcome: { state: 'failed', error: 'accuracy 0.62 is below 0.9\n    at evaluate (dags/iris.ts:40:11)', exit_code: 1 },
      artifacts_registered: [],
    });
    l.runFinished({ dag, run, state: 'failed', error: "task 'train' failed" });
    expect(await l.flush(10_000)).toBe(true);
    expect(rec.state).toBe('failed');
    expect(summary(rcv.events)).toEqual(['START iris_training', 'START iris_training.train', 'FAIL iris_training.train', 'FAIL iris_training']);
    expect(rcv.events.map(checkEvent)).toEqual(rcv.events.map(() => []));
    expect(rcv.events[2].run.facets.errorMessage).toMatchObject({
      message: 'accuracy 0.62 is below 0.9',
      programmingLanguage: 'JavaScript',
      stackTrace: '    at evaluate (dags/iris.ts:40:11)',
    });
    expect(rcv.events[2].outputs).toEqual([]);
    expect(rcv.events[3].run.facets.errorMessage).toMatchObject({ message: "task 'train' failed" });
  });

  it('a skipped try sends COMPLETE without outputs', async () => {
    const rcv = await receiver();
    cleanups.push(() => rcv.close());
    const l = lineageFor(rcv.url, captureLogger().logger);
    const t = taskSpec('maybe', { outlets: ['s3://models/iris/model.onnx'] });
    const dag = dagSpec('iris_training', join(dagsFolder, 'iris_training.ts'), [t]);
    const run = runRecord('iris_training', 'manual__skip');
    l.tryStarted({ dag, task: t, run, ti: ti(run, 'maybe'), executor: 'local' });
    await l.tryFinished({ dag, task: t, run, ti: ti(run, 'maybe'), executor: 'local', outcome: { state: 'skipped' }, artifacts_registered: [] });
    expect(await l.flush(10_000)).toBe(true);
    expect(rcv.events.map((e) => [e.eventType, e.outputs.length])).toEqual([['START', 1], ['COMPLETE', 0]]);
    expect(rcv.events.map(checkEvent)).toEqual([[], []]);
  });

  it('a killed try sends ABORT', async () => {
    const rcv = await receiver();
    cleanups.push(() => rcv.close());
    const { logger } = captureLogger();
    const l = lineageFor(rcv.url, logger);
    const t = taskSpec('sleep');
    const dag = dagSpec('iris_training', join(dagsFolder, 'iris_training.ts'), [t]);
    const run = runRecord('iris_training', 'manual__kill');
    l.tryStarted({ dag, task: t, run, ti: ti(run, 'sleep'), executor: 'local' });
    await l.tryFinished({
      dag,
      task: t,
      run,
      ti: ti(run, 'sleep'),
      executor: 'local',
      outcome: { state: 'failed', error: 'marked failed by admin' },
      abort_reason: { kind: 'killed', message: 'marked failed by admin' },
      artifacts_registered: [],
    });
    expect(await l.flush(10_000)).toBe(true);
    expect(summary(rcv.events)).toEqual(['START iris_training.sleep', 'ABORT iris_training.sleep']);
    expect(rcv.events.map(checkEvent)).toEqual([[], []]);
  });

  it('a receiver that is down loses no task: tryFinished resolves with the stored record, failures are counted and logged once', async () => {
    const gone = await receiver();
    const url = gone.url;
    await gone.close();
    const { logger, lines } = captureLogger();
    const l = lineageFor(url, logger, { PODFLOW_OPENLINEAGE_RETRIES: '2' });
    const dag = dagSpec('iris_training', join(dagsFolder, 'iris_training.ts'), [taskSpec('a'), taskSpec('b')]);
    const run = runRecord('iris_training', 'manual__down');
    l.runStarted({ dag, run });
    for (const id of ['a', 'b']) {
      const task = taskSpec(id);
      l.tryStarted({ dag, task, run, ti: ti(run, id), executor: 'local' });
      const rec = await l.tryFinished({ dag, task, run, ti: ti(run, id), executor: 'local', outcome: { state: 'success' }, artifacts_registered: [] });
      expect(rec.state).toBe('success');
    }
    l.runFinished({ dag, run, state: 'success' });
    expect((await l.store.tries('iris_training', 'manual__down')).map((t) => t.task_id)).toEqual(['a', 'b']);
    expect(await l.flush(30_000)).toBe(true);
    expect(l.stats()).toEqual({ emitted: 6, delivered: 0, dropped: 0, failed: 6, queued: 0 });
    const warns = lines.filter((x) => x.level === 40).map((x) => x.msg);
    expect(warns.length).toBe(1);
    expect(warns[0]).toMatch(/^OpenLineage events cannot be delivered \(http http:\/\/127\.0\.0\.1:\d+\/api\/v1\/lineage\): POST .* failed: ECONNREFUSED\. Tasks are not affected/);
  });

  it('a receiver that does not answer never holds a task: tryFinished resolves while the START is still unanswered', async () => {
    const rcv = await receiver();
    cleanups.push(() => rcv.close());
    rcv.hold = true;
    const { logger } = captureLogger();
    const l = lineageFor(rcv.url, logger);
    const t = taskSpec('slow_receiver');
    const dag = dagSpec('iris_training', join(dagsFolder, 'iris_training.ts'), [t]);
    const run = runRecord('iris_training', 'manual__hold');
    l.tryStarted({ dag, task: t, run, ti: ti(run, 'slow_receiver'), executor: 'local' });
    const rec = await l.tryFinished({ dag, task: t, run, ti: ti(run, 'slow_receiver'), executor: 'local', outcome: { state: 'success' }, artifacts_registered: [] });
    expect([rec.state, l.stats().delivered]).toEqual(['success', 0]);
    rcv.release();
    expect(await l.flush(10_000)).toBe(true);
    expect(summary(rcv.events)).toEqual(['START iris_training.slow_receiver', 'COMPLETE iris_training.slow_receiver']);
  });

  it('a full queue drops and counts what it cannot hold', async () => {
    const rcv = await receiver();
    cleanups.push(() => rcv.close());
    rcv.hold = true;
    const { logger } = captureLogger();
    const l = lineageFor(rcv.url, logger, { PODFLOW_OPENLINEAGE_QUEUE_SIZE: '2' });
    const dag = dagSpec('iris_training', join(dagsFolder, 'iris_training.ts'), [taskSpec('t')]);
    const run = runRecord('iris_training', 'manual__full');
    l.runStarted({ dag, run });
    // wait until the run START is in flight, held by the receiver: the queue is then empty
    while (rcv.pending() === 0) await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 10; i++) l.tryStarted({ dag, task: taskSpec(`t${i}`), run, ti: ti(run, `t${i}`), executor: 'local' });
    expect(await l.flush(0)).toBe(false);
    expect(l.stats()).toEqual({ emitted: 11, delivered: 0, dropped: 8, failed: 0, queued: 3 });
    rcv.release();
    expect(await l.flush(10_000)).toBe(true);
    expect(summary(rcv.events)).toEqual(['START iris_training', 'START iris_training.t0', 'START iris_training.t1']);
    expect(l.stats()).toEqual({ emitted: 11, delivered: 3, dropped: 8, failed: 0, queued: 0 });
  });

  it('emits nothing and needs no receiver when the transport is off (the default)', async () => {
    const l = createLineage({ redis, prefix: uniquePrefix('ol'), env: {}, logger: captureLogger().logger, cwd: dir });
    cleanups.push(() => l.close());
    const t = taskSpec('x');
    const dag = dagSpec('iris_training', join(dagsFolder, 'iris_training.ts'), [t]);
    const run = runRecord('iris_training', 'manual__off');
    l.tryStarted({ dag, task: t, run, ti: ti(run, 'x'), executor: 'local' });
    const rec = await l.tryFinished({ dag, task: t, run, ti: ti(run, 'x'), executor: 'local', outcome: { state: 'success' }, artifacts_registered: [] });
    expect([rec.id, l.config.transport, l.stats().emitted]).toEqual(['iris_training/manual__off/x/-1/1', 'none', 0]);
  });
});

describe('OpenLineage event builders', () => {
  const ctx = openLineageContext('podflow');

  it('are checked by a live validator: a broken event is rejected by the core schema and by the facet schemas', () => {
    const ev = taskRunEvent(ctx, 'FAIL', {
      dag_id: 'd', run_id: 'r', task_id: 't', map_index: -1, try_number: 1, data_interval_start: null, data_interval_end: null,
      dag_file: '/d.ts', git: null, inputs: [], outputs: [], error: 'x',
    });
    const broken = structuredClone(ev) as unknown as { run: { runId: string; facets: Record<string, Record<string, unknown>> } };
    broken.run.runId = 'not-a-uuid';
    delete broken.run.facets.errorMessage.programmingLanguage;
    expect(checkEvent(broken as unknown as RunEvent)).toEqual([
      'OpenLineage.json/run/runId must match format "uuid"',
      // the oneOf over RunEvent, DatasetEvent and JobEvent reports each branch
      'OpenLineage.json must NOT be valid',
      "OpenLineage.json must have required property 'dataset'",
      'OpenLineage.json must NOT be valid',
      'OpenLineage.json must match exactly one schema in oneOf',
      'run.facets: ErrorMessageRunFacet.json/errorMessage must have required property \'programmingLanguage\'',
    ]);
  });

  it('derive name-based v5 UUIDs (the RFC 4122 example value)', () => {
    const dns = Buffer.from('6ba7b8109dad11d180b400c04fd430c8', 'hex');
    expect(uuidV5('python.org', dns)).toBe('886313e1-3b8a-5372-9b90-0c9aee199e5d');
  });

  it('give each try its own run id, the same for its START and its end', () => {
    const k = { dag_id: 'd', run_id: 'r', task_id: 't', map_index: -1, try_number: 1 };
    expect(taskRunUuid('podflow', k)).toBe(taskRunUuid('podflow', { ...k }));
    expect(new Set([taskRunUuid('podflow', k), taskRunUuid('podflow', { ...k, try_number: 2 }), taskRunUuid('podflow', { ...k, map_index: 0 }), dagRunUuid('podflow', 'd', 'r')]).size).toBe(4);
  });

  it('name datasets by the OpenLineage naming conventions', () => {
    expect(
      [
        'file:///data/iris.csv',
        's3://bucket/k/x.parquet',
        'gs://b/models/m.pt',
        'abfss://c@acct.dfs.core.windows.net/p/f.csv',
        'hdfs://nn:8020/user/d',
        'postgres://db.local:5432/ml/public/features',
        'https://example.org/iris.csv',
        'x-dataset:iris_clean',
        'file://nas/share/iris.csv',
      ].map(datasetName),
    ).toEqual([
      { namespace: 'file', name: '/data/iris.csv' },
      { namespace: 's3://bucket', name: 'k/x.parquet' },
      { namespace: 'gs://b', name: 'models/m.pt' },
      { namespace: 'abfss://c@acct.dfs.core.windows.net', name: 'p/f.csv' },
      { namespace: 'hdfs://nn:8020', name: '/user/d' },
      { namespace: 'postgres://db.local:5432', name: 'ml.public.features' },
      { namespace: 'https://example.org', name: '/iris.csv' },
      { namespace: 'x-dataset', name: 'iris_clean' },
      { namespace: 'file://nas', name: '/share/iris.csv' },
    ]);
  });

  it('build valid events for every event type, with directories, remote objects and no git', () => {
    const base = {
      dag_id: 'd',
      run_id: 'r',
      task_id: 't',
      map_index: 3,
      try_number: 2,
      data_interval_start: null,
      data_interval_end: null,
      dag_file: '/nowhere/d.ts',
      git: null,
      inputs: ['s3://b/in.csv', { uri: 'file:///x/dir', kind: 'directory' as const, size: 10, media_type: 'inode/directory', sha256: sha('m'), mtime: null, etag: null, version_id: null, file_count: 2 }],
      outputs: [{ uri: 'gs://b/out', kind: 'remote' as const, size: null, media_type: null, sha256: null, mtime: null, etag: null, version_id: '17' }],
      error: 'boom',
      stack: 'Error: boom\n    at x',
    };
    const events = [
      ...(['START', 'RUNNING', 'COMPLETE', 'ABORT', 'FAIL', 'OTHER'] as const).map((t) => taskRunEvent(ctx, t, base)),
      dagRunEvent(ctx, 'START', { ...base, git: null }),
      dagRunEvent(ctx, 'FAIL', { ...base, error: 'run failed' }),
    ];
    expect(events.map(checkEvent)).toEqual(events.map(() => []));
    expect(events[2].outputs).toEqual([{ namespace: 'gs://b', name: 'out', facets: { version: expect.objectContaining({ datasetVersion: '17' }) } }]);
    expect(events[4].run.facets.errorMessage).toMatchObject({ message: 'boom', stackTrace: 'Error: boom\n    at x' });
  });
});
