import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { enqueueDagCallback, taskQueue } from '../../src/worker/jobs.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';

// Each callback appends a line to a file next to the DAG file: what ran, once per line.
const HEADER = `
import { dag } from 'podflow';
import { appendFileSync } from 'node:fs';
const note = (line) => appendFileSync(new URL('./callbacks.log', import.meta.url), line + '\\n');
`;

const OK = `${HEADER}
export default dag({
  dag_id: 'cb_ok', schedule: null,
  on_success_callback: (i) => note('dag ' + i.dag_id + ' ' + i.run_id + ' ' + i.state + ' ' + i.reason),
  on_failure_callback: (i) => note('dag ' + i.dag_id + ' ' + i.run_id + ' ' + i.state + ' ' + i.reason),
}, (d) => {
  const a = d.task('a', async () => 1, { on_success_callback: (ctx, info) => note('task ' + ctx.task_id + ' ' + ctx.run_id + ' ' + info.state) });
  const b = d.task('b', async () => 2);
  a.then(b);
});
`;

const FAIL = `${HEADER}
export default dag({
  dag_id: 'cb_fail', schedule: null,
  default_args: {
    on_retry_callback: (ctx, info) => note('task ' + ctx.task_id + ' ' + ctx.run_id + ' retry after try ' + ctx.try_number + ': ' + info.error),
    on_failure_callback: (ctx, info) => note('task ' + ctx.task_id + ' ' + ctx.run_id + ' ' + info.state + ' after try ' + ctx.try_number),
  },
  on_success_callback: (i) => note('dag ' + i.dag_id + ' ' + i.run_id + ' ' + i.state + ' ' + i.reason),
  on_failure_callback: (i) => note('dag ' + i.dag_id + ' ' + i.run_id + ' ' + i.state + ' ' + i.reason),
}, (d) => {
  d.task('boom', async (ctx) => { throw new Error('boom ' + ctx.try_number); }, { retries: 1, retry_delay: '50ms' });
});
`;

const TIMEOUT = `${HEADER}
export default dag({
  dag_id: 'cb_timeout', schedule: null, dagrun_timeout: '1s',
  on_failure_callback: (i) => note('dag ' + i.dag_id + ' ' + i.run_id + ' ' + i.state + ' ' + i.reason),
}, (d) => {
  d.command('sleepy', ['sleep', '30']);
});
`;

const NONE = `${HEADER}
export default dag({ dag_id: 'cb_none', schedule: null }, (d) => {
  d.task('a', async () => 1);
});
`;

describe('callbacks at task and DAG level', () => {
  let pf: TestPodflow;
  let log: string;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'ok.ts': OK, 'fail.ts': FAIL, 'timeout.ts': TIMEOUT, 'none.ts': NONE } });
    log = join(pf.folder.dir, 'callbacks.log');
  });
  afterAll(async () => pf?.close());

  const lines = (runId: string) => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.includes(runId)) : []);
  async function linesWhen(runId: string, count: number): Promise<string[]> {
    for (let i = 0; i < 200 && lines(runId).length < count; i++) await new Promise((r) => setTimeout(r, 50));
    // A duplicate would land within a few scheduler ticks; give it the chance to show up.
    await new Promise((r) => setTimeout(r, 600));
    return lines(runId);
  }

  it('a successful run calls the task on_success_callback and the DAG on_success_callback exactly once', async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('cb_ok'))!, { dag_run_id: 'ok1' });
    expect((await pf.waitForRun('cb_ok', run.dag_run_id)).state).toBe('success');
    expect(await linesWhen('ok1', 2)).toEqual(['task a ok1 success', 'dag cb_ok ok1 success success']);
    expect((await pf.store.getDag('cb_ok'))!.extra).toMatchObject({ has_success_callback: true, has_failure_callback: true });
  });

  it('a failing task calls on_retry_callback, then on_failure_callback, then the DAG on_failure_callback once', async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('cb_fail'))!, { dag_run_id: 'fail1' });
    const done = await pf.waitForRun('cb_fail', run.dag_run_id);
    expect(done.state).toBe('failed');
    expect(await linesWhen('fail1', 3)).toEqual([
      'task boom fail1 retry after try 1: boom 1',
      'task boom fail1 failed after try 2',
      'dag cb_fail fail1 failed task_failure',
    ]);
    // The callback job id is derived from the run and how it ended: sending it again runs nothing.
    const queue = taskQueue(pf.redis, pf.config.prefix);
    await enqueueDagCallback(queue, { dag_id: 'cb_fail', dag_run_id: 'fail1', state: 'failed', reason: 'task_failure', ended_at: done.end_date! });
    await queue.close();
    await new Promise((r) => setTimeout(r, 600));
    expect(lines('fail1')).toHaveLength(3);
  });

  it('a run failed by dagrun_timeout calls the DAG on_failure_callback with reason timed_out', async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('cb_timeout'))!, { dag_run_id: 'slow1' });
    expect((await pf.waitForRun('cb_timeout', run.dag_run_id, 15_000)).state).toBe('failed');
    expect(await linesWhen('slow1', 1)).toEqual(['dag cb_timeout slow1 failed timed_out']);
  });

  it('a DAG without callbacks gets no callback job; each run end with callbacks was claimed exactly once', async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('cb_none'))!, { dag_run_id: 'none1' });
    expect((await pf.waitForRun('cb_none', run.dag_run_id)).state).toBe('success');
    await new Promise((r) => setTimeout(r, 300));
    const claims = await pf.redis.keys(pf.store.keys.lease('dag_callback:*'));
    const runEnds = claims.map((k) => decodeURIComponent(k.split('dag_callback:')[1]).split('|').slice(1, 4).join(' ')).sort();
    expect(runEnds).toEqual(['cb_fail fail1 failed', 'cb_ok ok1 success', 'cb_timeout slow1 failed']);
  });
});
