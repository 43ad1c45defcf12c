import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';

const ISOLATED = `
import { dag } from 'podflow';
export default dag({ dag_id: 'isolated', schedule: null, default_args: { isolation: 'process' } }, (d) => {
  const produce = d.task('produce', async (ctx) => {
    ctx.log.info('in a child', { pid: process.pid });
    console.log('plain stdout line');
    await ctx.metric('score', 0.75);
    await ctx.xcom.push('extra', { k: 1 });
    return { worker_pid: Number(process.env.PODFLOW_TEST_PARENT_PID), pid: process.pid };
  });
  const consume = d.task('consume', async (ctx) => {
    const up = (await ctx.xcom.pull('produce')) as { pid: number };
    return { saw: up.pid, extra: await ctx.xcom.pull('produce', 'extra'), map: ctx.map_value ?? null };
  }, { expand: [10, 20] });
  produce.then(consume);
});
`;

const BAD = `
import { dag } from 'podflow';
export default dag({ dag_id: 'bad_children', schedule: null, default_args: { isolation: 'process' } }, (d) => {
  d.task('spins', async () => { for (;;) {} }, { execution_timeout: '1s' });
  d.task('exits', async () => { process.exit(9); });
  d.task('throws', async () => { throw new Error('bad input row 17'); });
});
`;

describe("inline tasks with isolation: 'process'", () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    process.env.PODFLOW_TEST_PARENT_PID = String(process.pid);
    pf = await startTestPodflow({ files: { 'isolated.ts': ISOLATED, 'bad.ts': BAD } });
  });
  afterAll(async () => pf?.close());

  it('runs the function in a child process with logs, metrics, XCom and map values proxied', async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('isolated'))!);
    const done = await pf.waitForRun('isolated', run.dag_run_id);
    expect(done.state).toBe('success');
    const key = { dag_id: 'isolated', dag_run_id: run.dag_run_id };
    const produced = (await pf.store.getXcom({ ...key, task_id: 'produce', map_index: -1 }, 'return_value')) as { pid: number; worker_pid: number };
    expect(produced.pid).not.toBe(process.pid);
    expect(produced.worker_pid).toBe(process.pid);
    expect(await pf.store.getMetrics({ ...key, task_id: 'produce', map_index: -1 })).toEqual({ score: 0.75 });
    const log = await pf.store.readLog({ ...key, task_id: 'produce', map_index: -1 }, 1);
    expect(log.some((l) => l.includes('{INFO} in a child'))).toBe(true);
    expect(log.some((l) => l.endsWith('{stdout} plain stdout line'))).toBe(true);
    for (const [i, v] of [[0, 10], [1, 20]]) {
      expect(await pf.store.getXcom({ ...key, task_id: 'consume', map_index: i }, 'return_value')).toEqual({ saw: produced.pid, extra: { k: 1 }, map: v });
    }
  });

  it('kills an endless loop at execution_timeout, and reports exits and throws', async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('bad_children'))!);
    expect((await pf.waitForRun('bad_children', run.dag_run_id)).state).toBe('failed');
    const ti = (t: string) => pf.store.getTi({ dag_id: 'bad_children', dag_run_id: run.dag_run_id, task_id: t, map_index: -1 });
    expect((await ti('spins'))!.note).toBe("execution_timeout of 1s exceeded; the task's process was killed");
    expect((await ti('exits'))!.note).toBe("the task's process ended without a result (exit code 9); it may have run out of memory or called process.exit");
    expect((await ti('throws'))!.note).toMatch(/^bad input row 17/);
    for (const t of ['spins', 'exits', 'throws']) expect((await ti(t))!.state).toBe('failed');
  });
});
