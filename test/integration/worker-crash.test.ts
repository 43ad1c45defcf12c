import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import pino from 'pino';
import { startPodflow, type PodflowHandle } from '../../src/runtime/podflow.ts';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';

const bin = new URL('../../src/cli/bin.mjs', import.meta.url).pathname;

const DAG = `
import { dag } from 'podflow';
export default dag({ dag_id: 'crashy', schedule: null }, (d) => {
  const work = d.command('work', ['node', '-e', 'setTimeout(() => console.log("finished by " + process.env.PODFLOW_TRY_NUMBER), 1500)']);
  const after = d.task('after', async (ctx) => ctx.xcom.pull('work'));
  work.then(after);
});
`;

describe('a worker that dies mid-task', () => {
  let pf: TestPodflow | undefined;
  let victim: ChildProcess | undefined;
  let rescuer: PodflowHandle | undefined;
  afterAll(async () => {
    victim?.kill('SIGKILL');
    await rescuer?.stop();
    await pf?.close();
  });

  it('ends the lost try and runs a new one on another worker, without spending a retry: the run succeeds once, nothing is lost', async () => {
    pf = await startTestPodflow({ files: { 'crashy.ts': DAG }, roles: { scheduler: true }, env: { PODFLOW_WORKER_LOCK_MS: '2000' } });
    const env = {
      ...process.env,
      REDIS_URL: pf.config.redisUrl,
      PODFLOW_PREFIX: pf.config.prefix,
      PODFLOW_DAGS_FOLDER: pf.config.dagsFolder,
      PODFLOW_WORKER_LOCK_MS: '2000',
      PODFLOW_WORKER_NAME: 'victim',
      PODFLOW_PLUGINS_FOLDER: '/nonexistent',
      LOG_LEVEL: 'error',
    };
    victim = spawn(process.execPath, [bin, 'worker'], { env, stdio: 'ignore' });
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('crashy'))!);
    const key = { dag_id: 'crashy', dag_run_id: run.dag_run_id, task_id: 'work', map_index: -1 };
    for (let i = 0; i < 400; i++) {
      const ti = await pf.store.getTi(key);
      if (ti?.state === 'running' && ti.hostname === 'victim') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect((await pf.store.getTi(key))!.hostname).toBe('victim');
    victim.kill('SIGKILL');
    rescuer = await startPodflow({
      config: { ...pf.config, workerName: 'rescuer', pluginsFolder: '/nonexistent' },
      roles: { worker: true },
      logger: pino({ level: 'silent' }),
    });
    const done = await pf.waitForRun('crashy', run.dag_run_id, 60_000);
    expect(done.state).toBe('success');
    const work = (await pf.store.getTi(key))!;
    // retries: 0, yet a second try ran: a lost worker is not the task's fault.
    expect([work.state, work.try_number, work.max_tries, work.hostname]).toEqual(['success', 2, 2, 'rescuer']);
    expect(await pf.store.getXcom({ ...key, task_id: 'after' }, 'return_value')).toBe('finished by 2');
    const first = await pf.store.readLog(key, 1);
    expect(first.some((l) => l.includes('{ERROR} try 1 was lost with its worker (victim stopped heartbeating); try 2 starts now'))).toBe(true);
    expect(first.filter((l) => l.includes('{stdout} finished by'))).toHaveLength(0);
    const second = await pf.store.readLog(key, 2);
    expect(second.filter((l) => l.endsWith('{stdout} finished by 2'))).toHaveLength(1);
  });

  it('a worker that shuts down gracefully stops its local tries; they run again as new tries elsewhere', async () => {
    const base = { ...pf!.config, pluginsFolder: '/nonexistent' };
    const first = await startPodflow({ config: { ...base, workerName: 'leaving' }, roles: { worker: true }, logger: pino({ level: 'silent' }) });
    await rescuer?.stop();
    rescuer = undefined;
    const run = await triggerDagRun(pf!.store, (await pf!.store.getDag('crashy'))!, { dag_run_id: 'graceful' });
    const key = { dag_id: 'crashy', dag_run_id: run.dag_run_id, task_id: 'work', map_index: -1 };
    for (let i = 0; i < 400 && (await pf!.store.getTi(key))?.state !== 'running'; i++) await new Promise((r) => setTimeout(r, 25));
    await first.stop();
    const interrupted = (await pf!.store.getTi(key))!;
    expect([interrupted.state, interrupted.try_number, interrupted.max_tries]).toEqual(['up_for_retry', 1, 2]);
    expect(interrupted.note).toBe('the worker shut down during try 1; the task runs again as a new try, not counted against its retries');
    rescuer = await startPodflow({ config: { ...base, workerName: 'next' }, roles: { worker: true }, logger: pino({ level: 'silent' }) });
    expect((await pf!.waitForRun('crashy', run.dag_run_id, 60_000)).state).toBe('success');
    const work = (await pf!.store.getTi(key))!;
    expect([work.state, work.try_number, work.hostname]).toEqual(['success', 2, 'next']);
    expect((await pf!.store.readLog(key, 1)).filter((l) => l.includes('{stdout} finished by'))).toHaveLength(0);
  });
});
