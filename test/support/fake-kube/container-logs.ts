import { nowNs, rfc3339NanoFixed } from './clock.ts';

export interface LogLine {
  ns: bigint;
  /** Fixed-width RFC 3339 nanosecond stamp, the prefix the kubelet writes with `timestamps=true`. */
  timestamp: string;
  text: string;
}

/** What one follower is told: a new line, or that the container stopped writing. */
export type LogSignal = { line: LogLine } | { end: true };

/**
 * Everything one container "printed", in order, with the stamp the runtime recorded, and the
 * followers waiting for more. Closed when the container terminates.
 */
export class ContainerLog {
  readonly lines: LogLine[] = [];
  closed = false;
  private readonly followers = new Set<(signal: LogSignal) => void>();

  write(text: string): void {
    if (this.closed) return;
    for (const part of text.split('\n')) {
      const ns = nowNs();
      const line = { ns, timestamp: rfc3339NanoFixed(ns), text: part };
      this.lines.push(line);
      for (const f of [...this.followers]) f({ line });
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const f of [...this.followers]) f({ end: true });
    this.followers.clear();
  }

  follow(listener: (signal: LogSignal) => void): () => void {
    this.followers.add(listener);
    return () => this.followers.delete(listener);
  }
}

/** Container logs keyed by pod uid and container name, so a re-created pod starts empty. */
export class LogStore {
  private readonly logs = new Map<string, ContainerLog>();

  of(podUid: string, container: string): ContainerLog {
    const key = `${podUid}/${container}`;
    let log = this.logs.get(key);
    if (!log) {
      log = new ContainerLog();
      this.logs.set(key, log);
    }
    return log;
  }

  /** Ends every follower of the pod's containers (the pod is gone). */
  closePod(podUid: string): void {
    for (const [key, log] of this.logs) if (key.startsWith(`${podUid}/`)) log.close();
  }

  closeAll(): void {
    for (const log of this.logs.values()) log.close();
  }
}
