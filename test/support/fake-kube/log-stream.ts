import type { ServerResponse } from 'node:http';
import { nowNs, parseRfc3339Ns } from './clock.ts';
import type { LogLine, LogStore } from './container-logs.ts';
import { badRequest } from './status.ts';
import type { PodJson } from './wire.ts';

export interface LogQuery {
  container: string | null;
  follow: boolean;
  timestamps: boolean;
  previous: boolean;
  sinceTime: string | null;
  sinceSeconds: string | null;
  tailLines: string | null;
  limitBytes: string | null;
}

const truthy = (v: string | null): boolean => v === 'true' || v === '1';

export function parseLogQuery(params: URLSearchParams): LogQuery {
  return {
    container: params.get('container'),
    follow: truthy(params.get('follow')),
    timestamps: truthy(params.get('timestamps')),
    previous: truthy(params.get('previous')),
    sinceTime: params.get('sinceTime'),
    sinceSeconds: params.get('sinceSeconds'),
    tailLines: params.get('tailLines'),
    limitBytes: params.get('limitBytes'),
  };
}

/** A follow stream the test can cut: it ends after `cutAfter` more lines once armed. */
export interface FollowHandle {
  arm(afterLines: number, mode: 'end' | 'abort'): void;
  armed: boolean;
}

/**
 * Picks the container a log request is for and checks it has output to serve, answering 400
 * with the API server's and kubelet's wording otherwise (no container named in a multi-container
 * pod, unknown container, no node yet, still waiting, never ran, no previous instance).
 */
export function resolveLogContainer(pod: PodJson, query: LogQuery): string {
  const name = pod.metadata?.name ?? '';
  const containers = (pod.spec?.containers ?? []).map((c) => c.name);
  const container = query.container || (containers.length === 1 ? containers[0] : undefined);
  if (!container) throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${containers.join(' ')}]`);
  if (!containers.includes(container)) throw badRequest(`container ${container} is not valid for pod ${name}`);
  if (!pod.spec?.nodeName) throw badRequest(`pod ${name} does not have a host assigned`);
  if (query.previous) throw badRequest(`previous terminated container "${container}" in pod "${name}" not found`);
  const state = pod.status?.containerStatuses?.find((s) => s.name === container)?.state;
  const waiting = state?.waiting?.reason ?? (state ? undefined : 'ContainerCreating');
  if (waiting === 'ErrImagePull' || waiting === 'ImagePullBackOff') {
    throw badRequest(`container "${container}" in pod "${name}" is waiting to start: trying and failing to pull image`);
  }
  if (waiting) throw badRequest(`container "${container}" in pod "${name}" is waiting to start: ${waiting}`);
  if (state?.terminated && !state.terminated.startedAt) {
    throw badRequest(`container "${container}" in pod "${name}" is terminated and never started; it has no logs`);
  }
  return container;
}

/**
 * Serves `GET .../pods/{name}/log` for a resolved container: lines filtered by sinceTime
 * (inclusive, nanosecond precision) or sinceSeconds, cut to tailLines and limitBytes; with
 * follow, new lines stream as they are written and the response ends when the container
 * terminates (or the pod is deleted).
 */
export function serveLog(
  res: ServerResponse,
  logs: LogStore,
  podUid: string,
  container: string,
  query: LogQuery,
  onFollowClosed: (handle: FollowHandle) => void,
): FollowHandle | undefined {
  let sinceNs: bigint | undefined;
  if (query.sinceTime) {
    sinceNs = parseRfc3339Ns(query.sinceTime);
    if (sinceNs === undefined) {
      throw badRequest(`parsing time "${query.sinceTime}" as "2006-01-02T15:04:05Z07:00": cannot parse (sinceTime must be RFC 3339)`);
    }
  } else if (query.sinceSeconds) {
    const seconds = Number(query.sinceSeconds);
    if (!Number.isInteger(seconds) || seconds < 1) throw badRequest('sinceSeconds: Invalid value: must be greater than 0');
    sinceNs = nowNs() - BigInt(seconds) * 1_000_000_000n;
  }
  const tail = query.tailLines === null ? undefined : Number(query.tailLines);
  if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw badRequest('tailLines: Invalid value: must be greater than or equal to 0');
  let bytesLeft = query.limitBytes === null ? Infinity : Number(query.limitBytes);
  if (!(bytesLeft > 0)) throw badRequest('limitBytes: Invalid value: must be greater than 0');

  const log = logs.of(podUid, container);
  let backlog = log.lines.filter((l) => sinceNs === undefined || l.ns >= sinceNs);
  if (tail !== undefined) backlog = tail === 0 ? [] : backlog.slice(-tail);

  res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private' });
  res.flushHeaders();

  let cut: { after: number; mode: 'end' | 'abort' } | undefined;
  let stop = (): void => undefined;
  const finish = (mode: 'end' | 'abort'): void => {
    stop();
    // Flush what was written, then drop the connection without the final chunk: the client
    // gets every line up to the cut, then a premature close.
    if (mode === 'abort') res.socket ? res.socket.destroySoon() : res.destroy();
    else res.end();
  };
  const write = (line: LogLine): boolean => {
    let text = `${query.timestamps ? `${line.timestamp} ` : ''}${line.text}\n`;
    const bytes = Buffer.byteLength(text);
    if (bytes > bytesLeft) text = Buffer.from(text).subarray(0, bytesLeft).toString();
    bytesLeft -= bytes;
    res.write(text);
    if (bytesLeft <= 0) {
      finish('end');
      return false;
    }
    if (cut && --cut.after <= 0) {
      finish(cut.mode);
      return false;
    }
    return true;
  };

  for (const line of backlog) if (!write(line)) return undefined;
  if (!query.follow || log.closed) {
    res.end();
    return undefined;
  }
  const handle: FollowHandle = {
    armed: false,
    arm(afterLines, mode) {
      handle.armed = true;
      cut = { after: afterLines, mode };
      if (afterLines <= 0) finish(mode);
    },
  };
  stop = log.follow((signal) => {
    if ('end' in signal) finish('end');
    else write(signal.line);
  });
  res.on('close', () => {
    stop();
    onFollowClosed(handle);
  });
  return handle;
}
