/**
 * The pod operator against the fake Kubernetes API server (real HTTP, real client).
 * Each test uses its own task id, so pods and scripted behaviours never collide.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { V1Pod } from '@kubernetes/client-node';
import { startFakeKube, type FakeKube } from '../../../test/support/fake-kube/server.ts';
import type { Json } from '../../../src/dag/types.ts';
import { createPodOperator } from '../index.ts';
import type { PodOperator, PodOperatorOptions } from '../pod-executor.ts';
import { Redis } from 'ioredis';
import { redisUrl, uniquePrefix } from '../../../test/support/redis.ts';
import { loadCapacityProfiles } from '../capacity-profiles.ts';
import { podName } from '../pod-names.ts';
import { podRequest, silent, until, validatePodSchema } from './helpers.ts';

let kube: FakeKube;
let op: PodOperator;
const NS = 'default';
const RUN = 'manual__2026-12-03T18:00:00+00:00';

function newOperator(extra: Partial<PodOperatorOptions> = {}): PodOperator {
  return createPodOperator({
    mode: 'cluster',
    kubeConfig: kube.kubeConfig(),
    namespace: NS,
    profiles: loadCapacityProfiles('karpenter'),
    ...extra,
    logger: silent,
    retry: { baseDelayMs: 20, maxDelayMs: 2000 },
    reconnectDelayMs: 20,
    metricsRegistry: new Registry(),
  });
}

const lines = (n: number, tag = 'line') => Array.from({ length: n }, (_, i) => `${tag} ${i + 1}`);
const byTask = (taskId: string) => ({ labels: { 'podflow.io/task-id': taskId } });
const podsOf = (taskId: string): V1Pod[] => kube.pods(NS).filter((p) => p.metadata?.labels?.['podflow.io/task-id'] === taskId);

function args(extra: Record<string, Json> = {}): Record<string, Json> {
  return { image: 'python:3.12-slim', command: ['python', '-c', 'print(1)'], ...extra };
}

beforeAll(async () => {
  kube = await startFakeKube();
  op = newOperator();
});

afterEach(() => kube.clearFaults());

afterAll(async () => {
  op?.close();
  await kube?.stop();
});

describe('pod operator outcomes', () => {
  it('a result file with a top-level "metrics" object records those metrics on the task', async () => {
    kube.script(byTask('with_metrics'), { kind: 'succeed', logs: ['done'], resultFile: { accuracy: 0.96, metrics: { accuracy: 0.96, validation_accuracy: 0.95 } } });
    const t = podRequest({ taskId: 'with_metrics', args: args({ result_file: '/tmp/result.json' }) });
    const out = await op.execute(t.req);
    expect(out.state).toBe('success');
    expect(out.return_value).toEqual({ accuracy: 0.96, metrics: { accuracy: 0.96, validation_accuracy: 0.95 } });
    expect(t.metrics).toEqual({ accuracy: 0.96, validation_accuracy: 0.95 });
  });

  it('succeed: success with every log line once, the result file as return value, no pod left', async () => {
    kube.script(byTask('ok'), { kind: 'succeed', logs: lines(20), resultFile: { accuracy: 0.97 } });
    const t = podRequest({ taskId: 'ok', args: args({ result_file: '/tmp/result.json' }) });
    const out = await op.execute(t.req);
    expect(out.state).toBe('success');
    expect(out.exit_code).toBe(0);
    expect(out.return_value).toEqual({ accuracy: 0.97 });
    expect(out.free_retry).toBeUndefined();
    expect(t.log.lines).toEqual(lines(20));
    expect(podsOf('ok')).toHaveLength(0);
    expect(out.facts).toMatchObject({ node_name: 'cpu-node-1', image: 'python:3.12-slim', image_digest: expect.stringMatching(/@sha256:[0-9a-f]{64}$/) });
  });

  it('happy path costs create, log follow, log tail check and delete: 4 requests per pod (plus the shared watch)', async () => {
    kube.script(byTask('count'), { kind: 'succeed', logs: lines(3) });
    const t = podRequest({ taskId: 'count', args: args() });
    const out = await op.execute(t.req);
    expect(out.state).toBe('success');
    const name = podName({ dagId: 'gpu_finetune', taskId: 'count', runId: RUN, mapIndex: -1, tryNumber: 1 });
    expect(op.podRequests.get(name)).toEqual({ create: 1, log: 2, delete: 1 });
    expect(out.facts!.kube_api_requests).toBe(4);
    expect(t.log.messages.some((m) => m.msg.includes('after 4 Kubernetes API requests (create 1, log 2, delete 1)'))).toBe(true);
  });

  it('fail: failed with the exit code, a retry is spent, no pod left', async () => {
    kube.script(byTask('fails'), { kind: 'fail', exitCode: 3, logs: ['Traceback', 'ValueError: bad lr'] });
    const t = podRequest({ taskId: 'fails', args: args() });
    const out = await op.execute(t.req);
    expect(out).toMatchObject({ state: 'failed', exit_code: 3 });
    expect(out.fatal).toBeUndefined();
    expect(out.free_retry).toBeUndefined();
    expect(out.error).toContain('main container exited with code 3');
    expect(out.error).toContain('pod events:');
    expect(t.log.lines).toEqual(['Traceback', 'ValueError: bad lr']);
    expect(podsOf('fails')).toHaveLength(0);
  });

  it('skip_on_exit_code: an exit code listed is skipped', async () => {
    kube.script(byTask('skips'), { kind: 'fail', exitCode: 99 });
    const out = await op.execute(podRequest({ taskId: 'skips', args: args({ skip_on_exit_code: [99] }) }).req);
    expect(out).toMatchObject({ state: 'skipped', exit_code: 99 });
    expect(podsOf('skips')).toHaveLength(0);
  });

  it('never_schedule: fails fatally after schedule_timeout with the scheduler message', async () => {
    kube.script(byTask('nogpu'), { kind: 'never_schedule' });
    const out = await op.execute(podRequest({ taskId: 'nogpu', args: args({ resources: { gpus: 8 }, schedule_timeout_seconds: 0.3 }) }).req);
    expect(out).toMatchObject({ state: 'failed', fatal: true });
    expect(out.error).toContain('could not be scheduled within schedule_timeout_seconds (0.3s): 0/3 nodes are available');
    expect(out.error).toMatch(/Warning FailedScheduling/);
    expect(podsOf('nogpu')).toHaveLength(0);
  });

  it('image_pull_error: fails fast and fatally, naming the image', async () => {
    kube.script(byTask('badimage'), { kind: 'image_pull_error' });
    const out = await op.execute(podRequest({ taskId: 'badimage', args: args({ image: 'python:does-not-exist' }) }).req);
    expect(out).toMatchObject({ state: 'failed', fatal: true });
    expect(out.error).toMatch(/main container cannot start: (ErrImagePull|ImagePullBackOff).*'python:does-not-exist'/);
    expect(out.free_retry).toBeUndefined();
    expect(podsOf('badimage')).toHaveLength(0);
  });

  it('oom: failed OOMKilled with exit 137, retry spent', async () => {
    kube.script(byTask('oom'), { kind: 'oom', logs: lines(3) });
    const out = await op.execute(podRequest({ taskId: 'oom', args: args({ resources: { memory: '512Mi' } }) }).req);
    expect(out).toMatchObject({ state: 'failed', exit_code: 137 });
    expect(out.error).toContain('OOMKilled');
    expect(out.error).toContain('memory limit 512Mi');
    expect(out.fatal).toBeUndefined();
    expect(out.free_retry).toBeUndefined();
    expect(podsOf('oom')).toHaveLength(0);
  });

  it('deadline: failed DeadlineExceeded', async () => {
    kube.script(byTask('deadline'), { kind: 'deadline' });
    const out = await op.execute(podRequest({ taskId: 'deadline', args: args({ active_deadline_seconds: 1 }) }).req);
    expect(out).toMatchObject({ state: 'failed', facts: expect.objectContaining({ reason: 'DeadlineExceeded' }) });
    expect(out.error).toContain('active_deadline_seconds (1s)');
    expect(podsOf('deadline')).toHaveLength(0);
  });

  it('evict_before_start: retried without spending a try, no pod left', async () => {
    kube.script(byTask('evicted'), { kind: 'evict_before_start' });
    const out = await op.execute(podRequest({ taskId: 'evicted', args: args() }).req);
    expect(out).toMatchObject({ state: 'failed', free_retry: true });
    expect(out.fatal).toBeUndefined();
    expect(out.error).toContain('evicted');
    expect(out.error).toContain('The node was low on resource: memory');
    expect(podsOf('evicted')).toHaveLength(0);
  });

  it('preempt_after_start (spot node shutdown): retried, spending a try, log kept', async () => {
    kube.script(byTask('reclaimed'), { kind: 'preempt_after_start', logs: lines(3), via: 'node_shutdown' });
    const t = podRequest({ taskId: 'reclaimed', args: args() });
    const out = await op.execute(t.req);
    expect(out).toMatchObject({ state: 'failed', exit_code: 143 });
    expect(out.free_retry).toBeUndefined();
    expect(out.fatal).toBeUndefined();
    expect(out.error).toContain('imminent node shutdown');
    expect(t.log.lines).toEqual(lines(3));
    expect(podsOf('reclaimed')).toHaveLength(0);
  });

  it('preempt_after_start by the scheduler: retried, spending a try', async () => {
    kube.script(byTask('preempted'), { kind: 'preempt_after_start', logs: lines(2), via: 'scheduler' });
    const out = await op.execute(podRequest({ taskId: 'preempted', args: args() }).req);
    expect(out.state).toBe('failed');
    expect(out.free_retry).toBeUndefined();
    expect(out.error).toMatch(/preempted/i);
    await until(() => podsOf('preempted').length === 0, 'preempted pod removed');
  });

  it('sidecar: a finished main container ends the task while the sidecar runs; the pod is deleted', async () => {
    kube.script(byTask('sidecar'), { kind: 'sidecar', mainExitCode: 0, logs: lines(4) });
    const template = { spec: { containers: [{ name: 'base', image: 'x' }, { name: 'proxy', image: 'envoyproxy/envoy:v1.30' }] } };
    const t = podRequest({ taskId: 'sidecar', args: args({ pod_template: template }) });
    const out = await op.execute(t.req);
    expect(out.state).toBe('success');
    expect(t.log.lines).toEqual(lines(4));
    await until(() => podsOf('sidecar').length === 0, 'sidecar pod removed');
  });

  it('node deleted while running: retried, spending a try', async () => {
    kube.script(byTask('nodelost'), { kind: 'hang' });
    const t = podRequest({ taskId: 'nodelost', args: args() });
    const running = op.execute(t.req);
    const node = await until(() => podsOf('nodelost').find((p) => p.status?.phase === 'Running')?.spec?.nodeName, 'pod running');
    kube.deleteNode(node);
    const out = await running;
    expect(out.state).toBe('failed');
    expect(out.free_retry).toBeUndefined();
    expect(out.error).toContain('DeletionByPodGC');
    await until(() => podsOf('nodelost').length === 0, 'pod gone');
  });

  it('invalid args: failed fatally naming DAG, task and field; no pod created', async () => {
    const before = kube.requests.filter((r) => r.method === 'POST').length;
    const out = await op.execute(podRequest({ taskId: 'invalid', args: { image: 'x', resources: { gpus: -1 } } }).req);
    expect(out).toMatchObject({ state: 'failed', fatal: true });
    expect(out.error).toMatch(/^dags\/gpu_finetune\.ts: DAG 'gpu_finetune', task 'invalid': operator_args\.resources\.gpus: /);
    expect(kube.requests.filter((r) => r.method === 'POST').length).toBe(before);
  });

  it('argv is templated from params and conf element-wise', async () => {
    kube.script(byTask('templated'), { kind: 'succeed' });
    const t = podRequest({
      taskId: 'templated',
      params: { epochs: 1 },
      conf: { epochs: 5 },
      args: args({ cleanup: 'keep_all', command: ['python', 'train.py'], args: ['--epochs', '{{ params.epochs }}', '--run={{ run_id }}', '--day', '{{ ds }}', '{{ conf.epochs }}'] }),
    });
    expect((await op.execute(t.req)).state).toBe('success');
    const [pod] = podsOf('templated');
    expect(pod!.spec!.containers[0]!.args).toEqual(['--epochs', '5', `--run=${RUN}`, '--day', '2026-12-03', '5']);
  });
});

describe('GPU on spot capacity', () => {
  for (const provider of ['gke', 'eks', 'aks', 'karpenter']) {
    it(`with the ${provider} profile a GPU spot pod lands on the spot GPU node; facts carry node and GPU model`, async () => {
      const taskId = `gpu-${provider}`;
      kube.script(byTask(taskId), { kind: 'succeed' });
      const w = newOperator({ profiles: loadCapacityProfiles(provider) });
      try {
        const out = await w.execute(podRequest({ taskId, args: args({ resources: { gpus: 2 }, capacity: 'spot' }) }).req);
        expect(out).toMatchObject({ state: 'success', facts: { node_name: 'gpu-spot-node-1', gpu_model: 'NVIDIA-A10G' } });
      } finally {
        w.close();
      }
    });
  }

  it('a GPU task on spot lands on the spot GPU node with exactly the profile limits, selectors and tolerations', async () => {
    kube.script(byTask('finetune'), { kind: 'succeed', logs: ['epoch 1 loss 0.5'] });
    const t = podRequest({ taskId: 'finetune', args: args({ resources: { cpu: 1, memory: '2Gi', gpus: 1 }, capacity: 'spot', cleanup: 'keep_all', volumes: [{ name: 'data', pvc: { claim_name: 'datasets' }, mount_path: '/data', read_only: true }] }) });
    const out = await op.execute(t.req);
    expect(out.state).toBe('success');
    expect(out.facts).toMatchObject({ node_name: 'gpu-spot-node-1' });
    const [pod] = podsOf('finetune');
    validatePodSchema(pod);
    expect(pod!.spec!.nodeSelector).toEqual({ 'karpenter.sh/capacity-type': 'spot' });
    expect(pod!.spec!.containers[0]!.resources!.limits).toEqual({ memory: '2Gi', 'nvidia.com/gpu': '1' });
    expect(pod!.spec!.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
    expect(pod!.spec!.nodeName).toBe('gpu-spot-node-1');
  });
});

describe('cleanup policy', () => {
  it('keep_failed keeps a failed pod and deletes a successful one', async () => {
    kube.script(byTask('keepfail'), { kind: 'fail', exitCode: 1 });
    kube.script(byTask('keepok'), { kind: 'succeed' });
    await op.execute(podRequest({ taskId: 'keepfail', args: args({ cleanup: 'keep_failed' }) }).req);
    await op.execute(podRequest({ taskId: 'keepok', args: args({ cleanup: 'keep_failed' }) }).req);
    expect(podsOf('keepfail')).toHaveLength(1);
    expect(podsOf('keepok')).toHaveLength(0);
  });

  it('keep_all keeps a successful pod', async () => {
    kube.script(byTask('keepall'), { kind: 'succeed' });
    await op.execute(podRequest({ taskId: 'keepall', args: args({ cleanup: 'keep_all' }) }).req);
    expect(podsOf('keepall').map((p) => p.status?.phase)).toEqual(['Succeeded']);
  });
});

describe('stopping a try', () => {
  it('execution_timeout deletes the pod', async () => {
    kube.script(byTask('timeout'), { kind: 'hang' });
    const t = podRequest({ taskId: 'timeout', args: args() });
    const p = op.execute(t.req);
    await until(() => podsOf('timeout').some((x) => x.status?.phase === 'Running'), 'pod running');
    t.abort({ kind: 'timeout', message: 'execution_timeout of 1s exceeded' });
    const out = await p;
    expect(out.state).toBe('failed');
    expect(out.error).toContain('execution_timeout reached');
    expect(out.error).toContain('the pod was deleted');
    await until(() => podsOf('timeout').length === 0, 'pod deleted');
  });

  it('mark failed / cancel deletes the pod', async () => {
    kube.script(byTask('killed'), { kind: 'hang' });
    const t = podRequest({ taskId: 'killed', args: args() });
    const p = op.execute(t.req);
    await until(() => podsOf('killed').length === 1, 'pod created');
    t.abort({ kind: 'killed', message: 'marked failed by alice' });
    const out = await p;
    expect(out.state).toBe('failed');
    expect(out.error).toContain('marked failed by alice');
    await until(() => podsOf('killed').length === 0, 'pod deleted');
  });
});

describe('worker restart', () => {
  it('graceful shutdown leaves the pod running; a new worker re-attaches and creates no second pod', async () => {
    kube.script(byTask('reattach'), { kind: 'succeed', logs: lines(40), lineIntervalMs: 10 });
    const first = podRequest({ taskId: 'reattach', args: args() });
    const running = op.execute(first.req);
    await until(() => first.log.lines.length >= 3, 'first lines');
    first.abort({ kind: 'shutdown', message: 'SIGTERM' });
    const left = await running;
    expect(left).toMatchObject({ state: 'failed', free_retry: true });
    expect(podsOf('reattach')).toHaveLength(1);
    expect(podsOf('reattach')[0]!.metadata!.deletionTimestamp).toBeUndefined();

    const postsBefore = kube.requests.filter((r) => r.method === 'POST').length;
    const worker2 = newOperator();
    try {
      const second = podRequest({ taskId: 'reattach', args: args() });
      const out = await worker2.execute(second.req);
      expect(out.state).toBe('success');
      expect(kube.requests.filter((r) => r.method === 'POST').length).toBe(postsBefore);
      expect(second.log.messages.some((m) => m.msg.startsWith('re-attached to live pod'))).toBe(true);
      // The new worker streams the whole log of the pod it adopted.
      expect(second.log.lines).toEqual(lines(40));
      expect(podsOf('reattach')).toHaveLength(0);
    } finally {
      worker2.close();
    }
  });

  it('two workers racing on the same try create one pod: the loser gets 409 AlreadyExists and adopts it', async () => {
    kube.script(byTask('race'), { kind: 'succeed', logs: lines(5), runMs: 200 });
    const worker2 = newOperator();
    try {
      await Promise.all([op.watcher(NS), worker2.watcher(NS)]);
      // Hold both creates so neither worker can see the other's pod before it posts its own.
      kube.slow('POST', new RegExp(`^/api/v1/namespaces/${NS}/pods$`), 100, 2);
      const a = podRequest({ taskId: 'race', args: args() });
      const b = podRequest({ taskId: 'race', args: args() });
      const [oa, ob] = await Promise.all([op.execute(a.req), worker2.execute(b.req)]);
      expect([oa.state, ob.state]).toEqual(['success', 'success']);
      const posts = kube.requests.filter((r) => r.method === 'POST' && r.path === `/api/v1/namespaces/${NS}/pods`);
      expect(posts.slice(-2).map((r) => r.status).sort()).toEqual([201, 409]);
      expect([a, b].filter((x) => x.log.messages.some((m) => m.msg.startsWith('re-attached to live pod')))).toHaveLength(1);
      expect(a.log.lines).toEqual(lines(5));
      expect(b.log.lines).toEqual(lines(5));
      await until(() => podsOf('race').length === 0, 'pod removed');
    } finally {
      worker2.close();
    }
  });

  it('with Redis, the re-attached worker resumes the log where the first stopped: every line exactly once', async () => {
    const redis = new Redis(redisUrl());
    const prefix = uniquePrefix('kube');
    kube.script(byTask('resume'), { kind: 'succeed', logs: lines(40), lineIntervalMs: 10 });
    const worker1 = newOperator({ redis, redisPrefix: prefix });
    const worker2 = newOperator({ redis, redisPrefix: prefix });
    try {
      const first = podRequest({ taskId: 'resume', args: args() });
      const running = worker1.execute(first.req);
      await until(() => first.log.lines.length >= 5, 'first lines');
      first.abort({ kind: 'shutdown', message: 'SIGTERM' });
      expect(await running).toMatchObject({ free_retry: true });
      const name = podName({ dagId: 'gpu_finetune', taskId: 'resume', runId: RUN, mapIndex: -1, tryNumber: 1 });
      expect(await redis.exists(`${prefix}kube:log-cursor:${NS}/${name}`)).toBe(1);
      const second = podRequest({ taskId: 'resume', args: args() });
      expect((await worker2.execute(second.req)).state).toBe('success');
      expect(second.log.lines.length).toBeGreaterThan(0);
      expect([...first.log.lines, ...second.log.lines]).toEqual(lines(40));
      // The cursor is forgotten once the pod is done.
      expect(await redis.exists(`${prefix}kube:log-cursor:${NS}/${name}`)).toBe(0);
    } finally {
      worker1.close();
      worker2.close();
      redis.disconnect();
    }
  });

  it('a retry after eviction never adopts the evicted pod: it creates the next attempt', async () => {
    const id = { dagId: 'gpu_finetune', taskId: 'evict2', runId: RUN, mapIndex: -1, tryNumber: 1 };
    kube.script({ name: podName(id) }, { kind: 'evict_before_start' });
    kube.script(byTask('evict2'), { kind: 'succeed', logs: ['ok'] });
    const a = await op.execute(podRequest({ taskId: 'evict2', args: args({ cleanup: 'keep_failed' }) }).req);
    expect(a).toMatchObject({ state: 'failed', free_retry: true });
    expect(podsOf('evict2').map((p) => p.metadata!.name)).toEqual([podName(id)]);
    // The scheduler re-queues the same try (free retry): a fresh worker must not adopt the evicted pod.
    const worker2 = newOperator();
    try {
      const b = await worker2.execute(podRequest({ taskId: 'evict2', args: args({ cleanup: 'keep_failed' }) }).req);
      expect(b.state).toBe('success');
      expect(b.facts).toMatchObject({ attempt: 1, pod_name: podName({ ...id, attempt: 1 }) });
      expect(podsOf('evict2').map((p) => p.metadata!.name)).toEqual([podName(id)]);
    } finally {
      worker2.close();
    }
  });

  it('a finished pod of the try is never adopted', async () => {
    const id = { dagId: 'gpu_finetune', taskId: 'finished', runId: RUN, mapIndex: -1, tryNumber: 1 };
    kube.script(byTask('finished'), { kind: 'succeed', logs: ['done'] });
    await op.execute(podRequest({ taskId: 'finished', args: args({ cleanup: 'keep_all' }) }).req);
    const worker2 = newOperator();
    try {
      const out = await worker2.execute(podRequest({ taskId: 'finished', args: args({ cleanup: 'keep_all' }) }).req);
      expect(out.facts).toMatchObject({ pod_name: podName({ ...id, attempt: 1 }) });
      expect(podsOf('finished').map((p) => p.metadata!.name).sort()).toEqual([podName(id), podName({ ...id, attempt: 1 })].sort());
    } finally {
      worker2.close();
    }
  });
});

describe('faults on the way', () => {
  it('log stream cut three times (clean end): every line exactly once', async () => {
    kube.script(byTask('logcut'), { kind: 'succeed', logs: lines(60), lineIntervalMs: 3 });
    kube.cutLogStreams(10, { streams: 3, mode: 'end' });
    const t = podRequest({ taskId: 'logcut', args: args() });
    const out = await op.execute(t.req);
    expect(out.state).toBe('success');
    expect(t.log.lines).toEqual(lines(60));
  });

  it('log stream connection destroyed twice: every line exactly once', async () => {
    kube.script(byTask('logabort'), { kind: 'succeed', logs: lines(50), lineIntervalMs: 3 });
    kube.cutLogStreams(7, { streams: 2, mode: 'abort' });
    const t = podRequest({ taskId: 'logabort', args: args() });
    const out = await op.execute(t.req);
    expect(out.state).toBe('success');
    expect(t.log.lines).toEqual(lines(50));
  });

  it('identical lines at a cut are neither lost nor repeated', async () => {
    const same = [...Array(10).fill('tick'), 'end'];
    kube.script(byTask('samelines'), { kind: 'succeed', logs: same, lineIntervalMs: 2 });
    kube.cutLogStreams(4, { streams: 2, mode: 'end' });
    const t = podRequest({ taskId: 'samelines', args: args() });
    expect((await op.execute(t.req)).state).toBe('success');
    expect(t.log.lines).toEqual(same);
  });

  it('watch cut and resourceVersion expired (410) mid-run: the pod is still followed to success', async () => {
    kube.script(byTask('watchcut'), { kind: 'succeed', logs: lines(30), lineIntervalMs: 25 });
    const t = podRequest({ taskId: 'watchcut', args: args() });
    const watcher = await op.watcher(NS);
    const before = { ...watcher.stats };
    const p = op.execute(t.req);
    await until(() => t.log.lines.length >= 3, 'lines');
    kube.cutWatches('abort');
    await until(() => t.log.lines.length >= 10, 'more lines');
    kube.expireResourceVersions();
    kube.cutWatches('end');
    // The re-watch from an expired version gets 410 and relists while the pod still runs.
    await until(() => watcher.stats.relistsOn410 > before.relistsOn410, 'relist after 410');
    expect(podsOf('watchcut').map((x) => x.status?.phase)).toEqual(['Running']);
    const out = await p;
    expect(out.state).toBe('success');
    expect(t.log.lines).toEqual(lines(30));
    expect(podsOf('watchcut')).toHaveLength(0);
    expect(watcher.stats.relistsOn410 - before.relistsOn410).toBe(1);
    expect(watcher.stats.watches - before.watches).toBe(3);
  });

  it('a watch that hangs while connecting is abandoned by the idle watchdog and reopened', async () => {
    kube.script(byTask('hungwatch'), { kind: 'succeed', logs: lines(3) });
    // Held far longer than the idle timeout: without the watchdog the try would wait for it.
    kube.slow('GET', /watch=true/, 30_000, 1);
    const w = newOperator({ watchIdleTimeoutMs: 300 });
    try {
      const out = await w.execute(podRequest({ taskId: 'hungwatch', args: args() }).req);
      expect(out.state).toBe('success');
      expect((await w.watcher(NS)).stats.idleRestarts).toBe(1);
    } finally {
      w.close();
    }
  });

  it('a create that times out is retried and never makes a second pod', async () => {
    kube.script(byTask('slowcreate'), { kind: 'succeed', logs: lines(2) });
    kube.slow('POST', new RegExp(`^/api/v1/namespaces/${NS}/pods$`), 1500, 1);
    const w = newOperator({ retry: { baseDelayMs: 20, requestTimeoutMs: 300 } });
    try {
      const before = kube.requests.filter((r) => r.method === 'POST' && r.status === 201).length;
      const t = podRequest({ taskId: 'slowcreate', args: args() });
      const out = await w.execute(t.req);
      expect(out.state).toBe('success');
      expect(t.log.lines).toEqual(lines(2));
      // Let the held request be answered (409: the retry created the pod first).
      await until(() => kube.requests.some((r) => r.method === 'POST' && r.status === 409), 'held create answered');
      expect(kube.requests.filter((r) => r.method === 'POST' && r.status === 201).length - before).toBe(1);
    } finally {
      w.close();
    }
  });

  it('create answered 500 then 429 (Retry-After) is retried: one pod, success', async () => {
    kube.script(byTask('apifault'), { kind: 'succeed' });
    const name = podName({ dagId: 'gpu_finetune', taskId: 'apifault', runId: RUN, mapIndex: -1, tryNumber: 1 });
    kube.failNext('POST', new RegExp(`^/api/v1/namespaces/${NS}/pods$`), [500, 429], { retryAfterSeconds: 1 });
    const out = await op.execute(podRequest({ taskId: 'apifault', args: args() }).req);
    expect(out.state).toBe('success');
    expect(op.podRequests.get(name)!.create).toBe(3);
  });

  it('a 409 Conflict (not AlreadyExists) on delete is retried', async () => {
    kube.script(byTask('conflict'), { kind: 'succeed' });
    const name = podName({ dagId: 'gpu_finetune', taskId: 'conflict', runId: RUN, mapIndex: -1, tryNumber: 1 });
    kube.failNext('DELETE', new RegExp(`/pods/${name}$`), [409, 503]);
    const out = await op.execute(podRequest({ taskId: 'conflict', args: args() }).req);
    expect(out.state).toBe('success');
    expect(op.podRequests.get(name)!.delete).toBe(3);
    expect(podsOf('conflict')).toHaveLength(0);
  });

  it('slow API answers do not change the outcome', async () => {
    kube.script(byTask('slowapi'), { kind: 'succeed', logs: lines(3) });
    kube.slow('*', /\/pods/, 150, 3);
    const t = podRequest({ taskId: 'slowapi', args: args() });
    const out = await op.execute(t.req);
    expect(out.state).toBe('success');
    expect(t.log.lines).toEqual(lines(3));
  });
});

describe('one shared watch', () => {
  it('ten concurrent pods are followed by one watch connection, not ten', async () => {
    for (let i = 0; i < 10; i++) kube.script(byTask(`many${i}`), { kind: 'succeed', logs: lines(3), runMs: 200 });
    const before = kube.requests.filter((r) => r.path.includes('watch=true')).length;
    const outs = await Promise.all(Array.from({ length: 10 }, (_, i) => op.execute(podRequest({ taskId: `many${i}`, args: args() }).req)));
    expect(outs.map((o) => o.state)).toEqual(Array(10).fill('success'));
    expect(kube.requests.filter((r) => r.path.includes('watch=true')).length).toBe(before);
    expect(kube.openWatches()).toBe(1);
    const perPod = Array.from({ length: 10 }, (_, i) => op.podRequests.get(podName({ dagId: 'gpu_finetune', taskId: `many${i}`, runId: RUN, mapIndex: -1, tryNumber: 1 })));
    expect(perPod).toEqual(Array(10).fill({ create: 1, log: 2, delete: 1 }));
  });
});

