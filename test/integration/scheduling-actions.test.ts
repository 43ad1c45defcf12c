import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram, type CliContext } from '../../src/cli/main.ts';
import type { TaskInstanceKey } from '../../src/dag/types.ts';
import { triggerDagRun } from '../../src/scheduler/trigger.ts';
import { OPERATOR_TOKEN, startTestPodflow, type TestPodflow } from '../support/podflow.ts';

const DAGS = `
import { dag } from 'podflow';
export const markMe = dag({ dag_id: 'mark_me', schedule: null }, (d) => {
  d.command('hold', ['sleep', '30']).then(d.task('after', () => 'after ran'));
});
export const clearable = dag({ dag_id: 'clearable', schedule: null }, (d) => {
  const a = d.task('a', (ctx) => 'a try ' + ctx.try_number);
  const b = d.task('b', (ctx) => 'b try ' + ctx.try_number);
  const c = d.task('c', (ctx) => 'c try ' + ctx.try_number);
  d.task('d', (ctx) => 'd try ' + ctx.try_number);
  a.then(b).then(c);
});
export const runTimeout = dag({ dag_id: 'run_timeout', schedule: null, dagrun_timeout: '1s' }, (d) => {
  d.command('hold', ['sleep', '30']).then(d.task('after', () => 'never'));
  d.task('quick', () => 'quick');
});
`;

describe('operator actions, run timeout and run uniqueness end to end', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({ files: { 'dags.ts': DAGS } });
  });
  afterAll(async () => pf?.close());

  async function cli(...args: string[]): Promise<string[]> {
    const out: string[] = [];
    const ctx: CliContext = { config: pf.config, store: async () => pf.store, out: (t) => out.push(t) };
    await buildProgram(ctx).exitOverride().parseAsync(['node', 'podflow', ...args]);
    return out;
  }
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${pf.api!.url}${path}`, { ...init, headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' } });
  const key = (dagId: string, runId: string, taskId: string): TaskInstanceKey => ({ dag_id: dagId, dag_run_id: runId, task_id: taskId, map_index: -1 });

  async function waitUntil(what: string, ok: () => Promise<boolean>, ms = 10_000) {
    const deadline = Date.now() + ms;
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  async function startHold(dagId: string) {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag(dagId))!);
    const k = key(dagId, run.dag_run_id, 'hold');
    await waitUntil('hold to run', async () => (await pf.store.getTi(k))?.state === 'running' && (await pf.store.readLog(k, 1)).some((l) => l.includes('starting try 1')));
    return { runId: run.dag_run_id, k };
  }
  const stoppedOnRequest = async (k: TaskInstanceKey) => {
    await waitUntil('the try to stop', async () => (await pf.store.readLog(k, 1)).some((l) => l.includes('try stopped on request')));
    return true;
  };

  it('marking a running task failed (API) stops its process; downstream becomes upstream_failed and the run fails', async () => {
    const { runId, k } = await startHold('mark_me');
    const res = await api(`/api/v1/dags/mark_me/dagRuns/${runId}/taskInstances/hold`, { method: 'PATCH', body: JSON.stringify({ new_state: 'failed' }) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { task_instances: { state: string }[] }).task_instances.map((t) => t.state)).toEqual(['failed']);
    const done = await pf.waitForRun('mark_me', runId, 10_000);
    expect(done.state).toBe('failed');
    const hold = (await pf.store.getTi(k))!;
    expect([hold.state, hold.try_number, hold.note]).toEqual(['failed', 1, 'marked failed by an operator']);
    expect((await pf.store.getTi(key('mark_me', runId, 'after')))!.state).toBe('upstream_failed');
    expect(await stoppedOnRequest(k)).toBe(true);
  });

  it('marking a running task success (CLI) stops it and lets the downstream run', async () => {
    const { runId, k } = await startHold('mark_me');
    expect(await cli('tasks', 'mark', 'mark_me', runId, 'hold', 'success')).toEqual(['1 task instance(s) marked success']);
    const done = await pf.waitForRun('mark_me', runId, 10_000);
    expect(done.state).toBe('success');
    const hold = (await pf.store.getTi(k))!;
    expect([hold.state, hold.try_number]).toEqual(['success', 1]);
    expect(await pf.store.getXcom(key('mark_me', runId, 'after'), 'return_value')).toBe('after ran');
    expect(await stoppedOnRequest(k)).toBe(true);
  });

  it('clearing a task with its downstream re-runs exactly those, with higher try numbers (CLI and API)', async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('clearable'))!);
    expect((await pf.waitForRun('clearable', run.dag_run_id)).state).toBe('success');
    expect(await cli('tasks', 'clear', 'clearable', run.dag_run_id, 'a', '--downstream')).toEqual(['cleared 3 task instance(s): a, b, c']);
    expect((await pf.waitForRun('clearable', run.dag_run_id)).state).toBe('success');
    const tries = async () => (await pf.store.listTis('clearable', run.dag_run_id)).map((t) => [t.task_id, t.state, t.try_number]);
    expect(await tries()).toEqual([
      ['a', 'success', 2],
      ['b', 'success', 2],
      ['c', 'success', 2],
      ['d', 'success', 1],
    ]);
    expect(await pf.store.getXcom(key('clearable', run.dag_run_id, 'c'), 'return_value')).toBe('c try 2');

    const res = await api('/api/v1/dags/clearable/clearTaskInstances', {
      method: 'POST',
      body: JSON.stringify({ dag_run_id: run.dag_run_id, task_ids: ['b'], include_downstream: true, only_failed: false, dry_run: false }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { task_instances: { task_id: string }[] }).task_instances.map((t) => t.task_id)).toEqual(['b', 'c']);
    await waitUntil('the cleared tasks to run again', async () => (await pf.store.getTi(key('clearable', run.dag_run_id, 'c')))!.try_number === 3);
    expect((await pf.waitForRun('clearable', run.dag_run_id)).state).toBe('success');
    expect(await tries()).toEqual([
      ['a', 'success', 2],
      ['b', 'success', 3],
      ['c', 'success', 3],
      ['d', 'success', 1],
    ]);
  });

  it('dagrun_timeout fails the run, stops its running task and skips what had not started', async () => {
    const run = await triggerDagRun(pf.store, (await pf.store.getDag('run_timeout'))!);
    const done = await pf.waitForRun('run_timeout', run.dag_run_id, 15_000);
    expect([done.state, done.note]).toEqual(['failed', 'dagrun_timeout of 1s exceeded']);
    const tis = (await pf.store.listTis('run_timeout', run.dag_run_id)).map((t) => [t.task_id, t.state, t.note]);
    expect(tis).toEqual([
      ['after', 'skipped', 'the run exceeded dagrun_timeout'],
      ['hold', 'failed', 'the run exceeded dagrun_timeout'],
      ['quick', 'success', null],
    ]);
    expect(await stoppedOnRequest(key('run_timeout', run.dag_run_id, 'hold'))).toBe(true);
  });

  it('a second trigger for the same logical date (or run id) is refused with HTTP 409 and a problem body', async () => {
    const post = (body: object) => api('/api/v1/dags/clearable/dagRuns', { method: 'POST', body: JSON.stringify(body) });
    const first = await post({ logical_date: '2026-05-01T00:00:00Z' });
    expect(first.status).toBe(200);
    expect(((await first.json()) as { dag_run_id: string }).dag_run_id).toBe('manual__2026-05-01T00:00:00.000Z');
    const again = await post({ logical_date: '2026-05-01T00:00:00Z', dag_run_id: 'another_id' });
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await again.json()).toEqual({
      status: 409,
      title: 'Conflict',
      detail: "DAG 'clearable' already has a run for logical date 2026-05-01T00:00:00.000Z ('manual__2026-05-01T00:00:00.000Z'); pick another logical date (CLI --logical-date, API field logical_date) or clear that run",
      type: '/api/v1/openapi.json#/components/responses/AlreadyExists',
    });
    const sameId = await post({ logical_date: '2026-05-02T00:00:00Z', dag_run_id: 'manual__2026-05-01T00:00:00.000Z' });
    expect(sameId.status).toBe(409);
    expect(((await sameId.json()) as { detail: string }).detail).toBe(
      "DAG 'clearable' already has a run with id 'manual__2026-05-01T00:00:00.000Z'; pick another run id (CLI --run-id, API field dag_run_id)",
    );
    expect((await pf.store.listRuns('clearable')).filter((r) => r.logical_date.startsWith('2026-05')).length).toBe(1);
  });
});
