/**
 * Follows the main container's log into the task log, resuming after a cut stream.
 *
 * Lines are asked for with timestamps. After a cut the stream is reopened with `sinceTime`
 * (floored to the second, so it overlaps), and the overlap is dropped: lines older than the
 * last one emitted, and, at exactly the last timestamp, as many copies of each text as were
 * already emitted. The log never decides the outcome; when it ends is up to the pod status.
 */
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import type { KubeApi } from './kube-api.ts';
import type { LogCursor, LogCursorStore } from './log-cursor-store.ts';

export interface LogStreamerOptions {
  api: KubeApi;
  namespace: string;
  pod: string;
  container: string;
  /** Receives each line without its timestamp. */
  onLine(line: string): void;
  /** True once the main container has terminated (from the shared watch). */
  isTerminated(): boolean;
  logger: Logger;
  /** Delay before reopening a cut or refused stream (default 200 ms, doubling to 3 s). */
  reconnectDelayMs?: number;
  /** Keeps the position across workers (re-attach resumes instead of repeating). */
  cursorStore?: LogCursorStore;
  /** Least time between two cursor saves while lines flow (default 1 s). */
  cursorSaveIntervalMs?: number;
}

/** Nanoseconds since the epoch of an RFC 3339 (nano) timestamp, or null. */
export function timestampNanos(ts: string): bigint | null {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return null;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return null;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/** Splits "2026-01-01T00:00:00.123456789Z text" into its timestamp and text. */
export function splitTimestamp(line: string): { ns: bigint | null; text: string } {
  const sp = line.indexOf(' ');
  const head = sp < 0 ? line : line.slice(0, sp);
  const ns = timestampNanos(head);
  if (ns === null) return { ns: null, text: line };
  return { ns, text: sp < 0 ? '' : line.slice(sp + 1) };
}

/** Drops the overlap a resumed stream replays; see the module doc. */
export class LineDeduper {
  private lastNs: bigint | null = null;
  private emittedAtLast = new Map<string, number>();
  private replayedAtLast = new Map<string, number>();
  dropped = 0;

  /** The position, for a later worker to resume from; null before the first timestamped line. */
  cursor(): LogCursor | null {
    if (this.lastNs === null) return null;
    return { last_ns: this.lastNs.toString(), at_last: [...this.emittedAtLast] };
  }

  /** Continues from a saved position: older lines, and the saved lines at its timestamp, are dropped. */
  restore(c: LogCursor): void {
    this.lastNs = BigInt(c.last_ns);
    this.emittedAtLast = new Map(c.at_last);
    this.replayedAtLast = new Map();
  }

  /** Call when a new stream starts (its replay of the boundary is counted afresh). */
  newStream(): void {
    this.replayedAtLast = new Map();
  }

  /** RFC 3339 second floor of the last timestamp emitted, for `sinceTime`. */
  sinceTime(): string | undefined {
    if (this.lastNs === null) return undefined;
    return new Date(Number(this.lastNs / 1_000_000n)).toISOString().replace(/\.\d+Z$/, 'Z');
  }

  /** Whether to emit this line. */
  accept(ns: bigint | null, text: string): boolean {
    if (ns === null) return true;
    if (this.lastNs !== null && ns < this.lastNs) {
      this.dropped++;
      return false;
    }
    if (this.lastNs !== null && ns === this.lastNs) {
      const replayed = this.replayedAtLast.get(text) ?? 0;
      if (replayed < (this.emittedAtLast.get(text) ?? 0)) {
        this.replayedAtLast.set(text, replayed + 1);
        this.dropped++;
        return false;
      }
      this.emittedAtLast.set(text, (this.emittedAtLast.get(text) ?? 0) + 1);
      // Count it as replayed too, so a later copy in this same stream is judged against it.
      this.replayedAtLast.set(text, (this.replayedAtLast.get(text) ?? 0) + 1);
      return true;
    }
    this.lastNs = ns;
    this.emittedAtLast = new Map([[text, 1]]);
    this.replayedAtLast = new Map([[text, 1]]);
    return true;
  }
}

type StreamEnd = 'end' | 'cut' | 'refused' | 'gone' | 'aborted';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Follows one container's log until the container ends, the pod is gone, or stop() is called. */
export class LogStreamer {
  readonly stats = { requests: 0, cuts: 0, lines: 0, duplicatesDropped: 0 };
  private readonly dedupe = new LineDeduper();
  private current: http.ClientRequest | null = null;
  private stopped = false;
  private draining = false;
  private loop: Promise<void> | null = null;

  constructor(private readonly o: LogStreamerOptions) {}

  private lastSave = 0;
  private saving: Promise<void> = Promise.resolve();

  /** Starts following (once). */
  start(): void {
    this.loop ??= this.restore()
      .then(() => this.run())
      .catch((e) => this.o.logger.warn({ err: (e as Error).message, pod: this.o.pod }, 'log stream gave up'));
  }

  private async restore(): Promise<void> {
    const store = this.o.cursorStore;
    if (!store) return;
    try {
      const c = await store.get(this.o.namespace, this.o.pod);
      if (c) this.dedupe.restore(c);
    } catch (e) {
      // Without the cursor the log may repeat lines; it never loses any.
      this.o.logger.warn({ err: (e as Error).message, pod: this.o.pod }, 'could not read the log cursor');
    }
  }

  /** Saves the position now (serialized with earlier saves). */
  saveCursor(): Promise<void> {
    const store = this.o.cursorStore;
    const c = this.dedupe.cursor();
    if (!store || !c) return this.saving;
    this.lastSave = Date.now();
    this.saving = this.saving
      .then(() => store.set(this.o.namespace, this.o.pod, c))
      .catch((e) => this.o.logger.warn({ err: (e as Error).message, pod: this.o.pod }, 'could not save the log cursor'));
    return this.saving;
  }

  /** Forgets the saved position (the pod is done). */
  async dropCursor(): Promise<void> {
    const store = this.o.cursorStore;
    if (!store) return;
    await this.saving;
    await store.delete(this.o.namespace, this.o.pod).catch(() => undefined);
  }

  /**
   * Called once the pod's end is known: waits up to `graceMs` for the stream to end by
   * itself (the server closes a follow stream when the container ends), then cuts it and
   * fetches whatever was not yet read, so no line written before the end is lost.
   */
  async finish(graceMs = 5000): Promise<void> {
    if (!this.loop) {
      this.start();
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.loop!.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.stopped = true;
      this.current?.destroy();
      await this.loop;
      // One bounded read (no follow) for the tail.
      this.draining = true;
      await this.once(false).catch(() => undefined);
    }
    await this.dropCursor();
  }

  /**
   * Stops at once (abort or shutdown); lines not yet read are not fetched. With `keepCursor`
   * (graceful shutdown) the position is saved for the worker that re-attaches.
   */
  async stop(keepCursor = false): Promise<void> {
    this.stopped = true;
    this.current?.destroy();
    if (keepCursor) await this.saveCursor();
    else await this.dropCursor();
  }

  private async run(): Promise<void> {
    let failures = 0;
    const base = this.o.reconnectDelayMs ?? 200;
    while (!this.stopped) {
      const end = await this.once(true);
      if (this.stopped || end === 'gone' || end === 'aborted') return;
      if (end === 'end') {
        // A clean end is the container ending, or a proxy/server closing early: the status
        // tells which, and it may trail the stream by a moment.
        for (let waited = 0; !this.o.isTerminated() && waited < 250 && !this.stopped; waited += 10) await sleep(10);
        if (this.o.isTerminated()) {
          // A close at the very end looks like a normal end; one bounded read makes sure.
          await this.once(false);
          return;
        }
      }
      // A container that ended without ever starting has no log to give.
      if (end === 'refused' && this.o.isTerminated() && failures >= 2) return;
      if (end === 'cut' || end === 'end') this.stats.cuts++;
      if (end === 'refused') failures++;
      else failures = 0;
      await sleep(end === 'refused' ? Math.min(3000, base * 2 ** Math.min(failures - 1, 4)) : base);
    }
  }

  private async once(follow: boolean): Promise<StreamEnd> {
    const { api, namespace, pod, container } = this.o;
    const cluster = api.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster; set its current-context');
    const url = new URL(`${cluster.server.replace(/\/$/, '')}/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log`);
    url.searchParams.set('container', container);
    url.searchParams.set('timestamps', 'true');
    if (follow) url.searchParams.set('follow', 'true');
    const since = this.dedupe.sinceTime();
    if (since) url.searchParams.set('sinceTime', since);
    const opts: https.RequestOptions = {};
    await api.kubeConfig.applyToHTTPSOptions(opts);
    api.counter.count('log', pod);
    this.stats.requests++;
    this.dedupe.newStream();
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<StreamEnd>((resolve) => {
      let settled = false;
      const settle = (e: StreamEnd) => {
        if (!settled) {
          settled = true;
          this.current = null;
          resolve(e);
        }
      };
      const req = mod.request(url, { ...opts, method: 'GET' }, (res) => {
        if (res.statusCode !== 200) {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => {
            if (res.statusCode === 404) settle('gone');
            else {
              this.o.logger.debug({ pod, status: res.statusCode, body: body.slice(0, 300) }, 'log stream refused');
              settle('refused');
            }
          });
          res.on('error', () => settle('refused'));
          return;
        }
        let partial = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const parts = (partial + chunk).split('\n');
          partial = parts.pop()!;
          for (const line of parts) this.emit(line);
        });
        res.on('end', () => {
          // A complete response: its last line is whole even without a newline.
          if (partial) this.emit(partial);
          settle('end');
        });
        // A cut drops the partial line: the resumed stream sends it again (it is newer than the last emitted).
        res.on('aborted', () => settle(this.stopped ? 'aborted' : 'cut'));
        res.on('error', () => settle(this.stopped ? 'aborted' : 'cut'));
        res.on('close', () => settle(this.stopped ? 'aborted' : 'cut'));
      });
      req.on('error', () => settle(this.stopped ? 'aborted' : 'refused'));
      // A bounded read that hangs must not hold the try; a quiet follow stream is normal.
      if (!follow) req.setTimeout(30_000, () => req.destroy());
      this.current = req;
      req.end();
    });
  }

  private emit(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const { ns, text } = splitTimestamp(line);
    if (this.stopped && !this.draining) return;
    if (this.dedupe.accept(ns, text)) {
      this.stats.lines++;
      this.o.onLine(text);
      if (this.o.cursorStore && Date.now() - this.lastSave >= (this.o.cursorSaveIntervalMs ?? 1000)) void this.saveCursor();
    } else this.stats.duplicatesDropped++;
  }
}
