import { resolve } from 'node:path';
import { hostname } from 'node:os';
import { OPENLINEAGE_ENV_VARS } from '../lineage/emitter.ts';

/**
 * Podflow's configuration, read from the environment. Every variable is listed in
 * ENV_VARS with its default, and `podflow --help` prints that list.
 */
export interface PodflowConfig {
  /** Unset: `podflow up` starts a private redis-server. */
  redisUrl: string | undefined;
  /** Every Redis key and BullMQ queue lives under this prefix. */
  prefix: string;
  dagsFolder: string;
  artifactsFolder: string;
  pluginsFolder: string;
  /** Where `podflow up` keeps its private Redis data and generated token. */
  homeFolder: string;
  host: string;
  port: number;
  /** Task slots per worker process. */
  workerConcurrency: number;
  /** Global cap on running task instances across all DAGs. */
  parallelism: number;
  schedulerIntervalMs: number;
  dagReloadIntervalMs: number;
  dagImportTimeoutMs: number;
  /** "role:token" pairs, comma separated (roles: viewer, operator, admin). */
  apiTokens: string | undefined;
  webhookSecret: string | undefined;
  /** Days finished runs, their task instances, logs and XComs are kept. */
  retentionDays: number;
  logLevel: string;
  workerName: string;
  /** A dead worker's try is taken over after about this long (BullMQ lock duration). */
  workerLockMs: number;
  /** Lines kept per try's log (the tail); older ones are dropped with a note. */
  taskLogMaxLines: number;
  /** The raw environment, for plugins' own settings (e.g. PODFLOW_KUBE_*). */
  env: Record<string, string | undefined>;
}

export interface EnvVarDoc {
  name: string;
  default: string;
  description: string;
}

export const ENV_VARS: EnvVarDoc[] = [
  { name: 'REDIS_URL', default: '(private redis-server)', description: 'Redis to use; unset, `podflow up` starts a private redis-server on a free port' },
  { name: 'PODFLOW_PREFIX', default: 'podflow', description: 'prefix of every Redis key and BullMQ queue' },
  { name: 'PODFLOW_DAGS_FOLDER', default: './dags', description: 'folder scanned for DAG files (*.ts, *.mts, *.js, *.mjs)' },
  { name: 'PODFLOW_ARTIFACTS', default: './artifacts', description: 'folder where example pipelines publish models and metrics' },
  { name: 'PODFLOW_PLUGINS_FOLDER', default: '<podflow>/plugins', description: 'folder of plugins (each a folder with index.ts)' },
  { name: 'PODFLOW_HOME', default: './.podflow', description: 'private Redis data and generated API token of `podflow up`' },
  { name: 'HOST', default: '127.0.0.1', description: 'address the API listens on' },
  { name: 'PORT', default: '8080', description: 'port of the API, webhooks and /healthz' },
  { name: 'PODFLOW_WORKER_CONCURRENCY', default: '8', description: 'task slots per worker process' },
  { name: 'PODFLOW_PARALLELISM', default: '32', description: 'running task instances across all DAGs at most' },
  { name: 'PODFLOW_SCHEDULER_INTERVAL_MS', default: '1000', description: 'scheduler loop period' },
  { name: 'PODFLOW_DAG_RELOAD_INTERVAL_MS', default: '2000', description: 'how often the DAGs folder is checked for changes' },
  { name: 'PODFLOW_DAG_IMPORT_TIMEOUT_MS', default: '30000', description: 'a DAG file that takes longer to import is an import error' },
  { name: 'PODFLOW_API_TOKENS', default: '(generated)', description: 'bearer tokens as role:token,… (roles viewer, operator, admin)' },
  { name: 'PODFLOW_WEBHOOK_SECRET', default: '(none)', description: 'global HMAC-SHA256 secret for POST /hooks/{dag_id}' },
  { name: 'PODFLOW_WEBHOOK_MAX_BYTES', default: '1048576', description: 'largest webhook body accepted' },
  { name: 'PODFLOW_WEBHOOK_REPLAY_WINDOW_SEC', default: '300', description: 'signed webhook timestamps older (or newer) than this are refused' },
  { name: 'PODFLOW_RETENTION_DAYS', default: '30', description: 'days finished runs, logs and XComs are kept' },
  { name: 'LOG_LEVEL', default: 'info', description: 'pino log level (trace, debug, info, warn, error)' },
  { name: 'PODFLOW_WORKER_LOCK_MS', default: '30000', description: "a crashed worker's running tries are taken over after about this long" },
  { name: 'PODFLOW_TASK_LOG_MAX_LINES', default: '100000', description: "lines kept per try's log; beyond it the oldest are dropped, with a note" },
  { name: 'PODFLOW_WORKER_NAME', default: '<hostname>:<pid>', description: 'name this worker reports on task instances' },
  ...OPENLINEAGE_ENV_VARS,
];

function int(env: Record<string, string | undefined>, name: string, dflt: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`${name}=${JSON.stringify(raw)} is not a whole number >= ${min}; unset it to use the default ${dflt}`);
  }
  return n;
}

const podflowRoot = resolve(new URL('../..', import.meta.url).pathname);

export function loadConfig(env: Record<string, string | undefined> = process.env): PodflowConfig {
  const cwd = process.cwd();
  return {
    redisUrl: env.REDIS_URL || undefined,
    prefix: env.PODFLOW_PREFIX || 'podflow',
    dagsFolder: resolve(cwd, env.PODFLOW_DAGS_FOLDER || './dags'),
    artifactsFolder: resolve(cwd, env.PODFLOW_ARTIFACTS || './artifacts'),
    pluginsFolder: resolve(cwd, env.PODFLOW_PLUGINS_FOLDER || resolve(podflowRoot, 'plugins')),
    homeFolder: resolve(cwd, env.PODFLOW_HOME || './.podflow'),
    host: env.HOST || '127.0.0.1',
    port: int(env, 'PORT', 8080),
    workerConcurrency: int(env, 'PODFLOW_WORKER_CONCURRENCY', 8, 1),
    parallelism: int(env, 'PODFLOW_PARALLELISM', 32, 1),
    schedulerIntervalMs: int(env, 'PODFLOW_SCHEDULER_INTERVAL_MS', 1000, 10),
    dagReloadIntervalMs: int(env, 'PODFLOW_DAG_RELOAD_INTERVAL_MS', 2000, 50),
    dagImportTimeoutMs: int(env, 'PODFLOW_DAG_IMPORT_TIMEOUT_MS', 30_000, 100),
    apiTokens: env.PODFLOW_API_TOKENS || undefined,
    webhookSecret: env.PODFLOW_WEBHOOK_SECRET || undefined,
    retentionDays: int(env, 'PODFLOW_RETENTION_DAYS', 30, 1),
    logLevel: env.LOG_LEVEL || 'info',
    workerName: env.PODFLOW_WORKER_NAME || `${hostname()}:${process.pid}`,
    workerLockMs: int(env, 'PODFLOW_WORKER_LOCK_MS', 30_000, 1000),
    taskLogMaxLines: int(env, 'PODFLOW_TASK_LOG_MAX_LINES', 100_000, 10),
    env,
  };
}
