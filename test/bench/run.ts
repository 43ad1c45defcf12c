/**
 * Throughput and latency of Podflow against raw BullMQ on the same Redis, in one run.
 *
 *   npm run bench            (REDIS_URL unset: a private redis-server is started)
 *   BENCH_TASKS=2000 npm run bench
 *
 * Podflow does more per task than a bare BullMQ job (state transitions with compare-and-set,
 * dependency resolution, logs, XCom), so the figure to watch is the ratio, not parity.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../src/config/config.ts';
import { startPodflow } from '../../src/runtime/podflow.ts';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { startPrivateRedis } from '../../src/util/redis-server.ts';

const N = Number(process.env.BENCH_TASKS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const RUNS = Number(process.env.BENCH_RUNS ?? 20);

function pct(xs: number[], p: number) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function rawBullmq(url: string) {
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const name = `bench-${randomUUID().slice(0, 8)}`;
  const queue = new Queue(name, { connection });
  let done = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const worker = new Worker(name, async () => ({ ok: true }), { connection: new Redis(url, { maxRetriesPerRequest: null }), concurrency: CONCURRENCY });
  worker.on('completed', () => {
    if (++done === N) resolveAll();
  });
  await worker.waitUntilReady();
  const t0 = performance.now();
  await queue.addBulk(Array.from({ length: N }, (_, i) => ({ name: 'job', data: { i }, opts: { jobId: `j${i}`, removeOnComplete: true } })));
  await all;
  const ms = performance.now() - t0;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  return ms;
}

async function podflow(url: string) {
  const dir = join(new URL('../.tmp/', import.meta.url).pathname, `bench-${randomUUID().slice(0, 8)}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'wide.ts'),
    `import { dag } from 'podflow';
// isolation 'inline' measures orchestration itself; 'wide_process' adds the child-process pool.
export const wide = dag({ dag_id: 'wide', schedule: null, max_active_tasks: 100000, default_args: { isolation: 'inline' } }, (d) => {
  for (let i = 0; i < ${N}; i++) d.task('t' + i, async () => i);
});
export const wideProcess = dag({ dag_id: 'wide_process', schedule: null, max_active_tasks: 100000 }, (d) => {
  for (let i = 0; i < ${Math.min(N, 200)}; i++) d.task('t' + i, async () => i);
});
export const one = dag({ dag_id: 'one', schedule: null, default_args: { isolation: 'inline' } }, (d) => { d.task('t', async () => 1); });
`,
  );
  const config = loadConfig({
    ...process.env,
    REDIS_URL: url,
    PODFLOW_PREFIX: `bench-${randomUUID().slice(0, 8)}`,
    PODFLOW_DAGS_FOLDER: dir,
    PODFLOW_WORKER_CONCURRENCY: String(CONCURRENCY),
    PODFLOW_PARALLELISM: '100000',
    PODFLOW_SCHEDULER_INTERVAL_MS: '1000',
  });
  const pf = await startPodflow({ config, roles: { scheduler: true, worker: true }, logger: pino({ level: 'silent' }) });
  await pf.loader!.scan();
  const wait = async (dagId: string, runId: string) => {
    for (;;) {
      const r = await pf.store.getRun(dagId, runId);
      if (r?.state === 'success' || r?.state === 'failed') return r;
      await new Promise((res) => setTimeout(res, 5));
    }
  };
  const t0 = performance.now();
  const run = await triggerDagRun(pf.store, (await pf.store.getDag('wide'))!);
  const res = await wait('wide', run.dag_run_id);
  const wideMs = performance.now() - t0;
  if (res.state !== 'success') throw new Error('wide run failed');
  const p0 = performance.now();
  const prun = await triggerDagRun(pf.store, (await pf.store.getDag('wide_process'))!);
  if ((await wait('wide_process', prun.dag_run_id)).state !== 'success') throw new Error('wide_process run failed');
  const processMs = performance.now() - p0;
  const lat: number[] = [];
  const one = (await pf.store.getDag('one'))!;
  for (let i = 0; i < RUNS; i++) {
    const s = performance.now();
    const r = await triggerDagRun(pf.store, one);
    await wait('one', r.dag_run_id);
    lat.push(performance.now() - s);
  }
  await pf.stop();
  rmSync(dir, { recursive: true, force: true });
  return { wideMs, processMs, lat };
}

const server = process.env.REDIS_URL ? null : await startPrivateRedis();
const url = process.env.REDIS_URL ?? server!.url;
console.log(`bench: ${N} trivial tasks, concurrency ${CONCURRENCY}, redis ${url}`);
const raw = await rawBullmq(url);
console.log(`raw BullMQ      : ${N} jobs in ${raw.toFixed(0)} ms = ${((N / raw) * 1000).toFixed(0)} jobs/s`);
const pf = await podflow(url);
console.log(`podflow inline  : ${N} tasks of one run in ${pf.wideMs.toFixed(0)} ms = ${((N / pf.wideMs) * 1000).toFixed(0)} tasks/s (${(pf.wideMs / raw).toFixed(1)}x raw BullMQ time)`);
const np = Math.min(N, 200);
console.log(`podflow process: ${np} tasks in pooled child processes (default isolation) in ${pf.processMs.toFixed(0)} ms = ${((np / pf.processMs) * 1000).toFixed(0)} tasks/s`);
console.log(`podflow latency : trigger -> success of a 1-task run over ${RUNS} runs: p50 ${pct(pf.lat, 50).toFixed(0)} ms, p95 ${pct(pf.lat, 95).toFixed(0)} ms`);
await server?.stop();
process.exit(0);
