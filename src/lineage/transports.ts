/**
 * Where OpenLineage events go: an HTTP receiver (Marquez-compatible `POST /api/v1/lineage`),
 * an NDJSON file, or the structured log. A transport sends one event and throws a
 * TransportError on failure; retries, backoff and counting belong to the emitter.
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { RunEvent } from './openlineage.ts';

/** A failed delivery; `retryable` says whether sending the same event again may succeed. */
export class TransportError extends Error {
  readonly code = 'OPENLINEAGE_TRANSPORT_ERROR';
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    /** From a Retry-After header, when the receiver sent one. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface LineageTransport {
  /** For logs: `http http://marquez:5000/api/v1/lineage`, `file /var/log/ol.ndjson`, `console`. */
  readonly description: string;
  send(event: RunEvent): Promise<void>;
  close(): Promise<void>;
}

export interface HttpTransportOptions {
  /** Base URL of the receiver (`http://marquez:5000`) or the full endpoint (`…/api/v1/lineage`). */
  url: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Per-request timeout (default 5000 ms). */
  timeoutMs?: number;
}

function retryAfterMs(h: string | null): number | undefined {
  if (!h) return undefined;
  const s = Number(h);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const t = Date.parse(h);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

/** POSTs each event as JSON to `<url>/api/v1/lineage` (Marquez and compatible receivers). */
export class HttpTransport implements LineageTransport {
  readonly description: string;
  private readonly endpoint: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(opts: HttpTransportOptions) {
    let base: URL;
    try {
      base = new URL(opts.url);
    } catch {
      throw new Error(`PODFLOW_OPENLINEAGE_URL=${JSON.stringify(opts.url)} is not a URL; set it to the receiver's base URL, e.g. http://marquez:5000`);
    }
    const path = base.pathname.replace(/\/+$/, '');
    base.pathname = path.endsWith('/api/v1/lineage') ? path : `${path}/api/v1/lineage`;
    this.headers = { 'content-type': 'application/json' };
    // fetch refuses URLs with credentials: move user:password into a Basic header, and keep them out of logs
    if (base.username || base.password) {
      const basic = Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64');
      this.headers.authorization = `Basic ${basic}`;
      base.username = '';
      base.password = '';
    }
    if (opts.apiKey) this.headers.authorization = `Bearer ${opts.apiKey}`;
    this.endpoint = base.href;
    this.description = `http ${this.endpoint}`;
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }

  async send(event: RunEvent): Promise<void> {
    let res: Response;
    try {
      res = await fetch(this.endpoint, {
        method: 'POST',
        headers: this.headers,
        body: JSON.stringify(event),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (e.cause?.code ?? e.message);
      throw new TransportError(`POST ${this.endpoint} failed: ${why}`, true);
    }
    // drain the body so the connection can be reused
    const body = await res.text().catch(() => '');
    if (res.ok) return;
    const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
    const hint = res.status === 401 || res.status === 403 ? ' (check PODFLOW_OPENLINEAGE_API_KEY)' : '';
    throw new TransportError(
      `POST ${this.endpoint} answered ${res.status}${hint}: ${body.slice(0, 200)}`,
      retryable,
      res.status,
      retryAfterMs(res.headers.get('retry-after')),
    );
  }

  async close(): Promise<void> {}
}

/** Appends each event as one JSON line to a file (created with its folder when missing). */
export class FileTransport implements LineageTransport {
  readonly description: string;
  private handle: FileHandle | null = null;

  constructor(private readonly path: string) {
    this.description = `file ${path}`;
  }

  async send(event: RunEvent): Promise<void> {
    try {
      if (!this.handle) {
        await mkdir(dirname(this.path), { recursive: true });
        this.handle = await open(this.path, 'a');
      }
      await this.handle.appendFile(JSON.stringify(event) + '\n');
    } catch (err) {
      throw new TransportError(`appending to ${this.path} failed: ${(err as Error).message}; check PODFLOW_OPENLINEAGE_FILE and its folder's permissions`, true);
    }
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = null;
  }
}

/** Logs each event through pino at info level, under the `openlineage` field. */
export class ConsoleTransport implements LineageTransport {
  readonly description = 'console';
  constructor(private readonly logger: Logger) {}

  async send(event: RunEvent): Promise<void> {
    this.logger.info({ openlineage: event }, `openlineage ${event.eventType} ${event.job.name}`);
  }

  async close(): Promise<void> {}
}
