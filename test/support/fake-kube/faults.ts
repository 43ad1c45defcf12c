/**
 * Faults injected on the fake API itself: canned error statuses, slow answers, and cut log
 * streams. Rules match a request by method (`'*'` for any) and a RegExp tested against the path
 * without the query string and, failing that, against the path with it.
 */

interface FailRule {
  method: string;
  path: RegExp;
  statuses: number[];
  retryAfterSeconds?: number;
}

interface SlowRule {
  method: string;
  path: RegExp;
  ms: number;
  remaining: number;
}

export interface InjectedFailure {
  status: number;
  retryAfterSeconds?: number;
}

function matches(rule: { method: string; path: RegExp }, method: string, pathname: string, fullPath: string): boolean {
  if (rule.method !== '*' && rule.method.toUpperCase() !== method.toUpperCase()) return false;
  // A /g or /y RegExp keeps lastIndex between tests; reset it so every request is judged alike.
  rule.path.lastIndex = 0;
  if (rule.path.test(pathname)) return true;
  rule.path.lastIndex = 0;
  return rule.path.test(fullPath);
}

export class Faults {
  private readonly failRules: FailRule[] = [];
  private readonly slowRules: SlowRule[] = [];
  private logCuts: Array<{ afterLines: number }> = [];

  failNext(method: string, path: RegExp, statuses: number[], retryAfterSeconds?: number): void {
    for (const status of statuses) {
      if (!Number.isInteger(status) || status < 400 || status > 599) {
        throw new Error(`fake-kube failNext: status ${status} is not an HTTP error code (use 409, 429, 500, 503, ...)`);
      }
    }
    this.failRules.push({ method, path, statuses: [...statuses], retryAfterSeconds });
  }

  slow(method: string, path: RegExp, ms: number, count: number): void {
    this.slowRules.push({ method, path, ms, remaining: count });
  }

  /** Arms `streams` cuts; each applies to one follow-log stream, open or yet to open. */
  cutLogStreams(afterLines: number, streams: number): void {
    for (let i = 0; i < streams; i++) this.logCuts.push({ afterLines });
  }

  /** The failure this request must get, consuming it; undefined when it should be served. */
  takeFailure(method: string, pathname: string, fullPath: string): InjectedFailure | undefined {
    const rule = this.failRules.find((r) => r.statuses.length > 0 && matches(r, method, pathname, fullPath));
    if (!rule) return undefined;
    const status = rule.statuses.shift()!;
    return { status, retryAfterSeconds: rule.retryAfterSeconds };
  }

  /** Milliseconds to hold this request before serving it (0 for none), consuming one use. */
  takeDelay(method: string, pathname: string, fullPath: string): number {
    const rule = this.slowRules.find((r) => r.remaining > 0 && matches(r, method, pathname, fullPath));
    if (!rule) return 0;
    rule.remaining--;
    return rule.ms;
  }

  /** The next armed cut for a follow stream, consuming it: the stream ends after that many more lines. */
  takeLogCut(): number | undefined {
    return this.logCuts.shift()?.afterLines;
  }

  hasLogCuts(): boolean {
    return this.logCuts.length > 0;
  }

  clear(): void {
    this.failRules.length = 0;
    this.slowRules.length = 0;
    this.logCuts = [];
  }
}
