/**
 * Where a pod's log stream got to, kept in Redis so a worker that re-attaches to a live pod
 * (after a restart or a graceful shutdown) resumes the task log where the previous worker
 * stopped instead of repeating it.
 */
import type { Redis } from 'ioredis';

/** The deduper's position: last timestamp emitted and the lines emitted at exactly it. */
export interface LogCursor {
  /** Nanoseconds since the epoch, as a decimal string. */
  last_ns: string;
  /** [line, times emitted] at last_ns. */
  at_last: [string, number][];
}

export interface LogCursorStore {
  get(namespace: string, pod: string): Promise<LogCursor | null>;
  set(namespace: string, pod: string, cursor: LogCursor): Promise<void>;
  delete(namespace: string, pod: string): Promise<void>;
}

/** Cursors under `<prefix>kube:log-cursor:<namespace>/<pod>`, expiring after `ttlSeconds` (default 7 days). */
export class RedisLogCursorStore implements LogCursorStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlSeconds = 7 * 24 * 3600,
  ) {}

  private key(namespace: string, pod: string): string {
    return `${this.prefix}kube:log-cursor:${namespace}/${pod}`;
  }

  async get(namespace: string, pod: string): Promise<LogCursor | null> {
    const raw = await this.redis.get(this.key(namespace, pod));
    if (!raw) return null;
    try {
      const c = JSON.parse(raw) as LogCursor;
      return typeof c.last_ns === 'string' && Array.isArray(c.at_last) ? c : null;
    } catch {
      return null;
    }
  }

  async set(namespace: string, pod: string, cursor: LogCursor): Promise<void> {
    await this.redis.set(this.key(namespace, pod), JSON.stringify(cursor), 'EX', this.ttlSeconds);
  }

  async delete(namespace: string, pod: string): Promise<void> {
    await this.redis.del(this.key(namespace, pod));
  }
}
