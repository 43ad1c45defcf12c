import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { retryDelayMs } from '../../src/scheduler/retry-delay.ts';
import { Redis } from 'ioredis';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';
import { redisUrl } from '../support/redis.ts';

const RETRIES = `
import { dag } from 'podflow';
export const backoff = dag({ dag_id: 'backoff', schedule: null }, (d) => {
  d.task('flaky', (ctx) => { throw new Error('fails on try ' + ctx.try_number); },
    { retries: 3, retry_delay: '100ms', retry_exponential_backoff: true, max_retry_delay: '500ms' });
});
export const fixed = dag({ dag_id: 'fixed', schedule: null }, (d) => {
  d.task('flaky', (ctx) => { if (ctx.try_number < 3) throw new Error('fails on try ' + ctx.try_number); return ctx.try_number; },
    { retries: 2, retry_delay: '150ms' });
});
`;

const TIMEOUTS = `
import { dag } from 'podflow';
import { appendFileSync } from 'node:fs';
export const cmd = dag({ dag_id: 'timeout_cmd', schedule: null }, (d) => {
  d.command('sleeper', ['sleep', '30'], { execution_timeout: '500ms', retries: 1, retry_delay: '50ms' });
});
export const inline = dag({ dag_id: 'timeout_inline', schedule: null }, (d) => {
  d.task('inline', async (ctx) => {
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    appendFileSync(new URL('./signal.log', import.meta.url), 'aborted: ' + ctx.signal.reason.kind + '\\n');
  }, { execution_timeout: '300ms', isolation: 'inline' }); // in the worker's event loop: told through ctx.signal
});
`;

interface Finished {
  dag_id: string;
  try_number: number;
  state: string;
}

interface Retrying {
  dag_id: string;
  try_number: number;
  end_date: string;
  next_attempt_at: number;
}

describe('retries and execution_timeout end to end', () => {
  let pf: TestPodflow;
  const finished: Finished[] = [];
  const retrying: Retrying[] = [];
  let sub: Redis;
  beforeAll(async () => {
    pf = await startTestPodflow({
      files: { 'retries.ts': RETRIES, 'timeouts.ts': TIMEOUTS },
      hooks: {
        tryHooks: {
          tryFinished: (info) => {
            finished.push({ dag_id: info.ti.dag_id, try_number: info.ti.try_number, state: info.final_state });
          },
        },
      },
    });
    // The up_for_retry transition is published from inside the state change; reading the task
    // instance then sees what that try recorded (the next try waits at least the retry delay).
    sub = new Redis(redisUrl());
    sub.on('message', (_c, m: string) => {
      const [kind, dag_id, dag_run_id, task_id, mi, to] = m.split('|');
      if (kind !== 'ti' || to !== 'up_for_retry') return;
      void pf.store.getTi({ dag_id, dag_run_id, task_id, map_index: Number(mi) }).then((ti) => {
        retrying.push({ dag_id, try_number: ti!.try_number, end_date: ti!.end_date!, next_attempt_at: ti!.next_attempt_at! });
      });
    });
    await sub.subscribe(pf.store.keys.events());
  });
  afterAll(async () => {
    sub?.disconnect();
    await pf?.close();
  });

  async function runToEnd(dagId: string) {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag(dagId))!);
    const done = await pf.waitForRun(dagId, run.dag_run_id, 20_000);
    return { done, runId: run.dag_run_id };
  }

  it('exponential backoff: each recorded retry gap lies within the computed bounds, capped by max_retry_delay', async () => {
    const { done, runId } = await runToEnd('backoff');
    expect(done.state).toBe('failed');
    const ti = (await pf.store.getTi({ dag_id: 'backoff', dag_run_id: runId, task_id: 'flaky', map_index: -1 }))!;
    expect([ti.state, ti.try_number, ti.max_tries, ti.note]).toEqual(['failed', 4, 4, 'fails on try 4']);
    const tries = finished.filter((f) => f.dag_id === 'backoff');
    expect(tries.map((f) => [f.try_number, f.state])).toEqual([
      [1, 'up_for_retry'],
      [2, 'up_for_retry'],
      [3, 'up_for_retry'],
      [4, 'failed'],
    ]);
    const spec = (await pf.store.getDag('backoff'))!.tasks[0];
    const recorded = retrying.filter((r) => r.dag_id === 'backoff');
    expect(recorded.map((r) => r.try_number)).toEqual([1, 2, 3]);
    const gaps = recorded.map((r) => r.next_attempt_at - Date.parse(r.end_date));
    const bounds = [1, 2, 3].map((n) => [retryDelayMs(spec, n, () => 0), retryDelayMs(spec, n, () => 0.999999)]);
    expect(bounds).toEqual([
      [100, 199],
      [200, 399],
      [400, 500],
    ]);
    gaps.forEach((g, i) => {
      expect(g).toBeGreaterThanOrEqual(bounds[i][0]);
      expect(g).toBeLessThanOrEqual(bounds[i][1]);
    });
    // Each try started no earlier than the recorded next_attempt_at of the one before.
    for (let t = 1; t <= 3; t++) {
      const log = await pf.store.readLog({ dag_id: 'backoff', dag_run_id: runId, task_id: 'flaky', map_index: -1 }, t + 1);
      expect(log.some((l) => l.includes(`starting try ${t + 1} of 4`))).toBe(true);
    }
    expect(Date.parse(ti.start_date!)).toBeGreaterThanOrEqual(recorded[2].next_attempt_at);
  });

  it('a fixed retry_delay records exactly that gap and the third try succeeds', async () => {
    const { done, runId } = await runToEnd('fixed');
    expect(done.state).toBe('success');
    const tries = finished.filter((f) => f.dag_id === 'fixed');
    expect(tries.map((f) => [f.try_number, f.state])).toEqual([
      [1, 'up_for_retry'],
      [2, 'up_for_retry'],
      [3, 'success'],
    ]);
    expect(retrying.filter((r) => r.dag_id === 'fixed').map((r) => [r.try_number, r.next_attempt_at - Date.parse(r.end_date)])).toEqual([
      [1, 150],
      [2, 150],
    ]);
    expect(await pf.store.getXcom({ dag_id: 'fixed', dag_run_id: runId, task_id: 'flaky', map_index: -1 }, 'return_value')).toBe(3);
  });

  it('execution_timeout kills a `sleep 30` command; each killed try counts as a failed try and is retried', async () => {
    const { done, runId } = await runToEnd('timeout_cmd');
    expect(done.state).toBe('failed');
    const key = { dag_id: 'timeout_cmd', dag_run_id: runId, task_id: 'sleeper', map_index: -1 };
    const ti = (await pf.store.getTi(key))!;
    expect([ti.state, ti.try_number, ti.note]).toEqual(['failed', 2, 'execution_timeout of 0.5s exceeded; the process was killed']);
    expect(finished.filter((f) => f.dag_id === 'timeout_cmd').map((f) => [f.try_number, f.state])).toEqual([
      [1, 'up_for_retry'],
      [2, 'failed'],
    ]);
    for (const t of [1, 2]) {
      expect((await pf.store.readLog(key, t)).filter((l) => l.includes('execution_timeout of 0.5s exceeded; the process was killed'))).toHaveLength(1);
    }
  });

  it('execution_timeout tells an inline function through ctx.signal and fails the try', async () => {
    const { done, runId } = await runToEnd('timeout_inline');
    expect(done.state).toBe('failed');
    const ti = (await pf.store.getTi({ dag_id: 'timeout_inline', dag_run_id: runId, task_id: 'inline', map_index: -1 }))!;
    expect([ti.state, ti.try_number]).toEqual(['failed', 1]);
    expect(ti.note).toMatch(/^execution_timeout of 0\.3s exceeded; the inline function of task 'inline' was asked to stop through ctx\.signal \(check it in long loops/);
    const file = join(pf.folder.dir, 'signal.log');
    for (let i = 0; i < 40 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(file, 'utf8')).toBe('aborted: timeout\n');
  });
});
