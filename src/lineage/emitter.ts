/**
 * Sends OpenLineage events off the task's hot path: `emit()` only puts the event in a bounded
 * in-memory queue (O(1), never blocks, never throws); one background loop delivers events in
 * order through the transport, with retries and backoff. A full queue drops and counts; a
 * receiver that stays down costs each event one attempt, and is logged once per outage.
 */
import type { Logger } from 'pino';
import type { RunEvent } from './openlineage.ts';
import { ConsoleTransport, FileTransport, HttpTransport, TransportError, type LineageTransport } from './transports.ts';

export interface EmitterStats {
  /** Events handed to `emit()`. */
  emitted: number;
  /** Events the transport accepted. */
  delivered: number;
  /** Events refused because the queue was full (or the emitter closed). */
  dropped: number;
  /** Events given up on after their retries. */
  failed: number;
  /** Events waiting in the queue or being sent. */
  queued: number;
}

export interface EmitterOptions {
  logger: Logger;
  /** Queue capacity (default 10000). */
  queueSize?: number;
  /** Extra attempts for a retryable failure while the receiver is healthy (default 3). */
  retries?: number;
  /** First retry delay, doubled each attempt (default 200 ms). */
  backoffMs?: number;
  /** Cap on one retry delay (default 5000 ms). */
  maxBackoffMs?: number;
}

/** Bounded FIFO queue with a background delivery loop. See the module doc. */
export class LineageEmitter {
  private readonly buf: (RunEvent | undefined)[];
  private head = 0;
  private size = 0;
  private inFlight = false;
  private running = false;
  private closed = false;
  private outage = false;
  private failedInOutage = 0;
  private readonly counters = { emitted: 0, delivered: 0, dropped: 0, failed: 0 };
  private idleWaiters: (() => void)[] = [];
  private readonly sleepAbort = new AbortController();
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly logger: Logger;

  constructor(
    private readonly transport: LineageTransport | null,
    opts: EmitterOptions,
  ) {
    const cap = opts.queueSize ?? 10_000;
    if (!Number.isInteger(cap) || cap < 1) throw new Error(`OpenLineage queue size must be a whole number >= 1, got ${cap}; fix PODFLOW_OPENLINEAGE_QUEUE_SIZE`);
    this.buf = new Array(cap);
    this.retries = opts.retries ?? 3;
    this.backoffMs = opts.backoffMs ?? 200;
    this.maxBackoffMs = opts.maxBackoffMs ?? 5000;
    this.logger = opts.logger;
  }

  /** False when no transport is configured: `emit()` then does nothing. */
  get enabled(): boolean {
    return this.transport !== null;
  }

  /** The configured transport's description, or `none`. */
  get description(): string {
    return this.transport?.description ?? 'none';
  }

  /** Queue one event for delivery. Synchronous, O(1); drops (and counts) when the queue is full. */
  emit(event: RunEvent): void {
    if (!this.transport) return;
    this.counters.emitted++;
    if (this.closed || this.size === this.buf.length) {
      this.counters.dropped++;
      return;
    }
    this.buf[(this.head + this.size) % this.buf.length] = event;
    this.size++;
    if (!this.running) {
      this.running = true;
      // start the loop on a later turn: the caller (a task finishing) must not pay for I/O
      setImmediate(() => void this.loop());
    }
  }

  stats(): EmitterStats {
    return { ...this.counters, queued: this.size + (this.inFlight ? 1 : 0) };
  }

  private shift(): RunEvent {
    const ev = this.buf[this.head] as RunEvent;
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) % this.buf.length;
    this.size--;
    return ev;
  }

  private async loop(): Promise<void> {
    try {
      while (this.size > 0) {
        const ev = this.shift();
        this.inFlight = true;
        try {
          await this.deliver(ev);
        } finally {
          this.inFlight = false;
        }
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.sleepAbort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      t.unref();
      const signal = this.sleepAbort.signal;
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private async deliver(ev: RunEvent): Promise<void> {
    const transport = this.transport as LineageTransport;
    // during an outage every event gets one attempt, so a dead receiver cannot back the queue up for long
    const attempts = this.outage || this.closed ? 1 : 1 + this.retries;
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      try {
        await transport.send(ev);
        this.counters.delivered++;
        if (this.outage) {
          this.logger.info(
            { transport: transport.description, failed_during_outage: this.failedInOutage },
            `OpenLineage receiver (${transport.description}) is reachable again; ${this.failedInOutage} event(s) were not delivered during the outage`,
          );
          this.outage = false;
        }
        return;
      } catch (err) {
        last = err;
        const retryable = !(err instanceof TransportError) || err.retryable;
        if (!retryable || i === attempts - 1 || this.closed) break;
        const delay = Math.min(this.maxBackoffMs, Math.max(this.backoffMs * 2 ** i, err instanceof TransportError ? (err.retryAfterMs ?? 0) : 0));
        await this.sleep(delay);
      }
    }
    this.counters.failed++;
    if (!this.outage) {
      this.outage = true;
      this.failedInOutage = 0;
      this.logger.warn(
        { transport: transport.description, err: last instanceof Error ? last.message : String(last) },
        `OpenLineage events cannot be delivered (${transport.description}): ${last instanceof Error ? last.message : String(last)}. ` +
          'Tasks are not affected; undelivered events are counted as failed (lineage stats) until the receiver answers again. ' +
          'Check PODFLOW_OPENLINEAGE_URL / PODFLOW_OPENLINEAGE_FILE, or set PODFLOW_OPENLINEAGE_TRANSPORT=none.',
      );
    }
    this.failedInOutage++;
  }

  /** Wait until every queued event was delivered or given up on; false when `timeoutMs` passed first. */
  flush(timeoutMs = 5000): Promise<boolean> {
    if (!this.running && this.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      t.unref();
      const done = () => {
        clearTimeout(t);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  /**
   * Stop accepting events, give queued ones up to `timeoutMs` to be delivered (retry delays are
   * cut short), count what is left as dropped, and close the transport.
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sleepAbort.abort();
    const drained = await this.flush(timeoutMs);
    if (!drained) {
      this.counters.dropped += this.size;
      while (this.size > 0) this.shift();
      this.logger.warn({ transport: this.description }, `OpenLineage: gave up on queued events after ${timeoutMs} ms at shutdown`);
    }
    await this.transport?.close().catch(() => {});
  }
}

/** OpenLineage settings read from the environment. */
export interface OpenLineageConfig {
  transport: 'none' | 'http' | 'file' | 'console';
  url: string | undefined;
  apiKey: string | undefined;
  file: string | undefined;
  namespace: string;
  queueSize: number;
  timeoutMs: number;
  retries: number;
}

/** The environment variables of lineage emission, with defaults, for `podflow --help` (append to ENV_VARS). */
export const OPENLINEAGE_ENV_VARS = [
  { name: 'PODFLOW_OPENLINEAGE_TRANSPORT', default: 'none', description: 'where OpenLineage events go: none, http, file or console' },
  { name: 'PODFLOW_OPENLINEAGE_URL', default: '(none)', description: 'http transport: receiver base URL (events POSTed to <url>/api/v1/lineage, Marquez-compatible)' },
  { name: 'PODFLOW_OPENLINEAGE_API_KEY', default: '(none)', description: 'http transport: sent as Authorization: Bearer <key>' },
  { name: 'PODFLOW_OPENLINEAGE_FILE', default: '(none)', description: 'file transport: NDJSON file events are appended to' },
  { name: 'PODFLOW_OPENLINEAGE_NAMESPACE', default: 'podflow', description: 'OpenLineage job namespace' },
  { name: 'PODFLOW_OPENLINEAGE_QUEUE_SIZE', default: '10000', description: 'events held in memory at most; beyond, new events are dropped and counted' },
  { name: 'PODFLOW_OPENLINEAGE_TIMEOUT_MS', default: '5000', description: 'http transport: per-request timeout' },
  { name: 'PODFLOW_OPENLINEAGE_RETRIES', default: '3', description: 'http transport: retries of a failed event while the receiver is healthy' },
];

function envInt(env: Record<string, string | undefined>, name: string, dflt: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}=${JSON.stringify(raw)} is not a whole number >= ${min}; unset it to use the default ${dflt}`);
  return n;
}

/** Read and check the PODFLOW_OPENLINEAGE_* variables; throws with the fix when they do not fit together. */
export function openLineageConfigFromEnv(env: Record<string, string | undefined>): OpenLineageConfig {
  const t = (env.PODFLOW_OPENLINEAGE_TRANSPORT || 'none').toLowerCase();
  if (t !== 'none' && t !== 'http' && t !== 'file' && t !== 'console') {
    throw new Error(`PODFLOW_OPENLINEAGE_TRANSPORT=${JSON.stringify(env.PODFLOW_OPENLINEAGE_TRANSPORT)} is not one of none, http, file, console`);
  }
  const cfg: OpenLineageConfig = {
    transport: t,
    url: env.PODFLOW_OPENLINEAGE_URL || undefined,
    apiKey: env.PODFLOW_OPENLINEAGE_API_KEY || undefined,
    file: env.PODFLOW_OPENLINEAGE_FILE || undefined,
    namespace: env.PODFLOW_OPENLINEAGE_NAMESPACE || 'podflow',
    queueSize: envInt(env, 'PODFLOW_OPENLINEAGE_QUEUE_SIZE', 10_000, 1),
    timeoutMs: envInt(env, 'PODFLOW_OPENLINEAGE_TIMEOUT_MS', 5000, 1),
    retries: envInt(env, 'PODFLOW_OPENLINEAGE_RETRIES', 3, 0),
  };
  if (t === 'http' && !cfg.url) {
    throw new Error('PODFLOW_OPENLINEAGE_TRANSPORT=http needs PODFLOW_OPENLINEAGE_URL (e.g. http://marquez:5000); set it, or set PODFLOW_OPENLINEAGE_TRANSPORT=none');
  }
  if (t === 'file' && !cfg.file) {
    throw new Error('PODFLOW_OPENLINEAGE_TRANSPORT=file needs PODFLOW_OPENLINEAGE_FILE (e.g. ./.podflow/openlineage.ndjson); set it, or set PODFLOW_OPENLINEAGE_TRANSPORT=none');
  }
  return cfg;
}

/** The transport a config names, or null for `none`. */
export function createTransport(cfg: OpenLineageConfig, logger: Logger): LineageTransport | null {
  switch (cfg.transport) {
    case 'http':
      return new HttpTransport({ url: cfg.url as string, apiKey: cfg.apiKey, timeoutMs: cfg.timeoutMs });
    case 'file':
      return new FileTransport(cfg.file as string);
    case 'console':
      return new ConsoleTransport(logger);
    default:
      return null;
  }
}

/** An emitter configured from PODFLOW_OPENLINEAGE_* (off unless a transport is set). */
export function createEmitterFromEnv(env: Record<string, string | undefined>, logger: Logger, overrides: Partial<EmitterOptions> = {}): { emitter: LineageEmitter; config: OpenLineageConfig } {
  const config = openLineageConfigFromEnv(env);
  const emitter = new LineageEmitter(createTransport(config, logger), { logger, queueSize: config.queueSize, retries: config.retries, ...overrides });
  return { emitter, config };
}
