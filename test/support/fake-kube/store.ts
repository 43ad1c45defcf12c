import type { KubeObject } from './wire.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One change to a collection, as kept in history and fanned out to watchers. */
export interface Change<T> {
  type: WatchEventType;
  /** The object after the change (for DELETED: its last state, with the deletion's resourceVersion). */
  object: T;
  /** The object before the change, for MODIFIED and DELETED; lets a watch with a selector turn a change into ADDED or DELETED. */
  previous?: T;
  rv: number;
}

/**
 * The one resourceVersion counter for the whole fake cluster (etcd has one revision for all
 * keys), and the compaction mark below which resourceVersions are "too old".
 */
export class Revision {
  current = 0;
  compactedBelow = 0;

  next(): number {
    return ++this.current;
  }

  /** Marks every resourceVersion handed out so far as compacted (410 Gone from now on). */
  compact(): void {
    this.compactedBelow = this.next();
  }

  isExpired(rv: number): boolean {
    return rv < this.compactedBelow;
  }
}

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

/**
 * One kind of object (pods, events, nodes) keyed by namespace/name, with the change history a
 * watch replays from a resourceVersion. Objects are stored and handed out as deep copies so no
 * caller can change stored state behind the watchers' backs.
 */
export class Collection<T extends KubeObject> {
  private readonly objects = new Map<string, T>();
  private readonly history: Array<Change<T>> = [];
  private readonly listeners = new Set<(change: Change<T>) => void>();
  private droppedThrough = 0;

  constructor(
    readonly revision: Revision,
    private readonly historyLimit = 10_000,
  ) {}

  get(namespace: string | undefined, name: string): T | undefined {
    const obj = this.objects.get(keyOf(namespace, name));
    return obj && structuredClone(obj);
  }

  /** All objects, or those of one namespace, in etcd key order (namespace, then name). */
  list(namespace?: string): T[] {
    return [...this.objects.entries()]
      .filter(([, o]) => namespace === undefined || o.metadata?.namespace === namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => structuredClone(o));
  }

  has(namespace: string | undefined, name: string): boolean {
    return this.objects.has(keyOf(namespace, name));
  }

  create(obj: T): T {
    const stored = structuredClone(obj);
    const rv = this.revision.next();
    stored.metadata = { ...stored.metadata, resourceVersion: String(rv) };
    this.objects.set(keyOf(stored.metadata.namespace, stored.metadata.name ?? ''), stored);
    this.emit({ type: 'ADDED', object: stored, rv });
    return structuredClone(stored);
  }

  /** Applies `mutate` to a copy and stores it as a new resourceVersion; undefined when the object is gone. */
  update(namespace: string | undefined, name: string, mutate: (obj: T) => void): T | undefined {
    const key = keyOf(namespace, name);
    const previous = this.objects.get(key);
    if (!previous) return undefined;
    const next = structuredClone(previous);
    mutate(next);
    const rv = this.revision.next();
    next.metadata = { ...next.metadata, resourceVersion: String(rv) };
    this.objects.set(key, next);
    this.emit({ type: 'MODIFIED', object: next, previous, rv });
    return structuredClone(next);
  }

  /** Removes the object; `finalize` adjusts the last state sent with DELETED (e.g. a deletionTimestamp). */
  remove(namespace: string | undefined, name: string, finalize?: (obj: T) => void): T | undefined {
    const key = keyOf(namespace, name);
    const previous = this.objects.get(key);
    if (!previous) return undefined;
    this.objects.delete(key);
    const rv = this.revision.next();
    // The API server sends the last state stamped with the deletion's resourceVersion.
    const last = structuredClone(previous);
    finalize?.(last);
    last.metadata = { ...last.metadata, resourceVersion: String(rv) };
    this.emit({ type: 'DELETED', object: last, previous, rv });
    return structuredClone(last);
  }

  /** True when a watch from `rv` can no longer be served: compacted, or older than retained history. */
  isTooOld(rv: number): boolean {
    return this.revision.isExpired(rv) || rv < this.droppedThrough;
  }

  /** Retained changes newer than `rv`, oldest first. */
  changesSince(rv: number): Array<Change<T>> {
    return this.history.filter((c) => c.rv > rv).map((c) => structuredClone(c));
  }

  /** Calls `listener` synchronously for every later change; returns the unsubscribe function. */
  subscribe(listener: (change: Change<T>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(change: Change<T>): void {
    this.history.push(change);
    if (this.history.length > this.historyLimit) this.droppedThrough = this.history.shift()!.rv;
    for (const listener of [...this.listeners]) listener(structuredClone(change));
  }
}
