/**
 * One shared, informer-style watch per namespace over every pod Podflow manages.
 *
 * List, then watch from the list's resourceVersion with bookmarks; on a cut, re-watch from
 * the last resourceVersion seen; on 410 Gone (the version expired), list again and emit the
 * differences (including DELETED for pods that vanished meanwhile), so a subscriber never
 * misses a pod's final state. Subscribers register per pod name: a thousand running pods
 * cost one watch, not a thousand poll loops.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeApi } from './kube-api.ts';
import { errorStatus } from './kube-api.ts';
import { kubeClient } from './kube-client.ts';
import { LABELS, MANAGED_BY } from './pod-builder.ts';

export type PodEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type PodListener = (type: PodEventType, pod: V1Pod) => void;

export interface PodWatcherOptions {
  logger: Logger;
  /** Default `podflow.io/managed-by=podflow`. */
  labelSelector?: string;
  /** First reconnect delay after an error (default 250 ms, doubling to 5 s). */
  reconnectDelayMs?: number;
  /** Server-side watch timeout asked for (default 300 s); the watch is renewed after it. */
  watchTimeoutSeconds?: number;
  /**
   * A watch silent for this long (no event, no bookmark) is presumed dead (a black-holed
   * connection never closes) and reopened. Default: the server timeout + 30 s.
   */
  idleTimeoutMs?: number;
}

function rvOf(pod: V1Pod): string | undefined {
  return pod.metadata?.resourceVersion;
}

/** The informer for one namespace. Start it once; subscribe per pod. */
export class PodWatcher {
  private readonly cache = new Map<string, V1Pod>();
  private readonly listeners = new Map<string, Set<PodListener>>();
  private resourceVersion: string | undefined;
  private controller: AbortController | null = null;
  private stopped = false;
  private started: Promise<void> | null = null;
  private failures = 0;
  private readonly labelSelector: string;
  private readonly logger: Logger;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private lastActivity = Date.now();
  private epoch = 0;
  private pendingRelist = false;
  private connecting = false;
  /** Watch connections opened and relists done, for tests and metrics. */
  readonly stats = { watches: 0, lists: 0, relistsOn410: 0, reconnects: 0, bookmarks: 0, idleRestarts: 0 };

  constructor(
    private readonly api: KubeApi,
    readonly namespace: string,
    private readonly opts: PodWatcherOptions,
  ) {
    this.labelSelector = opts.labelSelector ?? `${LABELS.managedBy}=${MANAGED_BY}`;
    this.logger = opts.logger.child({ component: 'pod-watcher', namespace });
  }

  /** Lists and starts watching; resolves once the cache is synced. Idempotent. */
  start(): Promise<void> {
    this.started ??= this.relist().then(() => {
      const idle = this.opts.idleTimeoutMs ?? ((this.opts.watchTimeoutSeconds ?? 300) + 30) * 1000;
      this.watchdog = setInterval(() => this.checkIdle(idle), Math.max(50, Math.min(15_000, idle / 4)));
      this.watchdog.unref();
      // Not awaited: the list is the synced state; the watch replays from its resourceVersion.
      void this.watch().catch((e) => {
        this.logger.warn({ err: (e as Error).message }, 'pod watch failed to start; retrying');
        this.failures++;
        this.scheduleReconnect(false);
      });
    });
    return this.started;
  }

  private checkIdle(idleMs: number): void {
    if (this.stopped || this.reconnectTimer || Date.now() - this.lastActivity < idleMs) return;
    this.logger.warn({ idle_ms: Date.now() - this.lastActivity, connecting: this.connecting }, 'pod watch silent for too long; reopening it');
    this.stats.idleRestarts++;
    // Abandon the connection (it may still be connecting, so its controller may not exist yet).
    this.epoch++;
    this.controller?.abort();
    this.controller = null;
    this.lastActivity = Date.now();
    this.scheduleReconnect(false);
  }

  /** The last state seen of a pod. */
  get(name: string): V1Pod | undefined {
    return this.cache.get(name);
  }

  /** Cached pods whose labels include all of `labels`. */
  find(labels: Record<string, string>): V1Pod[] {
    const out: V1Pod[] = [];
    for (const pod of this.cache.values()) {
      const l = pod.metadata?.labels ?? {};
      if (Object.entries(labels).every(([k, v]) => l[k] === v)) out.push(pod);
    }
    return out;
  }

  /** Calls `fn` for every change of pod `name`; returns the unsubscribe function. */
  subscribe(name: string, fn: PodListener): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn);
    return () => {
      set!.delete(fn);
      if (set!.size === 0 && this.listeners.get(name) === set) this.listeners.delete(name);
    };
  }

  /** Feeds an object we got from our own API call (e.g. create) into the cache if it is newer. */
  observe(pod: V1Pod): void {
    const name = pod.metadata?.name;
    if (!name) return;
    const cur = this.cache.get(name);
    if (!cur || Number(rvOf(pod) ?? 0) > Number(rvOf(cur) ?? 0)) this.apply(cur ? 'MODIFIED' : 'ADDED', pod);
  }

  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    this.controller?.abort();
    this.controller = null;
  }

  private emit(type: PodEventType, pod: V1Pod): void {
    const name = pod.metadata?.name;
    if (!name) return;
    for (const fn of [...(this.listeners.get(name) ?? [])]) {
      try {
        fn(type, pod);
      } catch (e) {
        this.logger.error({ err: e, pod: name }, 'pod listener threw');
      }
    }
  }

  private apply(type: PodEventType, pod: V1Pod): void {
    const name = pod.metadata?.name;
    if (!name) return;
    if (type === 'DELETED') this.cache.delete(name);
    else this.cache.set(name, pod);
    this.emit(type, pod);
  }

  private async relist(): Promise<void> {
    this.stats.lists++;
    const list = await this.api.listPods(this.namespace, this.labelSelector);
    this.resourceVersion = list.metadata?.resourceVersion;
    const seen = new Set<string>();
    for (const pod of list.items) {
      const name = pod.metadata?.name;
      if (!name) continue;
      seen.add(name);
      const cur = this.cache.get(name);
      if (!cur) this.apply('ADDED', pod);
      else if (rvOf(cur) !== rvOf(pod)) this.apply('MODIFIED', pod);
    }
    for (const [name, pod] of [...this.cache]) {
      if (!seen.has(name)) this.apply('DELETED', pod);
    }
  }

  private scheduleReconnect(relist: boolean): void {
    if (this.stopped) return;
    // One reconnect at a time; a relist asked for meanwhile is kept.
    this.pendingRelist ||= relist;
    if (this.reconnectTimer) return;
    const base = this.opts.reconnectDelayMs ?? 250;
    const delay = this.failures === 0 ? 0 : Math.min(5000, base * 2 ** (this.failures - 1));
    this.stats.reconnects++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      const doRelist = this.pendingRelist;
      this.pendingRelist = false;
      void (async () => {
        try {
          if (doRelist) await this.relist();
          await this.watch();
        } catch (e) {
          this.failures++;
          this.logger.warn({ err: (e as Error).message, failures: this.failures }, 'pod watch: relist failed; retrying');
          this.scheduleReconnect(true);
        }
      })();
    }, delay);
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    // Callbacks of a superseded connection (abandoned by the watchdog) are ignored.
    const epoch = ++this.epoch;
    const current = () => epoch === this.epoch && !this.stopped;
    this.stats.watches++;
    this.api.counter.count('watch', null);
    let gone = false;
    let sawEvent = false;
    const openedAt = Date.now();
    this.lastActivity = openedAt;
    this.connecting = true;
    // The KubeApi this watcher uses could only be built once the client was loaded.
    const w = new (kubeClient().Watch)(this.api.kubeConfig);
    const controller = await w.watch(
      `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/pods`,
      {
        labelSelector: this.labelSelector,
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: this.opts.watchTimeoutSeconds ?? 300,
      },
      (type: string, obj: any) => {
        if (!current()) return;
        sawEvent = true;
        this.lastActivity = Date.now();
        this.failures = 0;
        if (type === 'ERROR') {
          // A Status object inside the stream: 410 means our version is too old.
          if (obj?.code === 410) gone = true;
          else this.logger.warn({ status: obj }, 'pod watch: error event');
          return;
        }
        const rv = obj?.metadata?.resourceVersion as string | undefined;
        if (rv) this.resourceVersion = rv;
        if (type === 'BOOKMARK') {
          this.stats.bookmarks++;
          return;
        }
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') this.apply(type, obj as V1Pod);
      },
      (err: unknown) => {
        if (!current()) return;
        this.epoch++;
        const st = err ? errorStatus(err) : null;
        if (gone || st?.status === 410) {
          this.stats.relistsOn410++;
          this.logger.info('pod watch: resourceVersion expired (410 Gone); relisting');
          this.failures = 0;
          this.scheduleReconnect(true);
          return;
        }
        // A stream that closes at once without events is a failing server, not a renewal: back off.
        if (!sawEvent && (err || Date.now() - openedAt < 1000)) this.failures++;
        if (err) {
          this.logger.warn({ err: st?.message, status: st?.status }, 'pod watch cut; reconnecting from last resourceVersion');
        }
        this.scheduleReconnect(false);
      },
    );
    if (!current()) {
      controller.abort();
      return;
    }
    this.connecting = false;
    this.controller = controller;
  }
}
