/**
 * fake-kube: a Kubernetes API server for tests, speaking the real REST paths and JSON shapes
 * over real HTTP, with a simulated scheduler and kubelet behind it. Use it with the real
 * `@kubernetes/client-node` client; nothing is mocked on the client side.
 *
 * @example
 * ```ts
 * import { CoreV1Api, Watch } from '@kubernetes/client-node';
 * import { startFakeKube } from '../../test/support/fake-kube/server.ts';
 *
 * const kube = await startFakeKube();
 * kube.script({ labels: { 'podflow.dev/task': 'train' } }, { kind: 'fail', exitCode: 3, logs: ['boom'] });
 * const api = kube.kubeConfig().makeApiClient(CoreV1Api);
 * await api.createNamespacedPod({ namespace: 'default', body: pod });
 * // ... watch /api/v1/namespaces/default/pods until the pod is Failed ...
 * await kube.stop();
 * ```
 *
 * ## REST surface (core/v1 only)
 * - `POST /api/v1/namespaces/{ns}/pods` → 201 Pod. 409 AlreadyExists, 422 Invalid (no name and no
 *   generateName, bad name, bad label key/value, no containers, container without name/image,
 *   duplicate container names, requests above limits, an extended resource such as
 *   `nvidia.com/gpu` without a limit or with request ≠ limit, bad restartPolicy), 400 for a body
 *   it cannot decode (malformed quantity, namespace mismatch, wrong kind). `generateName` gets
 *   five random characters. Defaults filled as the API server does: uid, creationTimestamp,
 *   resourceVersion, restartPolicy `Always`, terminationGracePeriodSeconds 30,
 *   terminationMessagePath `/dev/termination-log`, terminationMessagePolicy `File`,
 *   imagePullPolicy, requests copied from limits, the not-ready/unreachable tolerations, a
 *   `nvidia.com/gpu` NoSchedule toleration for GPU pods (ExtendedResourceToleration admission),
 *   status `{ phase: 'Pending', qosClass }`.
 * - `GET /api/v1/namespaces/{ns}/pods` and `GET /api/v1/pods` → PodList (items without kind and
 *   apiVersion, as the real server sends them; `metadata.resourceVersion` is the list's).
 *   `labelSelector` (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`); `fieldSelector` on
 *   metadata.name, metadata.namespace, spec.nodeName, status.phase, … (others → 400, as real);
 *   `limit` + `continue` (continue tokens expire with {@link FakeKube.expireResourceVersions} → 410).
 *   A list's `resourceVersion` is "not older than" as on the real server: the current state is
 *   returned; only `resourceVersionMatch=Exact` with a compacted version gets 410.
 * - `?watch=true` (or `watch=1`) on those list paths, on events and on nodes: newline-delimited
 *   watch events `{type, object}`. No resourceVersion (or "0"): ADDED for every current object,
 *   then changes. A resourceVersion: retained changes newer than it, then live ones; if it is
 *   compacted, one `ERROR` event whose object is a Status `{code: 410, reason: 'Expired'}` and
 *   the stream ends (the client-node informer then re-lists). `allowWatchBookmarks=true` sends
 *   `BOOKMARK` every `bookmarkIntervalMs`. `timeoutSeconds` ends the stream cleanly. A change that
 *   makes an object leave a selector arrives as DELETED.
 * - `GET/DELETE /api/v1/namespaces/{ns}/pods/{name}`, `GET .../pods/{name}/status`. DELETE
 *   (query `gracePeriodSeconds` or a DeleteOptions body, `preconditions.uid` honoured with 409)
 *   returns 200 with the pod. A pod never bound to a node, or grace 0, is removed at once. Otherwise
 *   it gets deletionTimestamp (MODIFIED), a Killing event, then after `timings.deleteGraceMs` its
 *   running containers terminate with exit 143 reason Error, phase Failed (MODIFIED), and it is
 *   removed (DELETED). `DELETE /api/v1/namespaces/{ns}/pods` deletes the selected pods, returns a PodList.
 * - `GET /api/v1/namespaces/{ns}/pods/{name}/log`: `container` (required when the pod has several),
 *   `follow`, `timestamps` (fixed-width RFC 3339 nanosecond prefix `2026-12-03T18:25:15.123456789Z `),
 *   `sinceTime` (inclusive, nanosecond precision: resuming from the last stamp seen repeats that
 *   line, as on a real cluster), `sinceSeconds`, `tailLines`, `limitBytes`. `follow` streams lines
 *   as written and ends when the container terminates or the pod is deleted. 400 while the
 *   container waits (`is waiting to start: ContainerCreating`, `trying and failing to pull image`),
 *   before the pod has a node, or for a container that never started; 404 once the pod is gone.
 * - `GET /api/v1/namespaces/{ns}/events`, `GET /api/v1/events`: CoreV1Event objects with
 *   involvedObject {kind Pod, name, uid, fieldPath `spec.containers{main}`}; fieldSelector on
 *   involvedObject.name/uid/kind, reason, type.
 * - `GET /api/v1/nodes`, `GET /api/v1/nodes/{name}`: by default `cpu-node-1`, `cpu-node-2`
 *   (on-demand) and `gpu-spot-node-1` (`nvidia.com/gpu: 4`, labels
 *   `karpenter.sh/capacity-type=spot`, `nvidia.com/gpu.present=true`, taint
 *   `nvidia.com/gpu=present:NoSchedule`). Every node also carries the EKS capacity label
 *   (`eks.amazonaws.com/capacityType` SPOT/ON_DEMAND) and spot nodes the GKE and AKS spot labels,
 *   so any provider's capacity profile schedules. Build other clusters with
 *   `startFakeKube({ nodes: [...defaultNodes(), makeNode({ name: 'gpu-od-1', capacityType: 'on-demand', gpus: 8, ... })] })`.
 *   `GET /version`, `/healthz`.
 * Anything else: 404 NotFound Status (405 MethodNotAllowed for a known path).
 *
 * ## The simulated cluster
 * The scheduler places a pod on the first node whose labels match its nodeSelector and required
 * node affinity, whose NoSchedule/NoExecute taints it tolerates and that has room (cpu, memory,
 * nvidia.com/gpu, counting bound non-terminal pods). If none fits the pod stays Pending with
 * PodScheduled=False reason Unschedulable and a FailedScheduling event worded like the real one
 * (`0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient nvidia.com/gpu.`),
 * whatever was scripted. A placed pod then goes, `timings` apart:
 * Pending (PodScheduled, Scheduled event) → Pending ContainerCreating (nodeName, hostIP, podIP,
 * startTime, Pulling) → Running (Pulled, Created, Started; containerStatuses running with
 * startedAt, containerID `containerd://…`, imageID `docker.io/library/python@sha256:<64 hex>`)
 * → the scripted end. Logs are written by the first container. Containers are never restarted
 * (the fake behaves as restartPolicy Never whatever the spec says).
 *
 * Behaviours ({@link FakeKube.script}; first matching rule wins; default `succeed`):
 * - `succeed`: logs, then exit 0 reason Completed, phase Succeeded. `resultFile` is
 *   JSON-stringified into `status.containerStatuses[0].state.terminated.message` (the kubelet's
 *   terminationMessagePath mechanism, truncated to 4096 bytes as the kubelet does).
 * - `fail`: exit `exitCode` reason Error, phase Failed. With terminationMessagePolicy
 *   `FallbackToLogsOnError` the message is the log tail (80 lines / 2048 bytes).
 * - `never_schedule`: PodScheduled=False Unschedulable, FailedScheduling event with `message`
 *   (default `0/3 nodes are available: 3 Insufficient nvidia.com/gpu.`). Stays Pending.
 * - `image_pull_error`: waiting ErrImagePull then ImagePullBackOff, Failed/BackOff events. Stays Pending.
 * - `oom`: logs, then the first container terminates exit 137 reason OOMKilled, phase Failed.
 * - `evict_before_start`: phase Failed, status.reason Evicted, DisruptionTarget=True reason
 *   TerminationByKubelet, Evicted event, containers terminated ContainerStatusUnknown without startedAt.
 * - `preempt_after_start`: after running. `via: 'node_shutdown'` (default; a spot reclaim):
 *   DisruptionTarget=True TerminationByKubelet, status.reason Terminated, exit 143, phase Failed,
 *   Killing events. `via: 'scheduler'`: DisruptionTarget=True PreemptionByScheduler, Preempted
 *   event, then a graceful deletion (exit 143, phase Failed, DELETED).
 * - `deadline`: phase Failed, status.reason DeadlineExceeded, DeadlineExceeded and Killing events, exit 137.
 * - `hang`: Running until deleted.
 * - `sidecar`: the first container ends with `mainExitCode`; the others keep running, so the
 *   phase stays Running (needs two containers; with one it ends like succeed/fail).
 * Deleting a node ({@link FakeKube.deleteNode}) makes the pod GC fail its pods (phase Failed,
 * DisruptionTarget=True reason DeletionByPodGC "PodGC: node no longer exists", container
 * statuses left as they were) and force-delete them.
 *
 * ## What the real client does with it (client-node 1.4, checked in fake-kube.test.ts)
 * - `kubeConfig()` sets `skipTLSVerify: true`: client-node refuses a plain-http server otherwise.
 * - A non-2xx answer throws `ApiException` with `code`, `body` (the Status as a JSON string:
 *   `JSON.parse(err.body).reason`) and `headers` (lower-case keys: `err.headers['retry-after']`).
 *   The client never retries by itself.
 * - `Watch.watch()` calls `done(null)` when the server ends the stream (timeoutSeconds,
 *   `cutWatches('end')`, after a 410 ERROR event) and `done(err)` when the connection is
 *   aborted (`cutWatches()`). `makeInformer` re-lists and re-watches after the first kind and
 *   after a 410, but after an aborted connection it only emits `error` and stays stopped: the
 *   caller has to `start()` it again.
 * - `Log.log()` pipes the body into your stream: a clean end (follow finished, or
 *   `cutLogStreams` mode `'end'`) ends your stream; an aborted connection (mode `'abort'`)
 *   neither ends nor errors it, so a follower needs its own way to notice.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig, type CoreV1Event, type V1Pod } from '@kubernetes/client-node';
import { rfc3339 } from './clock.ts';
import { LogStore } from './container-logs.ts';
import { Faults } from './faults.ts';
import { DEFAULT_TIMINGS, Kubelet, type KubeletTimings, type PodBehaviour, type PodMatch } from './kubelet.ts';
import { parseLogQuery, resolveLogContainer, serveLog, type FollowHandle } from './log-stream.ts';
import { defaultNodes } from './nodes.ts';

export { defaultNodes, makeNode, type NodeShape } from './nodes.ts';
import { defaultPod, generateName, validatePod } from './pod-admission.ts';
import { EVENT_FIELDS, NODE_FIELDS, POD_FIELDS, parseFieldSelector, parseLabelSelector } from './selectors.ts';
import { ApiError, alreadyExists, badRequest, expired, faultStatus, notFound } from './status.ts';
import { Collection, Revision } from './store.ts';
import { parseResourceVersion, serveWatch } from './watch-stream.ts';
import { toClientEvent, toClientPod, type EventJson, type KubeObject, type NodeJson, type PodJson } from './wire.ts';

export type { PodBehaviour, PodMatch, KubeletTimings } from './kubelet.ts';

export interface FakeKubeOptions {
  /** Namespace of the kubeConfig() context. Default `'default'`. */
  namespace?: string;
  /** Step lengths of the simulation in ms (see {@link KubeletTimings}); defaults are tens of ms. */
  timings?: Partial<KubeletTimings>;
  /** Interval of BOOKMARK events on watches with allowWatchBookmarks=true. Default 100 ms. */
  bookmarkIntervalMs?: number;
  /** Replace the default three nodes. */
  nodes?: NodeJson[];
  /** Changes retained for watch replay per kind; older resourceVersions get 410. Default 10000. */
  historyLimit?: number;
}

export interface RequestRecord {
  method: string;
  /** Path with query string, e.g. `/api/v1/namespaces/default/pods?watch=true&resourceVersion=12`. */
  path: string;
  status: number;
  /** Date.now() when the request arrived. */
  at: number;
}

export interface FakeKube {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** A fresh KubeConfig for `url` (plain HTTP, no auth), context namespace `opts.namespace ?? 'default'`. */
  kubeConfig(): KubeConfig;
  /** Current pods (deep copies, timestamps as Date like the client gives); all namespaces when omitted. */
  pods(namespace?: string): V1Pod[];
  /** Current events (deep copies); all namespaces when omitted. */
  events(namespace?: string): CoreV1Event[];
  /** Every request answered, in the order their status line was sent (watches and follows when they start streaming). */
  requests: RequestRecord[];
  resetRequests(): void;
  /**
   * Decide how the simulated kubelet treats pods whose name or labels match (all given
   * criteria must hold; a string name matches exactly). Rules are read when a pod is created;
   * first matching rule wins; default `{ kind: 'succeed' }`.
   */
  script(match: PodMatch, behaviour: PodBehaviour): void;
  /**
   * Answer the next matching requests with `statuses`, one each, in order (409 Conflict,
   * 429 TooManyRequests with `Retry-After` and `details.retryAfterSeconds` (default 1),
   * 500 InternalError, 503 ServiceUnavailable, 410 Expired; each with a real Status body).
   * `method` may be `'*'`; `path` is tested against the path, then against path + query.
   */
  failNext(method: string, path: RegExp, statuses: number[], opts?: { retryAfterSeconds?: number }): void;
  /** Hold the next `count` (default: every) matching requests `ms` before serving them. */
  slow(method: string, path: RegExp, ms: number, count?: number): void;
  /** Drop every failNext/slow/cutLogStreams rule not yet used up. */
  clearFaults(): void;
  /**
   * End every open watch now. `'abort'` (default) destroys the connection (the client sees an
   * error such as "Premature close"); `'end'` closes it cleanly, like a server-side timeout.
   */
  cutWatches(mode?: 'abort' | 'end'): void;
  /** Compact: every resourceVersion handed out so far becomes too old (watch → ERROR 410 event; continue → 410). */
  expireResourceVersions(): void;
  /**
   * Cut the next `streams` (default 1) follow-log streams after `afterLines` (default 0) more
   * lines: streams open now first, then streams opened later. `mode` `'end'` (default) ends
   * the response cleanly, `'abort'` destroys the connection.
   */
  cutLogStreams(afterLines?: number, opts?: { streams?: number; mode?: 'end' | 'abort' }): void;
  /** Remove a node; its pods fail and are deleted as the pod garbage collector does. */
  deleteNode(nodeName: string): void;
  /** Number of watch connections open now. */
  openWatches(): number;
  stop(): Promise<void>;
}

interface Route {
  pattern: RegExp;
  handlers: Partial<Record<string, (ctx: RequestContext) => Promise<void> | void>>;
}

interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: string[];
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, err: ApiError): void {
  const headers: Record<string, string> = err.retryAfterSeconds !== undefined ? { 'Retry-After': String(err.retryAfterSeconds) } : {};
  sendJson(res, err.code, err.toStatus(), headers);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${(err as Error).message}`);
  }
}

const isWatch = (url: URL): boolean => ['true', '1'].includes(url.searchParams.get('watch') ?? '');

interface ContinueToken {
  rv: number;
  start: string;
}

/** Starts a fake Kubernetes API server on 127.0.0.1 and a free port. */
export async function startFakeKube(opts: FakeKubeOptions = {}): Promise<FakeKube> {
  const contextNamespace = opts.namespace ?? 'default';
  const timings: KubeletTimings = { ...DEFAULT_TIMINGS, ...opts.timings };
  const bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 100;
  const revision = new Revision();
  const pods = new Collection<PodJson>(revision, opts.historyLimit);
  const events = new Collection<EventJson>(revision, opts.historyLimit);
  const nodes = new Collection<NodeJson>(revision, opts.historyLimit);
  for (const node of opts.nodes ?? defaultNodes(rfc3339())) nodes.create(node);
  const logs = new LogStore();
  const kubelet = new Kubelet(pods, events, nodes, logs, timings);
  const faults = new Faults();
  const requests: RequestRecord[] = [];
  const openWatches = new Set<{ abort: () => void; end: () => void }>();
  const openFollows = new Set<FollowHandle>();
  let logCutMode: 'end' | 'abort' = 'end';

  function listOrWatch<T extends KubeObject>(
    ctx: RequestContext,
    collection: Collection<T>,
    namespace: string | undefined,
    fields: readonly string[],
    kind: string,
  ): void {
    const q = ctx.url.searchParams;
    const matchLabels = parseLabelSelector(q.get('labelSelector'));
    const matchFields = parseFieldSelector(q.get('fieldSelector'), fields, kind);
    const matches = (obj: unknown): boolean => matchLabels(obj) && matchFields(obj);
    if (isWatch(ctx.url)) {
      const timeout = q.get('timeoutSeconds');
      const handle = serveWatch(
        ctx.res,
        collection,
        namespace,
        matches,
        {
          resourceVersion: q.get('resourceVersion') ?? '',
          allowBookmarks: ['true', '1'].includes(q.get('allowWatchBookmarks') ?? ''),
          bookmarkIntervalMs,
          timeoutSeconds: timeout === null ? undefined : Number(timeout),
          kind,
        },
        () => openWatches.delete(handle),
      );
      if (!ctx.res.writableEnded) openWatches.add(handle);
      return;
    }
    const rvText = q.get('resourceVersion');
    if (rvText && rvText !== '0' && q.get('resourceVersionMatch') === 'Exact' && collection.isTooOld(parseResourceVersion(rvText))) {
      throw expired(`too old resource version: ${rvText} (${revision.compactedBelow})`);
    }
    let start = '';
    const continueText = q.get('continue');
    if (continueText) {
      let token: ContinueToken;
      try {
        token = JSON.parse(Buffer.from(continueText, 'base64url').toString('utf8')) as ContinueToken;
      } catch {
        throw badRequest('continue key is not valid: illegal base64 data');
      }
      if (collection.isTooOld(token.rv)) {
        throw expired('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.');
      }
      start = token.start;
    }
    const keyOf = (o: T): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
    const all = collection.list(namespace).filter((o) => matches(o) && keyOf(o) > start);
    const limit = Number(q.get('limit') ?? 0);
    const page = limit > 0 ? all.slice(0, limit) : all;
    const metadata: Record<string, unknown> = { resourceVersion: String(revision.current) };
    if (page.length < all.length) {
      const token: ContinueToken = { rv: revision.current, start: keyOf(page[page.length - 1]) };
      metadata.continue = Buffer.from(JSON.stringify(token)).toString('base64url');
      metadata.remainingItemCount = all.length - page.length;
    }
    // The real server omits kind and apiVersion on list items.
    const items = page.map(({ kind: _kind, apiVersion: _apiVersion, ...rest }) => rest);
    sendJson(ctx.res, 200, { kind: `${kind}List`, apiVersion: 'v1', metadata, items });
  }

  function getOr404<T extends KubeObject>(collection: Collection<T>, namespace: string | undefined, name: string, resource: string): T {
    const obj = collection.get(namespace, name);
    if (!obj) throw notFound(resource, name);
    return obj;
  }

  async function createPod(ctx: RequestContext): Promise<void> {
    const [namespace] = ctx.params;
    const body = (await readJson(ctx.req)) as PodJson;
    validatePod(body, namespace);
    let name = body.metadata?.name;
    if (!name) {
      do name = generateName(body.metadata!.generateName!);
      while (pods.has(namespace, name));
    } else if (pods.has(namespace, name)) {
      throw alreadyExists('pods', name);
    }
    const created = pods.create(defaultPod(body, namespace, name));
    kubelet.podCreated(created);
    sendJson(ctx.res, 201, created);
  }

  async function deletePod(ctx: RequestContext): Promise<void> {
    const [namespace, name] = ctx.params;
    const options = ((await readJson(ctx.req)) ?? {}) as { gracePeriodSeconds?: number; preconditions?: { uid?: string; resourceVersion?: string } };
    const current = getOr404(pods, namespace, name, 'pods');
    const wantedUid = options.preconditions?.uid;
    if (wantedUid && wantedUid !== current.metadata?.uid) {
      throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on Pod "${name}": Precondition failed: UID in precondition: ${wantedUid}, UID in object meta: ${current.metadata?.uid}`, { name, kind: 'Pod' });
    }
    const wantedRv = options.preconditions?.resourceVersion;
    if (wantedRv && wantedRv !== current.metadata?.resourceVersion) {
      throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on Pod "${name}": Precondition failed: ResourceVersion in precondition: ${wantedRv}, ResourceVersion in object meta: ${current.metadata?.resourceVersion}`, { name, kind: 'Pod' });
    }
    const graceText = ctx.url.searchParams.get('gracePeriodSeconds');
    const grace = graceText !== null ? Number(graceText) : options.gracePeriodSeconds;
    sendJson(ctx.res, 200, kubelet.deletePod(namespace, name, grace));
  }

  async function deletePods(ctx: RequestContext): Promise<void> {
    const [namespace] = ctx.params;
    const options = ((await readJson(ctx.req)) ?? {}) as { gracePeriodSeconds?: number };
    const q = ctx.url.searchParams;
    const matchLabels = parseLabelSelector(q.get('labelSelector'));
    const matchFields = parseFieldSelector(q.get('fieldSelector'), POD_FIELDS, 'Pod');
    const graceText = q.get('gracePeriodSeconds');
    const grace = graceText !== null ? Number(graceText) : options.gracePeriodSeconds;
    const deleted = pods
      .list(namespace)
      .filter((p) => matchLabels(p) && matchFields(p))
      .map((p) => kubelet.deletePod(namespace, p.metadata!.name!, grace))
      .filter((p): p is PodJson => p !== undefined)
      .map(({ kind: _kind, apiVersion: _apiVersion, ...rest }) => rest);
    sendJson(ctx.res, 200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(revision.current) }, items: deleted });
  }

  function podLog(ctx: RequestContext): void {
    const [namespace, name] = ctx.params;
    const pod = getOr404(pods, namespace, name, 'pods');
    const query = parseLogQuery(ctx.url.searchParams);
    const container = resolveLogContainer(pod, query);
    const handle = serveLog(ctx.res, logs, pod.metadata!.uid!, container, query, (h) => openFollows.delete(h));
    if (!handle || ctx.res.writableEnded) return;
    openFollows.add(handle);
    const cut = faults.takeLogCut();
    if (cut !== undefined) handle.arm(cut, logCutMode);
  }

  const podsPath = '/api/v1/namespaces/([^/]+)/pods';
  const routes: Route[] = [
    {
      pattern: new RegExp(`^${podsPath}$`),
      handlers: {
        GET: (ctx) => listOrWatch(ctx, pods, ctx.params[0], POD_FIELDS, 'Pod'),
        POST: createPod,
        DELETE: deletePods,
      },
    },
    {
      pattern: new RegExp(`^${podsPath}/([^/]+)$`),
      handlers: {
        GET: (ctx) => sendJson(ctx.res, 200, getOr404(pods, ctx.params[0], ctx.params[1], 'pods')),
        DELETE: deletePod,
      },
    },
    {
      pattern: new RegExp(`^${podsPath}/([^/]+)/status$`),
      handlers: { GET: (ctx) => sendJson(ctx.res, 200, getOr404(pods, ctx.params[0], ctx.params[1], 'pods')) },
    },
    { pattern: new RegExp(`^${podsPath}/([^/]+)/log$`), handlers: { GET: podLog } },
    { pattern: /^\/api\/v1\/pods$/, handlers: { GET: (ctx) => listOrWatch(ctx, pods, undefined, POD_FIELDS, 'Pod') } },
    {
      pattern: /^\/api\/v1\/namespaces\/([^/]+)\/events$/,
      handlers: { GET: (ctx) => listOrWatch(ctx, events, ctx.params[0], EVENT_FIELDS, 'Event') },
    },
    {
      pattern: /^\/api\/v1\/namespaces\/([^/]+)\/events\/([^/]+)$/,
      handlers: { GET: (ctx) => sendJson(ctx.res, 200, getOr404(events, ctx.params[0], ctx.params[1], 'events')) },
    },
    { pattern: /^\/api\/v1\/events$/, handlers: { GET: (ctx) => listOrWatch(ctx, events, undefined, EVENT_FIELDS, 'Event') } },
    { pattern: /^\/api\/v1\/nodes$/, handlers: { GET: (ctx) => listOrWatch(ctx, nodes, undefined, NODE_FIELDS, 'Node') } },
    {
      pattern: /^\/api\/v1\/nodes\/([^/]+)$/,
      handlers: { GET: (ctx) => sendJson(ctx.res, 200, getOr404(nodes, undefined, ctx.params[0], 'nodes')) },
    },
    {
      pattern: /^\/version\/?$/,
      handlers: {
        GET: (ctx) =>
          sendJson(ctx.res, 200, { major: '1', minor: '31', gitVersion: 'v1.31.4-fake-kube', platform: 'linux/amd64', goVersion: 'go1.22.9', compiler: 'gc' }),
      },
    },
    {
      pattern: /^\/(healthz|livez|readyz)$/,
      handlers: {
        GET: (ctx) => {
          ctx.res.writeHead(200, { 'Content-Type': 'text/plain' });
          ctx.res.end('ok');
        },
      },
    },
  ];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake-kube');
    const method = (req.method ?? 'GET').toUpperCase();
    const fullPath = url.pathname + url.search;
    const record: RequestRecord = { method, path: fullPath, status: 0, at: Date.now() };
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    // Every response, including implicit ones, passes through writeHead: record its status there.
    res.writeHead = ((...args: unknown[]) => {
      if (record.status === 0) {
        record.status = args[0] as number;
        requests.push(record);
      }
      return writeHead(...args);
    }) as typeof res.writeHead;
    try {
      const delay = faults.takeDelay(method, url.pathname, fullPath);
      if (delay > 0) await sleep(delay);
      const failure = faults.takeFailure(method, url.pathname, fullPath);
      if (failure) throw faultStatus(failure.status, url.pathname, failure.retryAfterSeconds);
      for (const route of routes) {
        const m = route.pattern.exec(url.pathname);
        if (!m) continue;
        const handler = route.handlers[method];
        if (!handler) throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method} ${url.pathname})`);
        await handler({ req, res, url, params: m.slice(1).map(decodeURIComponent) });
        return;
      }
      throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${method} ${url.pathname})`, {});
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof ApiError) sendError(res, err);
      else sendError(res, new ApiError(500, 'InternalError', `fake-kube bug while serving ${method} ${fullPath}: ${(err as Error).stack ?? err}`));
    }
  }

  const server: Server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        // client-node refuses a plain-http server unless skipTLSVerify is set.
        clusters: [{ name: 'fake-kube', server: url, skipTLSVerify: true }],
        users: [{ name: 'fake-kube-user' }],
        contexts: [{ name: 'fake-kube', cluster: 'fake-kube', user: 'fake-kube-user', namespace: contextNamespace }],
        currentContext: 'fake-kube',
      });
      return kc;
    },
    pods: (namespace) => pods.list(namespace).map(toClientPod),
    events: (namespace) => events.list(namespace).map(toClientEvent),
    resetRequests: () => void requests.splice(0),
    script: (match, behaviour) => kubelet.script(match, behaviour),
    failNext: (method, path, statuses, o) => faults.failNext(method, path, statuses, o?.retryAfterSeconds),
    slow: (method, path, ms, count = Infinity) => faults.slow(method, path, ms, count),
    clearFaults: () => faults.clear(),
    cutWatches(mode = 'abort') {
      for (const w of [...openWatches]) mode === 'abort' ? w.abort() : w.end();
      openWatches.clear();
    },
    expireResourceVersions: () => revision.compact(),
    cutLogStreams(afterLines = 0, o = {}) {
      logCutMode = o.mode ?? 'end';
      faults.cutLogStreams(afterLines, o.streams ?? 1);
      for (const follow of [...openFollows]) {
        if (follow.armed) continue;
        const cut = faults.takeLogCut();
        if (cut === undefined) break;
        follow.arm(cut, logCutMode);
      }
    },
    deleteNode(nodeName) {
      if (!nodes.remove(undefined, nodeName)) throw new Error(`fake-kube deleteNode: no node "${nodeName}" (nodes: ${nodes.list().map((n) => n.metadata?.name).join(', ')})`);
      kubelet.nodeDeleted(nodeName);
    },
    openWatches: () => openWatches.size,
    async stop() {
      kubelet.stop();
      for (const w of openWatches) w.abort();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
