import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PodflowConfig } from '../config/config.ts';

/**
 * What `podflow up` writes so later CLI commands in the same folder find its private Redis
 * and API without any environment variable.
 */
export interface InstanceFile {
  pid: number;
  redis_url: string;
  /** The private redis-server's pid, when `up` started one. */
  redis_pid?: number | null;
  api_url: string | null;
  /** Generated operator token, when PODFLOW_API_TOKENS was not set. */
  token: string | null;
  started_at: string;
}

function path(config: PodflowConfig): string {
  return join(config.homeFolder, 'instance.json');
}

export function writeInstance(config: PodflowConfig, inst: InstanceFile): void {
  mkdirSync(config.homeFolder, { recursive: true });
  writeFileSync(path(config), JSON.stringify(inst, null, 2), { mode: 0o600 });
}

export function removeInstance(config: PodflowConfig): void {
  rmSync(path(config), { force: true });
}

/** The instance file as written, whether or not its process still runs. */
export function readInstanceFile(config: PodflowConfig): InstanceFile | null {
  const p = path(config);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as InstanceFile;
  } catch {
    return null;
  }
}

/** The running instance's file, if its process is still alive. */
export function readInstance(config: PodflowConfig): InstanceFile | null {
  const inst = readInstanceFile(config);
  if (!inst) return null;
  try {
    process.kill(inst.pid, 0);
    return inst;
  } catch {
    return null;
  }
}

/** REDIS_URL, else the URL of a `podflow up` running from this folder, else null. */
export function resolveRedisUrl(config: PodflowConfig): string | null {
  return config.redisUrl ?? readInstance(config)?.redis_url ?? null;
}
