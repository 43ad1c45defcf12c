/**
 * The plugin as loaded by a real Podflow (scheduler + BullMQ worker on the test Redis) in
 * cluster mode against the fake Kubernetes API: tries spent, free retries, fatal failures,
 * XComs from result files, and no pod left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { triggerDagRun } from '../../../src/scheduler/trigger.ts';
import { startTestPodflow, type TestPodflow } from '../../../test/support/podflow.ts';
import { uniquePrefix } from '../../../test/support/redis.ts';
import { startFakeKube, type FakeKube } from '../../../test/support/fake-kube/server.ts';
import { podName } from '../pod-names.ts';

const DAGS = `
import { dag } from 'podflow';
import { podTask } from '../../../plugins/kubernetes/authoring.ts';
const img = { image: 'python:3.12-slim', command: ['python', 'step.py'] };
export const ok = dag({ dag_id: 'k8s_ok', schedule: null }, (d) => {
  d.operator('train', podTask({ ...img, resources: { gpus: 1 }, capacity: 'spot', result_file: '/tmp/result.json' }));
});
export const evicted = dag({ dag_id: 'k8s_evicted', schedule: null }, (d) => {
  d.operator('train', podTask(img), { retries: 0 });
});
export const failing = dag({ dag_id: 'k8s_failing', schedule: null }, (d) => {
  d.operator('train', podTask(img), { retries: 1, retry_delay: '100ms' });
});
export const long = dag({ dag_id: 'k8s_long', schedule: null }, (d) => {
  d.operator('train', podTask(img), { retries: 0 });
});
export const badImage = dag({ dag_id: 'k8s_bad_image', schedule: null }, (d) => {
  d.operator('train', podTask({ ...img, image: 'python:nope' }), { retries: 3, retry_delay: '100ms' });
});
`;

describe('pod tasks through the scheduler and worker', () => {
  let kube: FakeKube;
  let pf: TestPodflow;
  let env: Record<string, string>;

  beforeAll(async () => {
    kube = await startFakeKube();
    const dir = mkdtempSync(join(tmpdir(), 'pf-kc-'));
    const kubeconfig = join(dir, 'config');
    writeFileSync(kubeconfig, kube.kubeConfig().exportConfig());
    kube.script({ labels: { 'podflow.io/dag-id': 'k8s_ok' } }, { kind: 'succeed', logs: ['epoch 1 loss 0.3'], resultFile: { loss: 0.3 } });
    kube.script({ labels: { 'podflow.io/dag-id': 'k8s_failing' } }, { kind: 'fail', exitCode: 2, logs: ['boom'] });
    kube.script({ labels: { 'podflow.io/dag-id': 'k8s_bad_image' } }, { kind: 'image_pull_error' });
    // 12 s of logging: the restart in the re-attach test must happen while the pod still runs,
    // and a fresh Podflow (DAG parse in a child process) takes seconds on a loaded machine.
    kube.script({ labels: { 'podflow.io/dag-id': 'k8s_long' } }, { kind: 'succeed', logs: Array.from({ length: 60 }, (_, i) => `step ${i + 1}`), lineIntervalMs: 200 });
    env = {
      KUBECONFIG: kubeconfig,
      PODFLOW_KUBE_MODE: 'cluster',
      PODFLOW_KUBE_NAMESPACE: 'default',
      PODFLOW_KUBE_CAPACITY_PROFILES: 'karpenter',
      PODFLOW_PREFIX: uniquePrefix('k8s'),
    };
    pf = await startTestPodflow({ files: { 'k8s.ts': DAGS }, env });
  });

  afterAll(async () => {
    await pf?.close();
    await kube?.stop();
  });

  async function run(dagId: string, runId: string) {
    const dag = (await pf.store.getDag(dagId))!;
    expect(dag, `DAG ${dagId} loaded`).toBeTruthy();
    await triggerDagRun(pf.store, dag, { dag_run_id: runId });
    const done = await pf.waitForRun(dagId, runId);
    const ti = (await pf.store.getTi({ dag_id: dagId, dag_run_id: runId, task_id: 'train', map_index: -1 }))!;
    return { done, ti };
  }

  it('a GPU spot pod succeeds in one try; its result file is the return_value XCom; its log is in the task log', async () => {
    const { done, ti } = await run('k8s_ok', 'r1');
    expect(done.state).toBe('success');
    expect([ti.state, ti.try_number, ti.max_tries]).toEqual(['success', 1, 1]);
    const key = { dag_id: 'k8s_ok', dag_run_id: 'r1', task_id: 'train', map_index: -1 };
    expect(await pf.store.getXcom(key, 'return_value')).toEqual({ loss: 0.3 });
    const log = await pf.store.readLog(key, 1);
    expect(log.filter((l) => l.endsWith('{stdout} epoch 1 loss 0.3'))).toHaveLength(1);
    expect(kube.pods('default').filter((p) => p.metadata?.labels?.['podflow.io/dag-id'] === 'k8s_ok')).toHaveLength(0);
  });

  it('a pod evicted before it started is re-created without spending a try', async () => {
    // Only the first try's pod is evicted; the next one succeeds.
    kube.script({ name: podName({ dagId: 'k8s_evicted', taskId: 'train', runId: 'r1', mapIndex: -1, tryNumber: 1 }) }, { kind: 'evict_before_start' });
    const { done, ti } = await run('k8s_evicted', 'r1');
    expect(done.state).toBe('success');
    // retries: 0, yet a second try ran: the eviction did not count.
    expect([ti.state, ti.try_number, ti.max_tries]).toEqual(['success', 2, 2]);
    expect(kube.pods('default').filter((p) => p.metadata?.labels?.['podflow.io/dag-id'] === 'k8s_evicted')).toHaveLength(0);
  });

  it('a failing pod spends its retries, then fails the run; no pod is left', async () => {
    const { done, ti } = await run('k8s_failing', 'r1');
    expect(done.state).toBe('failed');
    expect([ti.state, ti.try_number, ti.max_tries]).toEqual(['failed', 2, 2]);
    expect(ti.note).toContain('main container exited with code 2');
    expect(kube.pods('default').filter((p) => p.metadata?.labels?.['podflow.io/dag-id'] === 'k8s_failing')).toHaveLength(0);
  });

  it('an image pull error fails at once although retries remain', async () => {
    const { done, ti } = await run('k8s_bad_image', 'r1');
    expect(done.state).toBe('failed');
    expect([ti.state, ti.try_number]).toEqual(['failed', 1]);
    expect(ti.note).toMatch(/ErrImagePull|ImagePullBackOff/);
    expect(kube.pods('default').filter((p) => p.metadata?.labels?.['podflow.io/dag-id'] === 'k8s_bad_image')).toHaveLength(0);
  });

  it('a worker shut down gracefully leaves its pod running; the next worker re-attaches: one pod, one try, every log line once', async () => {
    const dag = (await pf.store.getDag('k8s_long'))!;
    await triggerDagRun(pf.store, dag, { dag_run_id: 'r1' });
    const name = podName({ dagId: 'k8s_long', taskId: 'train', runId: 'r1', mapIndex: -1, tryNumber: 1 });
    const key = { dag_id: 'k8s_long', dag_run_id: 'r1', task_id: 'train', map_index: -1 };
    for (let i = 0; ; i++) {
      const log = await pf.store.readLog(key, 1);
      if (log.some((l) => l.includes('{stdout} step 5'))) break;
      if (i > 400) throw new Error('the pod never logged step 5');
      await new Promise((r) => setTimeout(r, 25));
    }
    await pf.close();
    expect(kube.pods('default').filter((p) => p.metadata?.name === name).map((p) => [p.status?.phase, p.metadata?.deletionTimestamp])).toEqual([['Running', undefined]]);
    // A new process: same Redis and prefix, a fresh worker and plugin.
    pf = await startTestPodflow({ files: { 'k8s.ts': DAGS }, env });
    const done = await pf.waitForRun('k8s_long', 'r1');
    expect(done.state).toBe('success');
    const ti = (await pf.store.getTi(key))!;
    expect([ti.state, ti.try_number]).toEqual(['success', 1]);
    // Every pod the fake ever ran left events: exactly one pod existed for this task.
    const podsCreatedForLong = new Set(kube.events('default').filter((e) => e.involvedObject?.name?.startsWith('k8s-long-')).map((e) => e.involvedObject!.name));
    expect([...podsCreatedForLong]).toEqual([name]);
    const log = await pf.store.readLog(key, 1);
    expect(log.some((l) => l.includes(`re-attached to live pod default/${name}`))).toBe(true);
    const steps = log.filter((l) => /\{stdout\} step \d+$/.test(l)).map((l) => l.slice(l.indexOf('{stdout} ') + 9));
    expect(steps).toEqual(Array.from({ length: 60 }, (_, i) => `step ${i + 1}`));
  });
});
