import { readFileSync, rmSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { StateStore } from '../../src/state/store.ts';
import { conditionHolds, conditionUris, DatasetEvents, type DatasetEvent } from '../../src/triggers/dataset-events.ts';
import { DatasetTriggers } from '../../src/triggers/dataset-triggers.ts';
import type { DagSpec } from '../../src/dag/types.ts';
import { dag as defineDag } from '../../src/dag/dag.ts';
import { OPERATOR_TOKEN, startTestPodflow, VIEWER_TOKEN, type TestPodflow } from '../support/podflow.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';
import { buildProgram } from '../../src/cli/main.ts';
import { simulateNewLabels } from '../../dags/lib/drift.ts';
import { loadIris } from '../../dags/lib/iris.ts';

const LABELS = 'dataset://t/labels';
const A = 'dataset://t/a';
const B = 'dataset://t/b';

const DAGS = `
import { dag } from 'podflow';
export const onLabels = dag({ dag_id: 'on_labels', schedule: [${JSON.stringify(LABELS)}] }, (d) => {
  d.task('count', async (ctx) => {
    const ev = (ctx.conf.triggering_dataset_events ?? {}) as Record<string, { id: number; extra: unknown }[]>;
    return Object.fromEntries(Object.entries(ev).map(([uri, list]) => [uri, list.map((e) => e.extra)]));
  });
});
export const produceA = dag({ dag_id: 'produce_a', schedule: null }, (d) => {
  d.task('write', async (ctx) => {
    await ctx.xcom.push('dataset_extra', { rows: 10 * ctx.try_number });
    return 'written';
  }, { outlets: [${JSON.stringify(A)}] });
});
export const needsBoth = dag({ dag_id: 'needs_both', schedule: { all: [{ uri: ${JSON.stringify(A)} }, { uri: ${JSON.stringify(B)} }] } }, (d) => {
  d.task('go', async () => 'ok');
});
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('dataset-scheduled DAGs', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'datasets.ts': DAGS }, env: { PODFLOW_DAG_IMPORT_TIMEOUT_MS: '30000' } });
  });
  afterAll(async () => pf?.close());

  const api = (path: string, init: RequestInit & { token?: string } = {}) =>
    fetch(`${pf.api!.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${init.token ?? OPERATOR_TOKEN}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
    });
  const postEvent = (uri: string, extra?: object) => api('/api/v1/datasets/events', { method: 'POST', body: JSON.stringify({ dataset_uri: uri, extra }) });

  async function runsOf(dagId: string, count: number, timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const runs = await pf.store.listRuns(dagId);
      if (runs.length >= count && runs.slice(0, count).every((r) => r.state === 'success' || r.state === 'failed')) return runs;
      if (Date.now() > deadline) throw new Error(`${dagId} has ${runs.length} runs (${runs.map((r) => r.state).join(', ')}), expected ${count} finished`);
      await sleep(50);
    }
  }

  it('three rapid updates start the DAG exactly once, with all three events in conf', async () => {
    // Paused while the updates arrive, so no tick can fall between them; they wait for the unpause.
    expect((await api('/api/v1/dags/on_labels', { method: 'PATCH', body: JSON.stringify({ is_paused: true }) })).status).toBe(200);
    const posted = await Promise.all([1, 2, 3].map((n) => postEvent(LABELS, { batch: n })));
    expect(posted.map((r) => r.status)).toEqual([200, 200, 200]);
    await api('/api/v1/dags/on_labels', { method: 'PATCH', body: JSON.stringify({ is_paused: false }) });
    const [first] = await runsOf('on_labels', 1);
    await sleep(500); // several scheduler ticks: nothing more may start
    const runs = await pf.store.listRuns('on_labels');
    expect(runs.map((r) => [r.run_type, r.state])).toEqual([['dataset_triggered', 'success']]);
    const x = (await pf.store.getXcom({ dag_id: 'on_labels', dag_run_id: first.dag_run_id, task_id: 'count', map_index: -1 }, 'return_value')) as Record<string, { batch: number }[]>;
    expect(x[LABELS].map((e) => e.batch).sort()).toEqual([1, 2, 3]);

    const upstream = (await (await api(`/api/v1/dags/on_labels/dagRuns/${encodeURIComponent(first.dag_run_id)}/upstreamDatasetEvents`)).json()) as { total_entries: number };
    expect(upstream.total_entries).toBe(3);

    // A later update starts one more run, with only the new event.
    await postEvent(LABELS, { batch: 4 });
    const after = await runsOf('on_labels', 2);
    expect(after).toHaveLength(2);
    const x2 = (await pf.store.getXcom({ dag_id: 'on_labels', dag_run_id: after[0].dag_run_id, task_id: 'count', map_index: -1 }, 'return_value')) as Record<string, { batch: number }[]>;
    expect(x2).toEqual({ [LABELS]: [{ batch: 4 }] });
  });

  it('an AND schedule waits for every dataset; a task outlet records the event with its source', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await triggerDagRun(pf.store, (await pf.store.getDag('produce_a'))!);
      expect((await pf.waitForRun('produce_a', r.dag_run_id, 30_000)).state).toBe('success');
    }
    await sleep(300);
    expect(await pf.store.countRuns('needs_both')).toBe(0);
    const evA = (await (await api(`/api/v1/datasets/events?dataset_uri=${encodeURIComponent(A)}`, { token: VIEWER_TOKEN })).json()) as {
      dataset_events: DatasetEvent[];
      total_entries: number;
    };
    expect(evA.total_entries).toBe(2);
    expect(evA.dataset_events.map((e) => [e.source_dag_id, e.source_task_id, e.source_map_index, e.extra])).toEqual([
      ['produce_a', 'write', -1, { rows: 10 }],
      ['produce_a', 'write', -1, { rows: 10 }],
    ]);
    await postEvent(B);
    const [r] = await runsOf('needs_both', 1);
    const conf = r.conf.triggering_dataset_events as unknown as Record<string, DatasetEvent[]>;
    expect(Object.keys(conf).sort()).toEqual([A, B]);
    expect([conf[A].length, conf[B].length]).toEqual([2, 1]);
    // The data interval spans the triggering events, as in Airflow.
    expect([r.data_interval_start, r.data_interval_end]).toEqual([conf[A][0].timestamp, conf[B][0].timestamp]);
  });

  it('lists datasets with producers and consumers, gets one by URL-encoded URI, and rejects a bad event body', async () => {
    const list = (await (await api('/api/v1/datasets', { token: VIEWER_TOKEN })).json()) as {
      datasets: { uri: string; consuming_dags: { dag_id: string }[]; producing_tasks: { dag_id: string; task_id: string }[] }[];
    };
    const a = list.datasets.find((d) => d.uri === A)!;
    expect(a.consuming_dags.map((d) => d.dag_id)).toEqual(['needs_both']);
    expect(a.producing_tasks.map((t) => `${t.dag_id}.${t.task_id}`)).toEqual(['produce_a.write']);
    const one = await api(`/api/v1/datasets/${encodeURIComponent(LABELS)}`, { token: VIEWER_TOKEN });
    expect(one.status).toBe(200);
    expect(((await one.json()) as { uri: string }).uri).toBe(LABELS);
    expect((await api(`/api/v1/datasets/${encodeURIComponent('dataset://nope')}`, { token: VIEWER_TOKEN })).status).toBe(404);
    const bad = await api('/api/v1/datasets/events', { method: 'POST', body: JSON.stringify({ uri: LABELS }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { detail: string }).detail).toBe("Invalid request body: field 'dataset_uri': Invalid input: expected string, received undefined; unknown field 'uri'");
    expect((await api('/api/v1/datasets/events', { method: 'POST', token: VIEWER_TOKEN, body: JSON.stringify({ dataset_uri: LABELS }) })).status).toBe(403);
  });

  it('`podflow datasets event` records an event with extra; `datasets list` shows producers, consumers and last update', async () => {
    // The real commander program, in-process, against this instance's store.
    const cli = async (...args: string[]) => {
      const out: string[] = [];
      const program = buildProgram({ config: pf.config, store: async () => pf.store, out: (t) => out.push(t) }).exitOverride();
      await program.parseAsync(args, { from: 'user' });
      return out.join('\n');
    };
    const ev = JSON.parse(await cli('datasets', 'event', 'dataset://t/cli', '--extra', '{"rows": 7}', '--json')) as DatasetEvent;
    expect(ev).toMatchObject({ dataset_uri: 'dataset://t/cli', extra: { rows: 7 }, source_dag_id: null });
    const list = await cli('datasets', 'list');
    expect(list.split('\n').find((l) => l.startsWith(A))).toMatch(/^dataset:\/\/t\/a\s+produce_a\.write\s+needs_both\s+\d{4}-/);
    expect(list.split('\n').find((l) => l.startsWith('dataset://t/cli'))).toMatch(/^dataset:\/\/t\/cli\s+\d{4}-/);
    const events = await cli('datasets', 'events', 'dataset://t/cli');
    expect(events.split('\n')[2]).toMatch(new RegExp(`^${ev.id}\\s+dataset://t/cli\\s+\\S+\\s+external\\s+\\{"rows":7\\}$`));
    await expect(cli('datasets', 'event', 'dataset://t/cli', '--extra', '[1]')).rejects.toThrow("--extra must be a JSON object such as '{\"rows\": 120}'");
  });
});

describe('dataset conditions', () => {
  it('evaluate AND/OR expressions, nested, over the URIs updated since the last run', () => {
    const c = { any: [{ all: [{ uri: A }, { uri: B }] }, { uri: LABELS }] };
    expect(conditionUris(c)).toEqual([A, B, LABELS]);
    const cases: [string[], boolean][] = [
      [[], false],
      [[A], false],
      [[A, B], true],
      [[LABELS], true],
      [[B, LABELS], true],
    ];
    expect(cases.map(([updated]) => conditionHolds(c, new Set(updated)))).toEqual(cases.map(([, want]) => want));
  });
});

describe('dataset triggers with several schedulers', () => {
  it('two schedulers checking at once create one run per batch of events', async () => {
    const prefix = uniquePrefix('ds-race');
    const conns = [new Redis(redisUrl()), new Redis(redisUrl())];
    const stores = conns.map((c) => new StateStore(c, prefix));
    const logger = pino({ level: 'silent' });
    const spec: DagSpec = defineDag({ dag_id: 'race', schedule: { any: [{ uri: A }, { uri: B }] } }, (d) => {
      d.task('t', async () => null);
    }).toSpec('race.ts', 'x');
    await stores[0].putDag(spec);
    const triggers = stores.map((store) => new DatasetTriggers({ store, logger }));
    const events = new DatasetEvents(stores[0]);
    try {
      for (let round = 0; round < 10; round++) {
        await events.record(round % 2 ? A : B);
        await events.record(A);
        const made = await Promise.all([triggers[0].checkDag(spec), triggers[1].checkDag(spec), triggers[0].checkDag(spec), triggers[1].checkDag(spec)]);
        expect(made.filter(Boolean)).toHaveLength(1);
      }
      expect(await stores[0].countRuns('race')).toBe(10);
      // Nothing new: nothing more starts.
      expect(await Promise.all([triggers[0].checkDag(spec), triggers[1].checkDag(spec)])).toEqual([null, null]);
      // Writers racing on one URI: its latest id is always its newest event's, ids are unique.
      const writers = [new DatasetEvents(stores[0]), new DatasetEvents(stores[1])];
      const written = await Promise.all(Array.from({ length: 40 }, (_, i) => writers[i % 2].record(B, {}, { i })));
      const newest = Math.max(...written.map((e) => e.id));
      expect((await writers[0].latestIds([B])).get(B)).toBe(newest);
      expect(new Set(written.map((e) => e.id)).size).toBe(40);
      expect((await writers[1].eventsOf(B, 0, '+inf', 1000)).slice(-40).map((e) => e.id)).toEqual(written.map((e) => e.id).sort((a, b) => a - b));
    } finally {
      for (const c of conns) c.disconnect();
    }
  });
});

describe('retrain_on_new_labels', () => {
  const repoDags = new URL('../../dags/', import.meta.url).pathname;
  // The DAG file from dags/, reading its helpers from dags/lib by absolute path.
  const source = readFileSync(`${repoDags}retrain_on_new_labels.ts`, 'utf8').replaceAll("from './lib/", `from '${repoDags}lib/`);
  const artifacts = `${repoDags}../test/.tmp/artifacts-${process.pid}-${Date.now()}`;
  let pf: TestPodflow;
  beforeAll(async () => {
    // Inline tasks run in this process and read the artifacts folder from its environment.
    process.env.PODFLOW_ARTIFACTS = artifacts;
    pf = await startTestPodflow({ files: { 'retrain.ts': source }, env: { PODFLOW_ARTIFACTS: artifacts, PODFLOW_DAG_IMPORT_TIMEOUT_MS: '30000' } });
  });
  afterAll(async () => {
    await pf?.close();
    delete process.env.PODFLOW_ARTIFACTS;
    rmSync(artifacts, { recursive: true, force: true });
  });

  async function nextRun(count: number) {
    for (let i = 0; ; i++) {
      const runs = await pf.store.listRuns('retrain_on_new_labels');
      if (runs.length >= count && (runs[0].state === 'success' || runs[0].state === 'failed')) return runs[0];
      if (i > 900) throw new Error(`retrain_on_new_labels has ${runs.length} runs, expected ${count} finished`);
      await sleep(50);
    }
  }
  const states = async (runId: string) =>
    Object.fromEntries((await pf.store.listTis('retrain_on_new_labels', runId)).map((t) => [t.task_id, t.state]));

  it('retrains when the labelled batch in the event has drifted, and keeps the model when a simulated batch has not', async () => {
    const events = new DatasetEvents(pf.store);
    const drifted = simulateNewLabels(loadIris(), { n: 60, shift: 2, seed: 7 });
    await events.record('dataset://podflow/iris/labels', {}, drifted as unknown as Record<string, never>);
    const first = await nextRun(1);
    expect(first.state).toBe('success');
    expect(await states(first.dag_run_id)).toEqual({
      collect_labels: 'success',
      check_drift: 'success',
      decide: 'success',
      retrain: 'success',
      keep_model: 'skipped',
      report: 'success',
    });
    const report = (await pf.store.getXcom({ dag_id: 'retrain_on_new_labels', dag_run_id: first.dag_run_id, task_id: 'report', map_index: -1 }, 'return_value')) as {
      decision: string;
      drifted_features: string[];
      retrained: { rows: number };
    };
    expect([report.decision, report.drifted_features.length > 0, report.retrained.rows]).toEqual(['retrained', true, 180]);
    // retrain's outlet is the model dataset.
    expect((await events.listEvents({ dataset_uri: 'dataset://podflow/iris/model' })).total).toBe(1);

    await events.record('dataset://podflow/iris/labels');
    const second = await nextRun(2);
    expect(await states(second.dag_run_id)).toMatchObject({ retrain: 'skipped', keep_model: 'success', report: 'success' });
  });
});
