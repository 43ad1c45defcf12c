import { inject } from 'vitest';
import { randomUUID } from 'node:crypto';

/** URL of the run's private redis-server (see global-redis.ts). */
export function redisUrl(): string {
  return inject('redisUrl');
}

/** A key prefix no other test uses, so tests never collide and need no flush. */
export function uniquePrefix(name = 't'): string {
  return `pftest:${name}:${randomUUID().slice(0, 8)}:`;
}
