/**
 * The slice of the Kubernetes API the pod operator uses, with retries and request counting.
 *
 * Retried: 429 and 5xx (honouring Retry-After), 409 Conflict except AlreadyExists (which is
 * the answer to an idempotent create, not a race), and connection errors. Every request,
 * including the watch and log streams opened elsewhere, is counted per pod.
 */
import type { CoreV1Api, CoreV1Event, KubeConfig, V1Node, V1Pod, V1PodList } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { kubeClient, kubeClientIfLoaded, loadKubeClient } from './kube-client.ts';

export interface RetryOptions {
  /** Tries per request, the first included (default 6). */
  maxAttempts?: number;
  /**
   * A request unanswered after this is given up and retried (default 30 s). A create that
   * timed out may still have happened: the retry then gets 409 AlreadyExists and adopts the pod.
   */
  requestTimeoutMs?: number;
  /** First backoff (default 200 ms), doubled each time with jitter. */
  baseDelayMs?: number;
  /** Backoff cap, Retry-After included (default 10 s). */
  maxDelayMs?: number;
}

/** A Kubernetes API error after retries, with what to do. */
export class KubeApiError extends Error {
  constructor(
    readonly verb: string,
    readonly status: number | null,
    readonly reason: string | null,
    detail: string,
  ) {
    super(`Kubernetes API ${verb} failed${status ? ` with HTTP ${status}` : ''}${reason ? ` (${reason})` : ''}: ${detail}`);
    this.name = 'KubeApiError';
  }
}

/** Status and Kubernetes `reason` of an error from the client, or nulls for a connection error. */
export function errorStatus(e: unknown): { status: number | null; reason: string | null; retryAfterMs: number | null; message: string } {
  // An ApiException can only exist once the client module is loaded, so this never imports it.
  const client = kubeClientIfLoaded();
  if (client && e instanceof client.ApiException) {
    let body: unknown = e.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        /* plain text body */
      }
    }
    const b = (body ?? {}) as { reason?: string; message?: string };
    const headers = e.headers ?? {};
    const ra = Object.entries(headers).find(([k]) => k.toLowerCase() === 'retry-after')?.[1];
    return { status: e.code, reason: b.reason ?? null, retryAfterMs: parseRetryAfter(ra), message: b.message ?? e.message };
  }
  const err = e as { statusCode?: number; code?: string; message?: string };
  if (typeof err?.statusCode === 'number') return { status: err.statusCode, reason: null, retryAfterMs: null, message: err.message ?? String(e) };
  return { status: null, reason: null, retryAfterMs: null, message: err?.message ?? String(e) };
}

/** Retry-After in seconds or as an HTTP date, in ms. */
export function parseRetryAfter(v: string | undefined): number | null {
  if (!v) return null;
  const n = Number(v);
  if (Number.isFinite(n) && n >= 0) return n * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.max(0, t - Date.now());
}

/** Whether an error is worth another try. */
export function isRetryable(e: unknown): boolean {
  const { status, reason } = errorStatus(e);
  if (status === null) {
    const name = (e as Error)?.name;
    // An abort is ours, not the network's.
    return name !== 'AbortError';
  }
  if (status === 409) return reason !== 'AlreadyExists';
  return status === 429 || status >= 500;
}

/** A request that got no answer in time (retried like a connection error). */
export class RequestTimeoutError extends Error {
  constructor(verb: string, ms: number) {
    super(`no answer to ${verb} within ${ms} ms`);
    this.name = 'RequestTimeoutError';
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, verb: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RequestTimeoutError(verb, ms)), ms);
  });
  // The abandoned request may still fail later; nobody is listening any more.
  p.catch(() => undefined);
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Request counts: per pod (by verb) and for shared namespace-level requests (list/watch). */
export class RequestCounter {
  private readonly byPod = new Map<string, Map<string, number>>();
  private shared = new Map<string, number>();
  total = 0;
  constructor(private readonly onCount?: (verb: string) => void) {}

  count(verb: string, pod: string | null): void {
    this.total++;
    this.onCount?.(verb);
    const m = pod === null ? this.shared : (this.byPod.get(pod) ?? new Map<string, number>());
    if (pod !== null) this.byPod.set(pod, m);
    m.set(verb, (m.get(verb) ?? 0) + 1);
  }

  /** Requests made for one pod, by verb. */
  forPod(pod: string): Record<string, number> {
    return Object.fromEntries(this.byPod.get(pod) ?? []);
  }

  /** Total requests made for one pod. */
  totalForPod(pod: string): number {
    let n = 0;
    for (const v of this.byPod.get(pod)?.values() ?? []) n += v;
    return n;
  }

  /** Namespace-level requests (the shared watch's list and watch calls). */
  sharedRequests(): Record<string, number> {
    return Object.fromEntries(this.shared);
  }

  forget(pod: string): void {
    this.byPod.delete(pod);
  }
}

export interface KubeApiOptions extends RetryOptions {
  logger: Logger;
  counter?: RequestCounter;
}

/**
 * CoreV1 calls with retries; see the module doc. Build it with {@link KubeApi.create}, which
 * loads `@kubernetes/client-node` first (the constructor needs it loaded).
 */
export class KubeApi {
  readonly core: CoreV1Api;
  readonly counter: RequestCounter;
  private readonly logger: Logger;
  private readonly retry: Required<RetryOptions>;

  constructor(
    readonly kubeConfig: KubeConfig,
    opts: KubeApiOptions,
  ) {
    this.core = kubeConfig.makeApiClient(kubeClient().CoreV1Api);
    this.logger = opts.logger;
    this.counter = opts.counter ?? new RequestCounter();
    this.retry = {
      maxAttempts: opts.maxAttempts ?? 6,
      baseDelayMs: opts.baseDelayMs ?? 200,
      maxDelayMs: opts.maxDelayMs ?? 10_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
    };
  }

  /** Loads the client module (once per process), then builds the API. */
  static async create(kubeConfig: KubeConfig, opts: KubeApiOptions): Promise<KubeApi> {
    await loadKubeClient();
    return new KubeApi(kubeConfig, opts);
  }

  /** Backoff before try `attempt` (1-based count of failures so far). */
  backoffMs(attempt: number, retryAfterMs: number | null): number {
    if (retryAfterMs !== null) return Math.min(retryAfterMs, this.retry.maxDelayMs);
    const exp = this.retry.baseDelayMs * 2 ** (attempt - 1);
    return Math.min(this.retry.maxDelayMs, exp / 2 + Math.random() * (exp / 2));
  }

  /** Runs `fn` with retries, counting each HTTP request against `pod` (null: shared). */
  async call<T>(verb: string, pod: string | null, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      this.counter.count(verb, pod);
      try {
        return await withTimeout(fn(), this.retry.requestTimeoutMs, verb);
      } catch (e) {
        const st = errorStatus(e);
        if (!isRetryable(e) || attempt >= this.retry.maxAttempts || signal?.aborted) {
          throw new KubeApiError(`${verb}${pod ? ` ${pod}` : ''}`, st.status, st.reason, st.message);
        }
        const wait = this.backoffMs(attempt, st.retryAfterMs);
        this.logger.warn({ verb, pod, status: st.status, reason: st.reason, attempt, wait_ms: Math.round(wait) }, `Kubernetes API ${verb} failed (${st.status ?? st.message}); retrying`);
        await sleep(wait, signal);
      }
    }
  }

  createPod(namespace: string, body: V1Pod, signal?: AbortSignal): Promise<V1Pod> {
    return this.call('create', body.metadata!.name!, () => this.core.createNamespacedPod({ namespace, body }), signal);
  }

  /** The pod, or null when it does not exist. */
  async readPod(namespace: string, name: string, signal?: AbortSignal): Promise<V1Pod | null> {
    try {
      return await this.call('read', name, () => this.core.readNamespacedPod({ namespace, name }), signal);
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return null;
      throw e;
    }
  }

  listPods(namespace: string, labelSelector: string, pod: string | null = null, signal?: AbortSignal): Promise<V1PodList> {
    return this.call('list', pod, () => this.core.listNamespacedPod({ namespace, labelSelector }), signal);
  }

  /** Deletes the pod; true if it was there. Background propagation, so we never wait for the kubelet. */
  async deletePod(namespace: string, name: string, gracePeriodSeconds?: number): Promise<boolean> {
    try {
      await this.call('delete', name, () => this.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds, propagationPolicy: 'Background' }));
      return true;
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return false;
      throw e;
    }
  }

  /** Events about one pod, oldest first; empty on error (events are context, never decisive). */
  async podEvents(namespace: string, name: string): Promise<CoreV1Event[]> {
    try {
      const list = await this.call('events', name, () =>
        this.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${name}` }),
      );
      return list.items;
    } catch (e) {
      this.logger.warn({ pod: name, err: (e as Error).message }, 'could not list pod events');
      return [];
    }
  }

  /** A node (for its GPU model label); null on any error, since it is only a lineage fact. */
  async readNode(name: string, pod: string): Promise<V1Node | null> {
    try {
      return await this.call('node', pod, () => this.core.readNode({ name }));
    } catch {
      return null;
    }
  }
}
