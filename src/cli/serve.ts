import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PodflowConfig } from '../config/config.ts';
import { generateToken, parseTokens, type TokenEntry } from '../api/auth.ts';
import { createLogger, startPodflow, type PodflowHandle, type Roles } from '../runtime/podflow.ts';
import { RedisServerMissingError, startPrivateRedis, type PrivateRedis } from '../util/redis-server.ts';
import { readInstanceFile, readInstance, removeInstance, writeInstance } from './instance.ts';
import { CliError } from './errors.ts';
import type { Logger } from 'pino';

/**
 * Run Podflow roles in this process until SIGINT/SIGTERM. `up` runs all three and, without
 * REDIS_URL, a private redis-server that keeps its data in PODFLOW_HOME.
 */
export async function serve(config: PodflowConfig, roles: Roles, opts: { privateRedis: boolean }): Promise<void> {
  const logger = createLogger(config);
  // Everything that can be refused is checked before anything is started.
  let tokens: TokenEntry[] = [];
  let generated: string | null = null;
  if (roles.api) {
    if (config.apiTokens) {
      try {
        tokens = parseTokens(config.apiTokens);
      } catch (e) {
        throw new CliError((e as Error).message);
      }
    } else {
      // Never run open: a laptop instance gets a fresh operator token, printed once.
      generated = generateToken();
      tokens = parseTokens(`operator:${generated}`);
    }
  }
  let redis: PrivateRedis | undefined;
  if (!config.redisUrl) {
    if (!opts.privateRedis) {
      throw new CliError('REDIS_URL is not set: point it at the Redis your scheduler uses (e.g. REDIS_URL=redis://127.0.0.1:6379), or run `podflow up` for an all-in-one instance');
    }
    const running = readInstance(config);
    if (running) {
      throw new CliError(
        `a Podflow instance (pid ${running.pid}) is already running from ${config.homeFolder}${running.api_url ? ` with its API at ${running.api_url}` : ''}; stop it first, or give this one its own PODFLOW_HOME`,
      );
    }
    await stopStaleRedis(config, logger);
    try {
      redis = await startPrivateRedis({ dir: join(config.homeFolder, 'redis') });
    } catch (e) {
      if (e instanceof RedisServerMissingError) throw new CliError(e.message);
      throw e;
    }
    config = { ...config, redisUrl: redis.url };
    logger.info({ redis_url: redis.url, dir: join(config.homeFolder, 'redis') }, `started a private redis-server on ${redis.url}`);
  }
  let handle: PodflowHandle;
  try {
    handle = await startPodflow({ config, roles, logger, tokens });
  } catch (e) {
    await redis?.stop();
    throw new CliError((e as Error).message);
  }
  writeInstance(config, {
    pid: process.pid,
    redis_url: config.redisUrl!,
    redis_pid: redis?.process.pid ?? null,
    api_url: handle.api?.url ?? null,
    token: generated,
    started_at: new Date().toISOString(),
  });
  if (roles.scheduler) {
    await handle.loader?.scan();
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

/**
 * A private redis-server left running by an `up` that was killed (kill -9, power loss) still
 * holds the data folder; a second server on the same append-only file would corrupt it. Stop
 * it (SIGTERM makes it flush and exit) before starting a new one.
 */
async function stopStaleRedis(config: PodflowConfig, logger: Logger): Promise<void> {
  const stale = readInstanceFile(config);
  const pid = stale?.redis_pid;
  if (!pid) return;
  try {
    process.kill(pid, 0);
  } catch {
    return;
  }
  // The pid may have been reused by an unrelated process since: only stop a redis-server.
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return; // no /proc (macOS): leave it alone rather than guess
  }
  if (!cmdline.includes('redis-server')) return;
  logger.warn({ pid }, `stopping the private redis-server (pid ${pid}) left by an earlier podflow up that did not shut down`);
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
  }
  throw new CliError(`the redis-server (pid ${pid}) left by an earlier podflow up did not stop; stop it, then start podflow up again`);
}
