import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiException, CoreV1Api, Log, Watch, makeInformer, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { Event, Pod } from 'kubernetes-models/v1';
import { defaultNodes, makeNode, startFakeKube, type FakeKube, type PodBehaviour } from './server.ts';

const NS = 'default';
let kube: FakeKube;
let kc: KubeConfig;
let api: CoreV1Api;

beforeEach(async () => {
  kube = await startFakeKube();
  kc = kube.kubeConfig();
  api = kc.makeApiClient(CoreV1Api);
});

afterEach(async () => {
  await kube.stop();
});

function podBody(name: string, extra: { labels?: Record<string, string>; containers?: string[]; spec?: Partial<NonNullable<V1Pod['spec']>> } = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: 'podflow-test', ...extra.labels } },
    spec: {
      restartPolicy: 'Never',
      containers: (extra.containers ?? ['main']).map((c) => ({ name: c, image: 'python:3.12', command: ['python', '-c', 'print(1)'] })),
      ...extra.spec,
    },
  };
}

/** Raw wire JSON of a GET, as the API server sent it (the client would turn timestamps into Dates). */
async function getJson(path: string): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(kube.url + path);
  return { status: res.status, body: await res.json(), headers: res.headers };
}

function expectValidPod(obj: unknown): void {
  expect(() => new Pod(obj as ConstructorParameters<typeof Pod>[0]).validate()).not.toThrow();
}

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const podNamed = (name: string): V1Pod | undefined => kube.pods(NS).find((p) => p.metadata?.name === name);
const terminalPod = (name: string) => () => {
  const p = podNamed(name);
  return p && (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') ? p : undefined;
};

interface WatchEvent {
  type: string;
  object: any;
}

/** Watches with the real client until `stop` says so (or the server ends the stream). */
function watchUntil(path: string, query: Record<string, string | number | boolean | undefined>, stop: (e: WatchEvent) => boolean): Promise<{ events: WatchEvent[]; err: unknown }> {
  const events: WatchEvent[] = [];
  return new Promise((resolve) => {
    let finished = false;
    const controller = new Watch(kc).watch(
      path,
      query,
      (type, object) => {
        if (finished) return;
        events.push({ type, object });
        if (stop({ type, object })) {
          finished = true;
          void controller.then((c) => c.abort());
          resolve({ events, err: null });
        }
      },
      (err) => {
        if (finished) return;
        finished = true;
        resolve({ events, err });
      },
    );
  });
}

function distinct<T>(values: T[]): T[] {
  return values.filter((v, i) => i === 0 || v !== values[i - 1]);
}

describe('fake-kube pods API', () => {
  it('a created pod runs to Succeeded and a watch sees Pending, Running, Succeeded with valid pod objects', async () => {
    const created = await api.createNamespacedPod({ namespace: NS, body: podBody('train-1') });
    expect(created.status?.phase).toBe('Pending');
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.spec?.containers[0].terminationMessagePath).toBe('/dev/termination-log');

    const { events } = await watchUntil(`/api/v1/namespaces/${NS}/pods`, { resourceVersion: created.metadata?.resourceVersion }, (e) => e.object.status?.phase === 'Succeeded');
    for (const e of events) expectValidPod(e.object);
    expect(distinct(events.map((e) => e.object.status.phase))).toEqual(['Pending', 'Running', 'Succeeded']);
    const done = events.at(-1)!.object;
    expect(done.spec.nodeName).toBe('cpu-node-1');
    expect(done.status.hostIP).toBe('10.0.1.11');
    expect(done.status.conditions.find((c: any) => c.type === 'PodScheduled').status).toBe('True');
    const main = done.status.containerStatuses[0];
    expect(main.imageID).toMatch(/^docker\.io\/library\/python@sha256:[0-9a-f]{64}$/);
    expect(main.state.terminated.exitCode).toBe(0);
    expect(main.state.terminated.reason).toBe('Completed');
    expect(typeof main.state.terminated.startedAt).toBe('string');

    const read = await api.readNamespacedPod({ namespace: NS, name: 'train-1' });
    expect(read.status?.phase).toBe('Succeeded');
    expectValidPod((await getJson(`/api/v1/namespaces/${NS}/pods/train-1`)).body);
  });

  it('creating a pod with a taken name answers 409 AlreadyExists with a Status body', async () => {
    await api.createNamespacedPod({ namespace: NS, body: podBody('dup') });
    const err = await api.createNamespacedPod({ namespace: NS, body: podBody('dup') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    const apiErr = err as ApiException<unknown>;
    expect(apiErr.code).toBe(409);
    expect(JSON.parse(apiErr.body as string)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "dup" already exists',
      reason: 'AlreadyExists',
      details: { name: 'dup', kind: 'pods' },
      code: 409,
    });
  });

  it('a pod without containers is rejected with 422 Invalid naming spec.containers', async () => {
    const body = podBody('empty');
    body.spec!.containers = [];
    const err = (await api.createNamespacedPod({ namespace: NS, body }).catch((e: unknown) => e)) as ApiException<string>;
    expect(err.code).toBe(422);
    const status = JSON.parse(err.body);
    expect(status.reason).toBe('Invalid');
    expect(status.message).toBe('Pod "empty" is invalid: spec.containers: Required value');
    expect(status.details.causes).toEqual([{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.containers' }]);
  });

  it('a label value with a colon is rejected with 422 as the real API server does', async () => {
    const err = (await api
      .createNamespacedPod({ namespace: NS, body: podBody('bad-label', { labels: { run: 'manual__2026-01-01T00:00:00' } }) })
      .catch((e: unknown) => e)) as ApiException<string>;
    expect(err.code).toBe(422);
    expect(JSON.parse(err.body).details.causes[0].field).toBe('metadata.labels');
  });

  it('generateName produces a name of the prefix and five characters', async () => {
    const body = podBody('');
    body.metadata = { generateName: 'task-' };
    const created = await api.createNamespacedPod({ namespace: NS, body });
    expect(created.metadata?.name).toMatch(/^task-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  });

  it('failNext 429 reaches the client with Retry-After, then the request succeeds', async () => {
    kube.failNext('POST', /\/pods$/, [429], { retryAfterSeconds: 3 });
    const err = (await api.createNamespacedPod({ namespace: NS, body: podBody('limited') }).catch((e: unknown) => e)) as ApiException<string>;
    expect(err.code).toBe(429);
    expect(err.headers['retry-after']).toBe('3');
    expect(JSON.parse(err.body)).toMatchObject({ kind: 'Status', reason: 'TooManyRequests', code: 429, details: { retryAfterSeconds: 3 } });
    const created = await api.createNamespacedPod({ namespace: NS, body: podBody('limited') });
    expect(created.metadata?.name).toBe('limited');
    expect(kube.requests.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([429, 201]);
  });

  it('failNext answers 500 and 503 in order with Status bodies', async () => {
    kube.failNext('GET', /\/pods\/x$/, [500, 503]);
    const first = (await api.readNamespacedPod({ namespace: NS, name: 'x' }).catch((e: unknown) => e)) as ApiException<string>;
    const second = (await api.readNamespacedPod({ namespace: NS, name: 'x' }).catch((e: unknown) => e)) as ApiException<string>;
    const third = (await api.readNamespacedPod({ namespace: NS, name: 'x' }).catch((e: unknown) => e)) as ApiException<string>;
    expect([first.code, second.code, third.code]).toEqual([500, 503, 404]);
    expect(JSON.parse(first.body).reason).toBe('InternalError');
    expect(JSON.parse(second.body).reason).toBe('ServiceUnavailable');
    expect(JSON.parse(third.body).message).toBe('pods "x" not found');
  });

  it('slow holds the matching request while others are served', async () => {
    await api.createNamespacedPod({ namespace: NS, body: podBody('slow-pod') });
    kube.slow('GET', /\/pods\/slow-pod$/, 1000, 1);
    const order: string[] = [];
    const slowRead = api.readNamespacedPod({ namespace: NS, name: 'slow-pod' }).then(() => order.push('slow'));
    await new Promise((r) => setTimeout(r, 20));
    await api.listNamespacedPod({ namespace: NS }).then(() => order.push('list'));
    await slowRead;
    expect(order).toEqual(['list', 'slow']);
  });

  it('list filters by labelSelector and fieldSelector and pages with limit and continue', async () => {
    kube.script({ name: /^sel-/ }, { kind: 'hang' });
    await api.createNamespacedPod({ namespace: NS, body: podBody('sel-a', { labels: { tier: 'gpu' } }) });
    await api.createNamespacedPod({ namespace: NS, body: podBody('sel-b', { labels: { tier: 'cpu' } }) });
    await api.createNamespacedPod({ namespace: NS, body: podBody('sel-c') });
    const names = (list: { items: V1Pod[] }): string[] => list.items.map((p) => p.metadata!.name!);
    expect(names(await api.listNamespacedPod({ namespace: NS, labelSelector: 'tier=gpu' }))).toEqual(['sel-a']);
    expect(names(await api.listNamespacedPod({ namespace: NS, labelSelector: 'tier!=gpu' }))).toEqual(['sel-b', 'sel-c']);
    expect(names(await api.listNamespacedPod({ namespace: NS, labelSelector: 'tier in (gpu,cpu)' }))).toEqual(['sel-a', 'sel-b']);
    expect(names(await api.listNamespacedPod({ namespace: NS, labelSelector: 'tier' }))).toEqual(['sel-a', 'sel-b']);
    expect(names(await api.listNamespacedPod({ namespace: NS, fieldSelector: 'metadata.name=sel-c' }))).toEqual(['sel-c']);
    const page1 = await api.listNamespacedPod({ namespace: NS, limit: 2 });
    expect(names(page1)).toEqual(['sel-a', 'sel-b']);
    expect(page1.metadata?.remainingItemCount).toBe(1);
    const page2 = await api.listNamespacedPod({ namespace: NS, limit: 2, _continue: page1.metadata?._continue });
    expect(names(page2)).toEqual(['sel-c']);
    expect(page2.metadata?._continue).toBeUndefined();
    const all = await api.listPodForAllNamespaces({});
    expect(names(all)).toEqual(['sel-a', 'sel-b', 'sel-c']);
    for (const p of (await getJson(`/api/v1/namespaces/${NS}/pods`)).body.items) expectValidPod(p);
  });

  it('a watch from a compacted resourceVersion gets an ERROR event with a 410 Expired Status', async () => {
    const created = await api.createNamespacedPod({ namespace: NS, body: podBody('old-rv') });
    await until('pod to finish', terminalPod('old-rv'));
    kube.expireResourceVersions();
    const { events, err } = await watchUntil(`/api/v1/namespaces/${NS}/pods`, { resourceVersion: created.metadata?.resourceVersion }, () => false);
    expect(err).toBeNull();
    expect(events).toHaveLength(1);
    expect(events[0].type).toBe('ERROR');
    expect(events[0].object).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Expired', code: 410 });
  });

  it('an informer re-lists after a 410 and keeps seeing pods', async () => {
    const informer = makeInformer(kc, `/api/v1/namespaces/${NS}/pods`, () => api.listNamespacedPod({ namespace: NS }));
    const seen: string[] = [];
    informer.on('add', (p) => seen.push(`add ${p.metadata?.name}`));
    informer.on('update', (p) => p.status?.phase === 'Succeeded' && seen.push(`done ${p.metadata?.name}`));
    await informer.start();
    await api.createNamespacedPod({ namespace: NS, body: podBody('inf-1') });
    await until('informer to see inf-1 succeed', () => seen.includes('done inf-1'));
    kube.expireResourceVersions();
    kube.cutWatches('end');
    await api.createNamespacedPod({ namespace: NS, body: podBody('inf-2') });
    await until('informer to see inf-2 succeed', () => seen.includes('done inf-2'));
    await informer.stop();
    expect(seen).toEqual(['add inf-1', 'done inf-1', 'add inf-2', 'done inf-2']);
    expect(kube.requests.some((r) => r.path.includes('watch=true') && r.status === 200)).toBe(true);
  });

  it('cutWatches aborts open watches and the client sees an error', async () => {
    const pending = watchUntil(`/api/v1/namespaces/${NS}/pods`, {}, () => false);
    await until('the watch to open', () => kube.openWatches() === 1);
    kube.cutWatches();
    const { err } = await pending;
    expect(err).toBeInstanceOf(Error);
    expect(kube.openWatches()).toBe(0);
  });

  it('allowWatchBookmarks sends BOOKMARK events carrying a resourceVersion', async () => {
    const { events } = await watchUntil(`/api/v1/namespaces/${NS}/pods`, { allowWatchBookmarks: true, resourceVersion: '1' }, (e) => e.type === 'BOOKMARK');
    const bookmark = events.at(-1)!;
    expect(bookmark.object.kind).toBe('Pod');
    expect(Number(bookmark.object.metadata.resourceVersion)).toBeGreaterThan(0);
  });

  it('a watch with timeoutSeconds ends cleanly', async () => {
    const { err } = await watchUntil(`/api/v1/namespaces/${NS}/pods`, { timeoutSeconds: 1 }, () => false);
    expect(err).toBeNull();
  });

  it('deleting a running pod sets deletionTimestamp, stops it with exit 143 and removes it', async () => {
    kube.script({ name: 'del-me' }, { kind: 'hang' });
    const created = await api.createNamespacedPod({ namespace: NS, body: podBody('del-me') });
    await until('pod to run', () => podNamed('del-me')?.status?.phase === 'Running');
    const watching = watchUntil(`/api/v1/namespaces/${NS}/pods`, { resourceVersion: kube.pods(NS)[0].metadata?.resourceVersion }, (e) => e.type === 'DELETED');
    const deleted = await api.deleteNamespacedPod({ namespace: NS, name: 'del-me', body: { preconditions: { uid: created.metadata?.uid } } });
    expect(deleted.metadata?.deletionTimestamp).toBeInstanceOf(Date);
    const { events } = await watching;
    expect(events.map((e) => e.type)).toEqual(['MODIFIED', 'MODIFIED', 'DELETED']);
    const last = events.at(-1)!.object;
    expect(last.status.phase).toBe('Failed');
    expect(last.status.containerStatuses[0].state.terminated.exitCode).toBe(143);
    const gone = (await api.readNamespacedPod({ namespace: NS, name: 'del-me' }).catch((e: unknown) => e)) as ApiException<string>;
    expect(gone.code).toBe(404);
    expect(kube.events(NS).filter((e) => e.reason === 'Killing').map((e) => e.message)).toEqual(['Stopping container main']);
    for (const e of events) expectValidPod(e.object);
  });

  it('delete with a stale uid precondition answers 409 Conflict', async () => {
    await api.createNamespacedPod({ namespace: NS, body: podBody('precond') });
    const err = (await api
      .deleteNamespacedPod({ namespace: NS, name: 'precond', body: { preconditions: { uid: '00000000-0000-0000-0000-000000000000' } } })
      .catch((e: unknown) => e)) as ApiException<string>;
    expect(err.code).toBe(409);
    expect(JSON.parse(err.body).reason).toBe('Conflict');
  });

  it('events are served for a pod by involvedObject.name, in the order a kubelet emits them', async () => {
    await api.createNamespacedPod({ namespace: NS, body: podBody('ev-pod') });
    await api.createNamespacedPod({ namespace: NS, body: podBody('other-pod') });
    await until('ev-pod to finish', terminalPod('ev-pod'));
    const list = await api.listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=ev-pod' });
    expect(list.items.map((e) => e.reason)).toEqual(['Scheduled', 'Pulling', 'Pulled', 'Created', 'Started']);
    expect(list.items[0].message).toBe('Successfully assigned default/ev-pod to cpu-node-1');
    expect(list.items[3].involvedObject.fieldPath).toBe('spec.containers{main}');
    for (const e of (await getJson(`/api/v1/namespaces/${NS}/events`)).body.items) {
      expect(() => new Event(e).validate()).not.toThrow();
    }
  });

  it('nodes include a spot GPU node with nvidia.com/gpu capacity', async () => {
    const nodes = await api.listNode({});
    const gpu = nodes.items.find((n) => n.status?.capacity?.['nvidia.com/gpu']);
    expect(nodes.items).toHaveLength(3);
    expect(gpu?.metadata?.labels?.['karpenter.sh/capacity-type']).toBe('spot');
    expect(gpu?.status?.capacity?.['nvidia.com/gpu']).toBe('4');
  });

  it('a GPU pod is placed on the GPU node and one asking for too many GPUs is unschedulable', async () => {
    const gpuPod = (name: string, gpus: string): V1Pod => {
      const body = podBody(name);
      body.spec!.containers[0].resources = { limits: { 'nvidia.com/gpu': gpus } };
      return body;
    };
    await api.createNamespacedPod({ namespace: NS, body: gpuPod('gpu-ok', '1') });
    await api.createNamespacedPod({ namespace: NS, body: gpuPod('gpu-greedy', '8') });
    const ok = await until('gpu-ok to finish', terminalPod('gpu-ok'));
    expect(ok.spec?.nodeName).toBe('gpu-spot-node-1');
    const greedy = await until('gpu-greedy to be unschedulable', () =>
      podNamed('gpu-greedy')?.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable'),
    );
    expect(greedy.message).toBe('0/3 nodes are available: 3 Insufficient nvidia.com/gpu.');
  });

  it('deleteNode fails the pods on it with DisruptionTarget DeletionByPodGC and deletes them', async () => {
    kube.script({ name: 'on-node' }, { kind: 'hang' });
    await api.createNamespacedPod({ namespace: NS, body: podBody('on-node') });
    await until('pod to run', () => podNamed('on-node')?.status?.phase === 'Running');
    const watching = watchUntil(`/api/v1/namespaces/${NS}/pods`, { resourceVersion: podNamed('on-node')?.metadata?.resourceVersion }, (e) => e.type === 'DELETED');
    kube.deleteNode('cpu-node-1');
    const { events } = await watching;
    expect(events.map((e) => e.type)).toEqual(['MODIFIED', 'DELETED']);
    expect(events[0].object.status.phase).toBe('Failed');
    expect(events[0].object.status.conditions.find((c: any) => c.type === 'DisruptionTarget')).toMatchObject({ status: 'True', reason: 'DeletionByPodGC' });
  });
});

describe('fake-kube pod logs', () => {
  const lines = Array.from({ length: 20 }, (_, i) => `epoch ${i + 1} loss=${(1 / (i + 1)).toFixed(3)}`);

  /** Follows a container's log with the client's Log class; resolves with the text when the stream ends. */
  async function follow(name: string, options: { timestamps?: boolean; sinceTime?: string } = {}): Promise<string> {
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const ended = new Promise<void>((resolve) => out.on('end', resolve));
    await new Log(kc).log(NS, name, 'main', out, { follow: true, ...options });
    await ended;
    return text;
  }

  it('follow streams every line in order and ends when the container terminates', async () => {
    kube.script({ name: 'logger' }, { kind: 'succeed', logs: lines, lineIntervalMs: 3 });
    await api.createNamespacedPod({ namespace: NS, body: podBody('logger') });
    await until('container to run', () => podNamed('logger')?.status?.phase === 'Running');
    const text = await follow('logger');
    expect(text).toBe(lines.map((l) => `${l}\n`).join(''));
  });

  it('timestamps prefix each line with a fixed-width RFC 3339 nanosecond stamp', async () => {
    kube.script({ name: 'stamped' }, { kind: 'succeed', logs: ['a', 'b'] });
    await api.createNamespacedPod({ namespace: NS, body: podBody('stamped') });
    await until('pod to finish', terminalPod('stamped'));
    const text = await follow('stamped', { timestamps: true });
    const got = text.trimEnd().split('\n');
    expect(got.map((l) => l.replace(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z /, 'TS '))).toEqual(['TS a', 'TS b']);
  });

  it('sinceTime resumes from a line inclusively, as the real API does', async () => {
    kube.script({ name: 'resume' }, { kind: 'succeed', logs: lines });
    await api.createNamespacedPod({ namespace: NS, body: podBody('resume') });
    await until('pod to finish', terminalPod('resume'));
    const all = (await follow('resume', { timestamps: true })).trimEnd().split('\n');
    const [stamp] = all[9].split(' ', 1);
    const rest = (await follow('resume', { timestamps: true, sinceTime: stamp })).trimEnd().split('\n');
    expect(rest).toEqual(all.slice(9));
    const plain = await api.readNamespacedPodLog({ namespace: NS, name: 'resume', tailLines: 2 });
    expect(plain).toBe(`${lines[18]}\n${lines[19]}\n`);
  });

  it('cutLogStreams ends an open follow stream after N lines and sinceTime picks up the rest', async () => {
    kube.script({ name: 'cut' }, { kind: 'succeed', logs: lines, lineIntervalMs: 20 });
    await api.createNamespacedPod({ namespace: NS, body: podBody('cut') });
    await until('container to run', () => podNamed('cut')?.status?.phase === 'Running');
    const first = follow('cut', { timestamps: true });
    await until('the follow to open', () => kube.requests.some((r) => r.path.includes('/log?') && r.status === 200));
    kube.cutLogStreams(3);
    const part = (await first).trimEnd().split('\n');
    expect(podNamed('cut')?.status?.phase).toBe('Running');
    const lastStamp = part.at(-1)!.split(' ', 1)[0];
    const restText = await follow('cut', { timestamps: true, sinceTime: lastStamp });
    const rest = restText.trimEnd().split('\n');
    expect(rest[0]).toBe(part.at(-1));
    const joined = [...part, ...rest.slice(1)].map((l) => l.slice(l.indexOf(' ') + 1));
    expect(joined).toEqual(lines);
  });

  it('asking for the log of a container still creating answers 400', async () => {
    kube.script({ name: 'pulling' }, { kind: 'image_pull_error' });
    await api.createNamespacedPod({ namespace: NS, body: podBody('pulling') });
    await until('container to be waiting', () => podNamed('pulling')?.status?.containerStatuses?.[0]?.state?.waiting);
    const res = await getJson(`/api/v1/namespaces/${NS}/pods/pulling/log?container=main`);
    expect(res.status).toBe(400);
    expect(res.body.reason).toBe('BadRequest');
  });
});

describe('fake-kube behaviours', () => {
  type Expect = {
    phase: string;
    main?: Record<string, unknown>;
    reason?: string;
    condition?: { type: string; reason: string };
    events?: string[];
  };
  const cases: Array<[string, PodBehaviour, Expect, string[]?]> = [
    ['succeed with a result file', { kind: 'succeed', resultFile: { accuracy: 0.97 } }, { phase: 'Succeeded', main: { exitCode: 0, reason: 'Completed', message: '{"accuracy":0.97}' } }],
    ['fail', { kind: 'fail', exitCode: 3, logs: ['Traceback'] }, { phase: 'Failed', main: { exitCode: 3, reason: 'Error' } }],
    ['oom', { kind: 'oom', logs: ['allocating'] }, { phase: 'Failed', main: { exitCode: 137, reason: 'OOMKilled' } }],
    [
      'evict_before_start',
      { kind: 'evict_before_start' },
      { phase: 'Failed', reason: 'Evicted', condition: { type: 'DisruptionTarget', reason: 'TerminationByKubelet' }, main: { exitCode: 137, reason: 'ContainerStatusUnknown' }, events: ['Evicted'] },
    ],
    [
      'preempt_after_start (spot reclaim)',
      { kind: 'preempt_after_start', logs: ['step 1'] },
      { phase: 'Failed', reason: 'Terminated', condition: { type: 'DisruptionTarget', reason: 'TerminationByKubelet' }, main: { exitCode: 143, reason: 'Error' }, events: ['Killing'] },
    ],
    [
      'deadline',
      { kind: 'deadline' },
      { phase: 'Failed', reason: 'DeadlineExceeded', main: { exitCode: 137, reason: 'Error' }, events: ['DeadlineExceeded', 'Killing'] },
    ],
  ];

  it.each(cases)('%s reaches its terminal status', async (_title, behaviour, want) => {
    kube.script({ labels: { case: 'x' } }, behaviour);
    await api.createNamespacedPod({ namespace: NS, body: podBody('case-pod', { labels: { case: 'x' } }) });
    const pod = await until('pod to finish', terminalPod('case-pod'));
    expect(pod.status?.phase).toBe(want.phase);
    if (want.reason) expect(pod.status?.reason).toBe(want.reason);
    if (want.main) expect(pod.status?.containerStatuses?.[0].state?.terminated).toMatchObject(want.main);
    if (want.condition) {
      expect(pod.status?.conditions?.find((c) => c.type === want.condition!.type)).toMatchObject({ status: 'True', reason: want.condition.reason });
    }
    const reasons = kube.events(NS).map((e) => e.reason);
    for (const r of want.events ?? []) expect(reasons).toContain(r);
    expectValidPod((await getJson(`/api/v1/namespaces/${NS}/pods/case-pod`)).body);
  });

  it('never_schedule leaves the pod Pending with Unschedulable and a FailedScheduling event', async () => {
    kube.script({ name: 'nosched' }, { kind: 'never_schedule' });
    await api.createNamespacedPod({ namespace: NS, body: podBody('nosched') });
    const cond = await until('PodScheduled=False', () => podNamed('nosched')?.status?.conditions?.find((c) => c.type === 'PodScheduled'));
    expect(cond).toMatchObject({ status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.' });
    expect(podNamed('nosched')?.status?.phase).toBe('Pending');
    const ev = kube.events(NS).find((e) => e.reason === 'FailedScheduling');
    expect(ev?.type).toBe('Warning');
    expect(ev?.message).toBe('0/3 nodes are available: 3 Insufficient nvidia.com/gpu.');
  });

  it('image_pull_error goes ErrImagePull then ImagePullBackOff with Failed events', async () => {
    kube.script({ name: 'badimg' }, { kind: 'image_pull_error' });
    await api.createNamespacedPod({ namespace: NS, body: podBody('badimg') });
    const { events } = await watchUntil(`/api/v1/namespaces/${NS}/pods`, {}, (e) => e.object.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff');
    const reasons = distinct(events.map((e) => e.object.status?.containerStatuses?.[0]?.state?.waiting?.reason).filter(Boolean));
    expect(reasons).toEqual(['ContainerCreating', 'ErrImagePull', 'ImagePullBackOff']);
    expect(podNamed('badimg')?.status?.phase).toBe('Pending');
    expect(kube.events(NS).filter((e) => e.reason === 'Failed').map((e) => e.message?.startsWith('Error: ') ? e.message : 'Failed to pull…')).toEqual([
      'Failed to pull…',
      'Error: ErrImagePull',
      'Error: ImagePullBackOff',
    ]);
  });

  it('hang stays Running', async () => {
    kube.script({ name: 'hanger' }, { kind: 'hang' });
    await api.createNamespacedPod({ namespace: NS, body: podBody('hanger') });
    await until('pod to run', () => podNamed('hanger')?.status?.phase === 'Running');
    await new Promise((r) => setTimeout(r, 100));
    expect(podNamed('hanger')?.status?.phase).toBe('Running');
  });

  it('sidecar: the main container terminates while the second keeps the pod Running', async () => {
    kube.script({ name: 'with-sidecar' }, { kind: 'sidecar', mainExitCode: 0, logs: ['done'] });
    await api.createNamespacedPod({ namespace: NS, body: podBody('with-sidecar', { containers: ['main', 'istio-proxy'] }) });
    const pod = await until('main to terminate', () => {
      const p = podNamed('with-sidecar');
      return p?.status?.containerStatuses?.[0]?.state?.terminated ? p : undefined;
    });
    expect(pod.status?.phase).toBe('Running');
    expect(pod.status?.containerStatuses?.[0].state?.terminated?.exitCode).toBe(0);
    expect(pod.status?.containerStatuses?.[1].state?.running).toBeDefined();
  });

  it('preempt_after_start via the scheduler marks PreemptionByScheduler, then deletes the pod', async () => {
    kube.script({ name: 'victim' }, { kind: 'preempt_after_start', via: 'scheduler' });
    const created = await api.createNamespacedPod({ namespace: NS, body: podBody('victim') });
    const { events } = await watchUntil(`/api/v1/namespaces/${NS}/pods`, { resourceVersion: created.metadata?.resourceVersion }, (e) => e.type === 'DELETED');
    const last = events.at(-1)!.object;
    expect(last.status.phase).toBe('Failed');
    expect(last.status.conditions.find((c: any) => c.type === 'DisruptionTarget').reason).toBe('PreemptionByScheduler');
    expect(kube.events(NS).map((e) => e.reason)).toContain('Preempted');
  });
});

describe('fake-kube details a pod operator relies on', () => {
  it('a watch with a fieldSelector sees a pod enter as ADDED and leave as DELETED', async () => {
    kube.script({ name: 'phase-watch' }, { kind: 'succeed', runMs: 50 });
    const watching = watchUntil(`/api/v1/namespaces/${NS}/pods`, { fieldSelector: 'status.phase=Running' }, (e) => e.type === 'DELETED');
    await until('the watch to open', () => kube.openWatches() === 1);
    await api.createNamespacedPod({ namespace: NS, body: podBody('phase-watch') });
    const { events } = await watching;
    expect(events.map((e) => `${e.type} ${e.object.status.phase}`)).toEqual(['ADDED Running', 'DELETED Succeeded']);
  });

  it('a GPU request without a limit is rejected with 422 as a non-overcommitable resource', async () => {
    const body = podBody('gpu-no-limit');
    body.spec!.containers[0].resources = { requests: { 'nvidia.com/gpu': '1' } };
    const err = (await api.createNamespacedPod({ namespace: NS, body }).catch((e: unknown) => e)) as ApiException<string>;
    expect(err.code).toBe(422);
    expect(JSON.parse(err.body).message).toBe(
      'Pod "gpu-no-limit" is invalid: spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources',
    );
  });

  it('FallbackToLogsOnError puts the log tail in the termination message of a failed container', async () => {
    kube.script({ name: 'fallback' }, { kind: 'fail', exitCode: 2, logs: ['loading', 'ValueError: bad shape'] });
    const body = podBody('fallback');
    body.spec!.containers[0].terminationMessagePolicy = 'FallbackToLogsOnError';
    await api.createNamespacedPod({ namespace: NS, body });
    const pod = await until('pod to finish', terminalPod('fallback'));
    expect(pod.status?.containerStatuses?.[0].state?.terminated?.message).toBe('loading\nValueError: bad shape');
  });

  it('a result file larger than 4096 bytes is truncated as the kubelet does', async () => {
    kube.script({ name: 'big-result' }, { kind: 'succeed', resultFile: { blob: 'x'.repeat(5000) } });
    await api.createNamespacedPod({ namespace: NS, body: podBody('big-result') });
    const pod = await until('pod to finish', terminalPod('big-result'));
    expect(pod.status?.containerStatuses?.[0].state?.terminated?.message).toHaveLength(4096);
  });

  it('cutLogStreams in abort mode delivers the lines up to the cut, then drops the connection', async () => {
    kube.script({ name: 'abort-log' }, { kind: 'hang' });
    await api.createNamespacedPod({ namespace: NS, body: podBody('abort-log') });
    await until('pod to run', () => podNamed('abort-log')?.status?.phase === 'Running');
    kube.cutLogStreams(0, { mode: 'abort' });
    const res = await fetch(`${kube.url}/api/v1/namespaces/${NS}/pods/abort-log/log?follow=true`);
    expect(res.status).toBe(200);
    const err = await res.text().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
  });

  it('the log of a deleted pod answers 404 and a follow ends when the pod is deleted', async () => {
    kube.script({ name: 'short-lived' }, { kind: 'hang' });
    await api.createNamespacedPod({ namespace: NS, body: podBody('short-lived') });
    await until('pod to run', () => podNamed('short-lived')?.status?.phase === 'Running');
    const following = fetch(`${kube.url}/api/v1/namespaces/${NS}/pods/short-lived/log?follow=true`).then((r) => r.text());
    await api.deleteNamespacedPod({ namespace: NS, name: 'short-lived' });
    expect(await following).toBe('');
    await until('pod to be gone', () => !podNamed('short-lived'));
    expect((await getJson(`/api/v1/namespaces/${NS}/pods/short-lived/log`)).status).toBe(404);
  });
});

describe('fake-kube scripting and bulk operations', () => {
  it('a function rule picks the behaviour from the whole pod, and the first matching rule wins', async () => {
    kube.script((pod) => pod.spec?.containers[0].image === 'broken:1', { kind: 'fail', exitCode: 7 });
    kube.script({ name: /^rule-/ }, { kind: 'fail', exitCode: 9 });
    const broken = podBody('rule-a');
    broken.spec!.containers[0].image = 'broken:1';
    await api.createNamespacedPod({ namespace: NS, body: broken });
    await api.createNamespacedPod({ namespace: NS, body: podBody('rule-b') });
    await api.createNamespacedPod({ namespace: NS, body: podBody('plain') });
    const exit = async (name: string) => (await until(name, terminalPod(name))).status?.containerStatuses?.[0].state?.terminated?.exitCode;
    expect([await exit('rule-a'), await exit('rule-b'), await exit('plain')]).toEqual([7, 9, 0]);
  });

  it('deleting the pods of a label selector removes only those', async () => {
    kube.script({ labels: { run: 'r1' } }, { kind: 'hang' });
    await api.createNamespacedPod({ namespace: NS, body: podBody('r1-a', { labels: { run: 'r1' } }) });
    await api.createNamespacedPod({ namespace: NS, body: podBody('r1-b', { labels: { run: 'r1' } }) });
    await api.createNamespacedPod({ namespace: NS, body: podBody('r2-a', { labels: { run: 'r2' } }) });
    const deleted = await api.deleteCollectionNamespacedPod({ namespace: NS, labelSelector: 'run=r1', gracePeriodSeconds: 0 });
    expect(deleted.kind).toBe('PodList');
    await until('r1 pods to be gone', () => kube.pods(NS).every((p) => p.metadata?.labels?.run !== 'r1'));
    expect(kube.pods(NS).map((p) => p.metadata?.name)).toEqual(['r2-a']);
  });
});

describe('fake-kube scheduling', () => {
  const gpuPod = (name: string, nodeSelector: Record<string, string>): V1Pod => {
    const body = podBody(name, { spec: { nodeSelector } });
    body.spec!.containers[0].resources = { limits: { 'nvidia.com/gpu': '1' } };
    return body;
  };

  it('a GPU pod asking for on-demand capacity is unschedulable on the default cluster, with the reasons counted', async () => {
    await api.createNamespacedPod({ namespace: NS, body: gpuPod('gpu-od', { 'karpenter.sh/capacity-type': 'on-demand' }) });
    const cond = await until('PodScheduled=False', () => podNamed('gpu-od')?.status?.conditions?.find((c) => c.type === 'PodScheduled'));
    expect(cond.message).toBe("0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient nvidia.com/gpu.");
  });

  it('GKE, EKS and AKS spot selectors all reach the spot GPU node', async () => {
    for (const [name, selector] of [
      ['gke', { 'cloud.google.com/gke-spot': 'true' }],
      ['eks', { 'eks.amazonaws.com/capacityType': 'SPOT' }],
      ['aks', { 'kubernetes.azure.com/scalesetpriority': 'spot' }],
    ] as const) {
      await api.createNamespacedPod({ namespace: NS, body: gpuPod(`spot-${name}`, selector) });
    }
    for (const name of ['spot-gke', 'spot-eks', 'spot-aks']) {
      expect((await until(name, terminalPod(name))).spec?.nodeName).toBe('gpu-spot-node-1');
    }
  });

  it('a cluster built with makeNode schedules onto the added node', async () => {
    const custom = await startFakeKube({
      nodes: [...defaultNodes(), makeNode({ name: 'gpu-od-1', ip: '10.0.4.14', zone: 'us-east-1a', instanceType: 'p4d.24xlarge', capacityType: 'on-demand', cpu: '96', memory: '1152Gi', gpus: 8 })],
    });
    try {
      const customApi = custom.kubeConfig().makeApiClient(CoreV1Api);
      await customApi.createNamespacedPod({ namespace: NS, body: gpuPod('gpu-od', { 'karpenter.sh/capacity-type': 'on-demand' }) });
      const pod = await until('gpu-od to finish', () => custom.pods(NS).find((p) => p.status?.phase === 'Succeeded'));
      expect(pod.spec?.nodeName).toBe('gpu-od-1');
    } finally {
      await custom.stop();
    }
  });
});
