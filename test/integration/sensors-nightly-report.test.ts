import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DagFolderLoader } from '../../src/loader/dag-loader.ts';
import { StateStore } from '../../src/state/store.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';
import { redisUrl, uniquePrefix } from '../support/redis.ts';

const repoDags = new URL('../../dags/', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('example DAGs', () => {
  it('every file in dags/ loads without import errors, including retrain_on_new_labels and nightly_report', async () => {
    const redis = new Redis(redisUrl());
    const store = new StateStore(redis, uniquePrefix('examples'));
    try {
      await new DagFolderLoader(store, { folder: repoDags, importTimeoutMs: 20_000, concurrency: 3, logger: pino({ level: 'silent' }) }).scan();
      expect(await store.importErrors()).toEqual([]);
      const ids = await store.dagIds();
      expect(ids).toEqual(expect.arrayContaining(['iris_training', 'nightly_report', 'retrain_on_new_labels']));
      const retrain = (await store.getDag('retrain_on_new_labels'))!;
      expect(retrain.schedule.datasets).toEqual({ all: [{ uri: 'dataset://podflow/iris/labels' }] });
      expect(retrain.tasks.find((t) => t.task_id === 'decide')!.downstream_task_ids).toEqual(['keep_model', 'retrain']);
      const nightly = (await store.getDag('nightly_report'))!;
      expect(nightly.tasks.find((t) => t.task_id === 'wait_for_export')!.operator_args).toMatchObject({ sensor: 'file', mode: 'reschedule', timeout_ms: 6 * 3600_000 });
    } finally {
      redis.disconnect();
    }
  });
});

describe('nightly_report', () => {
  const artifacts = mkdtempSync(join(tmpdir(), 'pf-nightly-'));
  let pf: TestPodflow;
  beforeAll(async () => {
    // Read by the DAG file (poke interval) and its tasks (artifacts folder) in this process and the loader's.
    process.env.NIGHTLY_REPORT_POKE_INTERVAL = '200ms';
    process.env.PODFLOW_ARTIFACTS = artifacts;
    pf = await startTestPodflow({ files: { 'nightly_report.ts': readFileSync(join(repoDags, 'nightly_report.ts'), 'utf8') }, env: { PODFLOW_ARTIFACTS: artifacts, PODFLOW_DAG_IMPORT_TIMEOUT_MS: '30000' } });
  });
  afterAll(async () => {
    await pf?.close();
    delete process.env.NIGHTLY_REPORT_POKE_INTERVAL;
    delete process.env.PODFLOW_ARTIFACTS;
    rmSync(artifacts, { recursive: true, force: true });
  });

  it("waits in reschedule mode for the day's file, then writes the report", async () => {
    // catchup is off: the scheduler creates the latest nightly run at once.
    let runs = await pf.store.listRuns('nightly_report');
    for (let i = 0; runs.length === 0 && i < 300; i++) {
      await sleep(50);
      runs = await pf.store.listRuns('nightly_report');
    }
    const [run] = runs;
    expect(run.run_type).toBe('scheduled');
    const key = { dag_id: 'nightly_report', dag_run_id: run.dag_run_id, task_id: 'wait_for_export', map_index: -1 };
    for (let i = 0; ; i++) {
      const ti = await pf.store.getTi(key);
      if (ti?.state === 'up_for_reschedule') break;
      if (i > 600) throw new Error(`the sensor never went up_for_reschedule (state ${ti?.state})`);
      await sleep(50);
    }
    const ds = run.logical_date.slice(0, 10);
    const incoming = join(artifacts, 'nightly_report', 'incoming');
    mkdirSync(incoming, { recursive: true });
    writeFileSync(join(incoming, `${ds}.csv`), 'model,accuracy,latency_ms\niris,0.9,12\niris,0.96,10\nwine,0.93,14\n');
    const done = await pf.waitForRun('nightly_report', run.dag_run_id, 30_000);
    expect(done.state).toBe('success');
    const sensor = (await pf.store.getTi(key))!;
    expect([sensor.state, sensor.try_number]).toEqual(['success', 1]);
    const report = JSON.parse(readFileSync(join(artifacts, 'nightly_report', 'reports', `${ds}.json`), 'utf8')) as {
      rows: number;
      numeric: { column: string; min: number; max: number }[];
    };
    expect(report.rows).toBe(3);
    expect(report.numeric.map((c) => [c.column, c.min, c.max])).toEqual([
      ['accuracy', 0.9, 0.96],
      ['latency_ms', 10, 14],
    ]);
    expect(existsSync(join(artifacts, 'nightly_report', 'reports', `${ds}.md`))).toBe(true);
  });
});
