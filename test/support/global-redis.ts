import type { TestProject } from 'vitest/node';
import { startPrivateRedis, type PrivateRedis } from '../../src/util/redis-server.ts';

// One private redis-server for the whole run (unless REDIS_URL is set); tests isolate
// themselves with a unique key prefix each, never by flushing a shared database.
let server: PrivateRedis | undefined;

export async function setup(project: TestProject) {
  let url = process.env.REDIS_URL;
  if (!url) {
    server = await startPrivateRedis();
    url = server.url;
  }
  project.provide('redisUrl', url);
}

export async function teardown() {
  await server?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
