import type { ServerResponse } from 'node:http';
import type { Matcher } from './selectors.ts';
import { badRequest, expired } from './status.ts';
import type { Change, Collection } from './store.ts';
import type { KubeObject } from './wire.ts';

export interface WatchOptions {
  resourceVersion: string;
  allowBookmarks: boolean;
  bookmarkIntervalMs: number;
  timeoutSeconds?: number;
  /** Kind to stamp on BOOKMARK objects (the API server sends an object of the watched kind). */
  kind: string;
}

/** Parses a resourceVersion query value; 400 like the API server when it is not a number. */
export function parseResourceVersion(text: string): number {
  const rv = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(rv)) throw badRequest(`invalid resource version: ${text}`);
  return rv;
}

/**
 * Serves a watch as the API server does: 200 with headers flushed at once, then one JSON watch
 * event per line. From no resourceVersion (or "0") it first sends ADDED for every matching
 * object; from a resourceVersion it replays retained changes newer than it, or sends one ERROR
 * event with a 410 Expired Status and ends when that version is too old. A change that makes an
 * object start or stop matching the selectors arrives as ADDED or DELETED.
 *
 * @returns a function that aborts the connection (for `cutWatches`).
 */
export function serveWatch<T extends KubeObject>(
  res: ServerResponse,
  collection: Collection<T>,
  namespace: string | undefined,
  matches: Matcher,
  opts: WatchOptions,
  onClosed: () => void,
): { abort: () => void; end: () => void } {
  const from = opts.resourceVersion === '' || opts.resourceVersion === '0' ? undefined : parseResourceVersion(opts.resourceVersion);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  // Without this the client's fetch never resolves and its watch never starts.
  res.flushHeaders();
  const send = (type: string, object: unknown): void => {
    if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify({ type, object })}\n`);
  };
  const inScope = (obj: T | undefined): boolean =>
    obj !== undefined && (namespace === undefined || obj.metadata?.namespace === namespace) && matches(obj);

  const timers: NodeJS.Timeout[] = [];
  let unsubscribe = (): void => undefined;
  const cleanup = (): void => {
    unsubscribe();
    for (const t of timers) clearTimeout(t);
    onClosed();
  };
  res.on('close', cleanup);

  if (from !== undefined && collection.isTooOld(from)) {
    send('ERROR', expired(`too old resource version: ${from} (${collection.revision.compactedBelow})`).toStatus());
    res.end();
    return { abort: () => res.destroy(), end: () => res.end() };
  }

  const deliver = (change: Change<T>): void => {
    const now = inScope(change.object);
    const before = change.type === 'ADDED' ? false : inScope(change.previous);
    if (change.type === 'DELETED') {
      if (before || now) send('DELETED', change.object);
    } else if (now && !before) send('ADDED', change.object);
    else if (now && before) send('MODIFIED', change.object);
    else if (before && !now) send('DELETED', change.object);
  };
  if (from === undefined) {
    for (const obj of collection.list(namespace)) if (matches(obj)) send('ADDED', obj);
  } else {
    for (const change of collection.changesSince(from)) deliver(change);
  }
  unsubscribe = collection.subscribe(deliver);

  if (opts.allowBookmarks) {
    const bookmark = (): void => {
      send('BOOKMARK', { kind: opts.kind, apiVersion: 'v1', metadata: { resourceVersion: String(collection.revision.current) } });
      timers.push(setTimeout(bookmark, opts.bookmarkIntervalMs));
    };
    timers.push(setTimeout(bookmark, opts.bookmarkIntervalMs));
  }
  if (opts.timeoutSeconds !== undefined && opts.timeoutSeconds > 0) {
    timers.push(setTimeout(() => res.end(), opts.timeoutSeconds * 1000));
  }
  return { abort: () => res.destroy(), end: () => res.end() };
}
