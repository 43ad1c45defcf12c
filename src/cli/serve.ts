import { join } from 'node:path';
import type { PodflowConfig } from '../config/config.ts';
import { generateToken, parseTokens, type TokenEntry } from '../api/auth.ts';
import { createLogger, startPodflow, type PodflowHandle, type Roles } from '../runtime/podflow.ts';
import { RedisServerMissingError, startPrivateRedis, type PrivateRedis } from '../util/redis-server.ts';
import { removeInstance, writeInstance } from './instance.ts';

/**
 * Run Podflow roles in this process until SIGINT/SIGTERM. `up` runs all three and, without
 * REDIS_URL, a private redis-server that keeps its data in PODFLOW_HOME.
 */
export async function serve(config: PodflowConfig, roles: Roles, opts: { privateRedis: boolean }): Promise<void> {
  const logger = createLogger(config);
  let redis: PrivateRedis | undefined;
  if (!config.redisUrl) {
    if (!opts.privateRedis) {
      throw new Error('REDIS_URL is not set: point it at the Redis your scheduler uses (e.g. REDIS_URL=redis://127.0.0.1:6379), or run `podflow up` for an all-in-one instance');
    }
    try {
      redis = await startPrivateRedis({ dir: join(config.homeFolder, 'redis') });
    } catch (e) {
      if (e instanceof RedisServerMissingError) {
        process.stderr.write(`podflow: ${e.message}\n`);
        process.exit(1);
      }
      throw e;
    }
    config = { ...config, redisUrl: redis.url };
    logger.info({ redis_url: redis.url, dir: join(config.homeFolder, 'redis') }, `started a private redis-server on ${redis.url}`);
  }
  let tokens: TokenEntry[] = [];
  let generated: string | null = null;
  if (roles.api) {
    if (config.apiTokens) tokens = parseTokens(config.apiTokens);
    else {
      // Never run open: a laptop instance gets a fresh operator token, printed once.
      generated = generateToken();
      tokens = parseTokens(`operator:${generated}`);
    }
  }
  let handle: PodflowHandle;
  try {
    handle = await startPodflow({ config, roles, logger, tokens });
  } catch (e) {
    await redis?.stop();
    throw e;
  }
  writeInstance(config, {
    pid: process.pid,
    redis_url: config.redisUrl!,
    api_url: handle.api?.url ?? null,
    token: generated,
    started_at: new Date().toISOString(),
  });
  if (roles.scheduler) {
    const dags = await handle.store.dagIds();
    const errors = await handle.store.importErrors();
    const lines = [
      '',
      `Podflow is up. ${dags.length} DAG(s) from ${config.dagsFolder}: ${dags.join(', ') || '(none)'}`,
      errors.length ? `  ${errors.length} file(s) failed to import: run \`podflow dags errors\`` : null,
      handle.api ? `  API: ${handle.api.url}/api/v1  (health: ${handle.api.url}/healthz)` : null,
      generated ? `  API token (operator role, this session only): ${generated}` : null,
      `  Try: npx podflow dags trigger ${dags.includes('iris_training') ? 'iris_training' : (dags[0] ?? '<dag_id>')} --wait`,
      '',
    ].filter((l) => l !== null);
    process.stderr.write(lines.join('\n') + '\n');
  }
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      logger.info({ signal: sig }, `${sig} received: stopping (running pods are left for the next worker)`);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  const force = setTimeout(() => {
    logger.error('shutdown took longer than 30s; exiting');
    process.exit(1);
  }, 30_000);
  force.unref();
  await handle.stop();
  removeInstance(config);
  await redis?.stop();
}
