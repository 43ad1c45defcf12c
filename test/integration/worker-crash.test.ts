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

  it('has its try taken over by another worker: the run succeeds once, nothing is lost or duplicated', async () => {
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
    expect([work.state, work.try_number, work.hostname]).toEqual(['success', 1, 'rescuer']);
    expect(await pf.store.getXcom({ ...key, task_id: 'after' }, 'return_value')).toBe('finished by 1');
    const log = await pf.store.readLog(key, 1);
    expect(log.filter((l) => l.endsWith('{stdout} finished by 1'))).toHaveLength(1);
  });
});
