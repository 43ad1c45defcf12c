import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPrivateRedis, type PrivateRedis } from '../../src/util/redis-server.ts';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';

const DAG = `
import { dag } from 'podflow';
export default dag({ dag_id: 'survives', schedule: null }, (d) => {
  const slow = d.command('slow', ['node', '-e', 'setTimeout(() => console.log("done"), 2500)']);
  const after = d.task('after', async (ctx) => ({ upstream: await ctx.xcom.pull('slow') }));
  slow.then(after);
});
`;

describe('a Redis restart loses and duplicates nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pf-redis-'));
  let redis: PrivateRedis | undefined;
  let pf: TestPodflow | undefined;
  afterAll(async () => {
    await pf?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finishes the run once after Redis restarts while a task runs', async () => {
    redis = await startPrivateRedis({ dir });
    pf = await startTestPodflow({ files: { 'survives.ts': DAG }, env: { REDIS_URL: redis.url } });
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('survives'))!);
    const key = { dag_id: 'survives', dag_run_id: run.dag_run_id, map_index: -1 };
    for (let i = 0; i < 200 && (await pf.store.getTi({ ...key, task_id: 'slow' }))?.state !== 'running'; i++) await new Promise((r) => setTimeout(r, 25));
    // Restart on the same port with the same append-only file, while 'slow' runs.
    const port = redis.port;
    await redis.stop();
    redis = await startPrivateRedis({ dir, port });
    const done = await pf.waitForRun('survives', run.dag_run_id, 60_000);
    expect(done.state).toBe('success');
    const slow = (await pf.store.getTi({ ...key, task_id: 'slow' }))!;
    const after = (await pf.store.getTi({ ...key, task_id: 'after' }))!;
    expect([slow.state, slow.try_number, after.state, after.try_number]).toEqual(['success', 1, 'success', 1]);
    expect(await pf.store.getXcom({ ...key, task_id: 'after' }, 'return_value')).toEqual({ upstream: 'done' });
    expect((await pf.store.readLog({ ...key, task_id: 'slow' }, 1)).filter((l) => l.endsWith('{stdout} done'))).toHaveLength(1);
  });
});
