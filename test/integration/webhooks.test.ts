import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signGithub, signPodflow } from '../../src/api/webhook-signature.ts';
import { startTestPodflow, type TestPodflow } from '../support/podflow.ts';

const SECRET = 'global-webhook-secret-0123456789';
const DAG_SECRET = 'per-dag-webhook-secret-987654321';

const DAGS = `
import { dag } from 'podflow';
export const deploy = dag({ dag_id: 'deploy', schedule: null }, (d) => {
  d.task('echo', async (ctx) => ctx.conf);
});
export const own = dag({ dag_id: 'own_secret', schedule: null, extra: { webhook_secret_env: 'OWN_HOOK_SECRET' } }, (d) => {
  d.task('echo', async (ctx) => ctx.conf);
});
export const unset = dag({ dag_id: 'unset_secret', schedule: null, extra: { webhook_secret_env: 'NOT_SET_ANYWHERE' } }, (d) => {
  d.task('echo', async (ctx) => ctx.conf);
});
`;

describe('POST /hooks/:dag_id', () => {
  let pf: TestPodflow;
  beforeAll(async () => {
    pf = await startTestPodflow({
      files: { 'hooks.ts': DAGS },
      env: { PODFLOW_WEBHOOK_SECRET: SECRET, OWN_HOOK_SECRET: DAG_SECRET, PODFLOW_WEBHOOK_MAX_BYTES: '2048', PODFLOW_DAG_IMPORT_TIMEOUT_MS: '30000' },
    });
  });
  afterAll(async () => pf?.close());

  const post = (dagId: string, body: string, headers: Record<string, string>) =>
    fetch(`${pf.api!.url}/hooks/${dagId}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const runCount = (dagId: string) => pf.store.countRuns(dagId);

  it('accepts a Podflow-signed delivery and starts a webhook run with the body as conf', async () => {
    const body = JSON.stringify({ ref: 'main', sha: 'abc123' });
    const res = await post('deploy', body, { 'x-podflow-signature': signPodflow(body, SECRET), 'x-podflow-delivery': 'd-accepted' });
    expect(res.status).toBe(200);
    const out = (await res.json()) as { dag_run_id: string; run_type: string; conf: unknown; duplicate: boolean; delivery_id: string };
    expect([out.run_type, out.conf, out.duplicate, out.delivery_id]).toEqual(['webhook', { ref: 'main', sha: 'abc123' }, false, 'd-accepted']);
    const done = await pf.waitForRun('deploy', out.dag_run_id, 30_000);
    expect(done.state).toBe('success');
    expect(await pf.store.getXcom({ dag_id: 'deploy', dag_run_id: out.dag_run_id, task_id: 'echo', map_index: -1 }, 'return_value')).toEqual({ ref: 'main', sha: 'abc123' });
  });

  it("accepts GitHub's X-Hub-Signature-256 with the DAG's own secret from extra.webhook_secret_env", async () => {
    const body = JSON.stringify({ action: 'push' });
    const res = await post('own_secret', body, { 'x-hub-signature-256': signGithub(body, DAG_SECRET), 'x-github-delivery': 'gh-1' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { run_type: string }).run_type).toBe('webhook');
    // GitHub's ping (sent when the webhook is created) is verified and answered, starting nothing.
    const ping = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
    const pong = await post('own_secret', ping, { 'x-hub-signature-256': signGithub(ping, DAG_SECRET), 'x-github-delivery': 'gh-ping', 'x-github-event': 'ping' });
    expect([pong.status, ((await pong.json()) as { pong: boolean }).pong]).toEqual([200, true]);
    // The global secret does not open a DAG that has its own.
    const wrong = await post('own_secret', body, { 'x-hub-signature-256': signGithub(body, SECRET), 'x-github-delivery': 'gh-2' });
    expect(wrong.status).toBe(401);
    expect(await runCount('own_secret')).toBe(1);
  });

  it('refuses a wrong key, a tampered body, a stale timestamp and a missing header, starting nothing', async () => {
    const before = await runCount('deploy');
    const body = JSON.stringify({ ref: 'main' });
    const cases: [string, string, Record<string, string>, number, RegExp][] = [
      ['wrong key', body, { 'x-podflow-signature': signPodflow(body, 'some-other-secret-value') }, 401, /does not match the body/],
      ['tampered body', JSON.stringify({ ref: 'evil' }), { 'x-podflow-signature': signPodflow(body, SECRET) }, 401, /does not match the body/],
      ['stale timestamp', body, { 'x-podflow-signature': signPodflow(body, SECRET, Math.floor(Date.now() / 1000) - 3600) }, 401, /outside the 300s replay window/],
      ['missing header', body, {}, 401, /The delivery is not signed/],
      ['malformed header', body, { 'x-podflow-signature': 'v1=zz' }, 400, /X-Podflow-Signature is malformed/],
    ];
    for (const [name, sent, headers, status, detail] of cases) {
      const res = await post('deploy', sent, headers);
      const problem = (await res.json()) as { status: number; title: string; detail: string };
      expect([name, res.status, problem.status]).toEqual([name, status, status]);
      expect(problem.detail).toMatch(detail);
    }
    expect(await runCount('deploy')).toBe(before);
  });

  it('a resent delivery id returns the same run and starts nothing new', async () => {
    const before = await runCount('deploy');
    const body = JSON.stringify({ n: 1 });
    const headers = () => ({ 'x-podflow-signature': signPodflow(body, SECRET), 'x-podflow-delivery': 'delivery-42' });
    const first = (await (await post('deploy', body, headers())).json()) as { dag_run_id: string; duplicate: boolean };
    const resends = await Promise.all([1, 2, 3].map(() => post('deploy', body, headers())));
    const again = (await Promise.all(resends.map((r) => r.json()))) as { dag_run_id: string; duplicate: boolean }[];
    expect(resends.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(again.map((a) => [a.dag_run_id, a.duplicate])).toEqual([1, 2, 3].map(() => [first.dag_run_id, true]));
    expect(first.duplicate).toBe(false);
    expect(await runCount('deploy')).toBe(before + 1);
  });

  it('answers 403 when the secret env var a DAG names is unset, 404 for an unknown DAG, 400 for a non-object body, 413 over the size limit', async () => {
    const body = JSON.stringify({});
    const unset = await post('unset_secret', body, { 'x-podflow-signature': signPodflow(body, SECRET) });
    expect(unset.status).toBe(403);
    expect(((await unset.json()) as { detail: string }).detail).toMatch(/NOT_SET_ANYWHERE, which is not set/);
    const unknown = await post('nope', body, { 'x-podflow-signature': signPodflow(body, SECRET) });
    expect(unknown.status).toBe(404);
    const list = '[1,2]';
    const notObject = await post('deploy', list, { 'x-podflow-signature': signPodflow(list, SECRET) });
    expect(notObject.status).toBe(400);
    const big = JSON.stringify({ blob: 'x'.repeat(4096) });
    const tooBig = await post('deploy', big, { 'x-podflow-signature': signPodflow(big, SECRET) });
    expect(tooBig.status).toBe(413);
    expect(await runCount('unset_secret')).toBe(0);
  });
});
