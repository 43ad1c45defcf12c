import { createServer, type Server } from 'node:http';
import { Redis } from 'ioredis';
import pino, { type Logger } from 'pino';
import type { PodflowConfig } from '../config/config.ts';
import { CommandOperator } from '../executor/command-operator.ts';
import { loadPlugins } from '../executor/plugins.ts';
import { InlineOperator } from '../executor/inline-operator.ts';
import { OperatorRegistry } from '../executor/registry.ts';
import { DagFolderLoader } from '../loader/dag-loader.ts';
import { Scheduler, type RunHooks } from '../scheduler/scheduler.ts';
import { StateStore } from '../state/store.ts';
import { taskQueue } from '../worker/jobs.ts';
import { TaskWorker, type TryHooks } from '../worker/worker.ts';
import { createApiServer } from '../api/server.ts';
import type { TokenEntry } from '../api/auth.ts';
import { createLineage, type Lineage } from '../lineage/lineage.ts';
import { PodflowMetrics } from '../observability/metrics.ts';
import { SensorRegistry } from '../sensors/registry.ts';
import { SensorOperator } from '../sensors/sensor-operator.ts';
import { createTriggerHook, outletEventsHook } from '../triggers/trigger-hook.ts';

export interface Roles {
  scheduler?: boolean;
  worker?: boolean;
  api?: boolean;
}

export interface StartOptions {
  config: PodflowConfig;
  roles: Roles;
  logger?: Logger;
  /** API bearer tokens (already parsed); required when the api role runs. */
  tokens?: TokenEntry[];
  tryHooks?: TryHooks;
  runHooks?: RunHooks;
}

/** A running Podflow process: whichever of scheduler, worker and API it was asked to run. */
export interface PodflowHandle {
  config: PodflowConfig;
  logger: Logger;
  redis: Redis;
  store: StateStore;
  operators: OperatorRegistry;
  /** Sensor types: built-ins plus those plugins add (worker role). */
  sensors: SensorRegistry;
  lineage: Lineage;
  metrics: PodflowMetrics;
  loader?: DagFolderLoader;
  scheduler?: Scheduler;
  worker?: TaskWorker;
  api?: { server: Server; url: string };
  stop(): Promise<void>;
}

export function createLogger(config: Pick<PodflowConfig, 'logLevel'>): Logger {
  return pino({ level: config.logLevel, base: { service: 'podflow' } });
}

/** A Redis connection that waits through a Redis restart instead of failing commands. */
export function connectRedis(url: string, logger: Logger, name: string): Redis {
  const r = new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectionName: `podflow-${name}`,
    retryStrategy: (times) => Math.min(times * 200, 5000),
  });
  let down = false;
  r.on('error', (e) => {
    if (!down) logger.warn({ connection: name, err: e.message }, `Redis connection '${name}' lost (${e.message}); reconnecting`);
    down = true;
  });
  r.on('ready', () => {
    if (down) logger.info({ connection: name }, `Redis connection '${name}' is back`);
    down = false;
  });
  return r;
}

export async function startPodflow(opts: StartOptions): Promise<PodflowHandle> {
  const { config, roles } = opts;
  const logger = opts.logger ?? createLogger(config);
  if (!config.redisUrl) throw new Error('REDIS_URL is not set; `podflow up` starts a private Redis, other commands need REDIS_URL');
  const redis = connectRedis(config.redisUrl, logger, 'state');
  const store = new StateStore(redis, config.prefix);
  const queue = taskQueue(redis, config.prefix);
  const operators = new OperatorRegistry();
  const sensors = new SensorRegistry();
  const extra: Redis[] = [];
  const shutdown: (() => Promise<void> | void)[] = [];
  const lineage = createLineage({ redis, prefix: config.prefix, env: config.env, logger, retentionDays: config.retentionDays, cwd: config.artifactsFolder });

  const metrics = new PodflowMetrics();
  metrics.watchLineage(() => ({ ...lineage.stats() }));
  const handle: PodflowHandle = {
    config,
    metrics,
    logger,
    redis,
    store,
    operators,
    sensors,
    lineage,
    async stop() {
      await handle.api?.server.closeAllConnections?.();
      await new Promise<void>((r) => (handle.api ? handle.api.server.close(() => r()) : r()));
      handle.loader?.stop();
      await handle.scheduler?.stop();
      await handle.worker?.close();
      for (const fn of shutdown.reverse()) await fn();
      await lineage.close();
      await queue.close();
      for (const r of extra) r.disconnect();
      redis.disconnect();
    },
  };

  const recordOutlets = outletEventsHook(store, logger);
  const tryHooks: TryHooks = {
    tryStarted: (info) => {
      lineage.tryStarted({ ...info, executor: executorOf(info.task.operator), dags_folder: config.dagsFolder });
      opts.tryHooks?.tryStarted?.(info);
    },
    tryFinished: async (info) => {
      const seconds = info.ended_at ? (info.ended_at.getTime() - info.started_at.getTime()) / 1000 : null;
      metrics.recordTry(info.dag.dag_id, info.task.operator, info.final_state, seconds);
      await recordOutlets(info);
      const argv = info.outcome.facts?.argv;
      await lineage.tryFinished({
        ...info,
        executor: executorOf(info.task.operator),
        dags_folder: config.dagsFolder,
        argv: Array.isArray(argv) ? argv.map(String) : null,
      });
      await opts.tryHooks?.tryFinished?.(info);
    },
  };
  const triggers = createTriggerHook({ store, sensors, logger: logger.child({ role: 'triggers' }), retentionDays: config.retentionDays });
  const runHooks: RunHooks = {
    runStarted: (dag, run) => {
      lineage.runStarted({ dag, run });
      opts.runHooks?.runStarted?.(dag, run);
    },
    runFinished: (dag, run) => {
      lineage.runFinished({ dag, run, state: run.state === 'success' ? 'success' : 'failed' });
      opts.runHooks?.runFinished?.(dag, run);
    },
    beforeTick: async (scheduler, now) => {
      await triggers(scheduler, now);
      await opts.runHooks?.beforeTick?.(scheduler, now);
    },
  };

  try {
    // Plugins add operators (for workers) and sensors (for workers, and for the scheduler's
    // sensor-triggered DAGs), so both roles load them, before either starts.
    if (roles.worker || roles.scheduler) {
      const plugins = await loadPlugins(
        config.pluginsFolder,
        { operators, sensors, config, logger, redis, onShutdown: (fn) => shutdown.push(fn) },
        logger,
      );
      if (plugins.length) logger.info({ plugins }, `plugins loaded: ${plugins.join(', ')}`);
    }
    if (roles.scheduler) {
      handle.loader = new DagFolderLoader(store, {
        folder: config.dagsFolder,
        importTimeoutMs: config.dagImportTimeoutMs,
        logger: logger.child({ role: 'loader' }),
      });
      // The first scan runs in the background: a DAG file that hangs at import must not keep
      // the worker and API from starting (it becomes an import error after its time limit).
      void handle.loader.scan().catch((e) => logger.error({ err: e }, 'the first scan of the DAGs folder failed; it is retried on the next interval'));
      handle.loader.start(config.dagReloadIntervalMs);
      const sub = connectRedis(config.redisUrl, logger, 'scheduler-events');
      // Its own connection: a tick's large pipelines must not queue in front of worker commands.
      const schedRedis = connectRedis(config.redisUrl, logger, 'scheduler');
      extra.push(sub, schedRedis);
      const schedQueue = taskQueue(schedRedis, config.prefix);
      shutdown.push(() => schedQueue.close());
      handle.scheduler = new Scheduler({
        store: new StateStore(schedRedis, config.prefix),
        queue: schedQueue,
        subscriber: sub,
        logger: logger.child({ role: 'scheduler' }),
        intervalMs: config.schedulerIntervalMs,
        parallelism: config.parallelism,
        retentionDays: config.retentionDays,
        hooks: runHooks,
      });
      await handle.scheduler.start();
    }

    if (roles.worker) {
      // Task code (inline functions, commands, child processes) learns the artifacts folder from the environment.
      process.env.PODFLOW_ARTIFACTS = config.artifactsFolder;
      const inline = new InlineOperator({ maxIdleProcesses: config.workerConcurrency });
      operators.register(inline);
      shutdown.push(() => inline.close());
      operators.register(new CommandOperator());
      operators.register(new SensorOperator({ sensors, store }));
      const conn = connectRedis(config.redisUrl, logger, 'worker-jobs');
      const sub = connectRedis(config.redisUrl, logger, 'worker-kills');
      extra.push(conn, sub);
      handle.worker = new TaskWorker({
        store,
        connection: conn,
        subscriber: sub,
        queue,
        operators,
        logger: logger.child({ role: 'worker' }),
        prefix: config.prefix,
        concurrency: config.workerConcurrency,
        name: config.workerName,
        parallelism: config.parallelism,
        lockDurationMs: config.workerLockMs,
      logMaxLines: config.taskLogMaxLines,
        hooks: tryHooks,
      });
      await handle.worker.start();
    }

    if (roles.api) {
      metrics.watchState(store, queue);
      const app = createApiServer({ store, config, logger: logger.child({ role: 'api' }), tokens: opts.tokens ?? [], lineage, queue, metrics });
      const server = await new Promise<Server>((resolve, reject) => {
        const s = createServer(app);
        s.once('error', (e: NodeJS.ErrnoException) =>
          reject(
            e.code === 'EADDRINUSE'
              ? new Error(`port ${config.port} on ${config.host} is already in use (another Podflow?); stop that process or set PORT to a free port`)
              : e,
          ),
        );
        s.listen(config.port, config.host, () => resolve(s));
      });
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      handle.api = { server, url: `http://${config.host}:${port}` };
      logger.info({ url: handle.api.url }, `API listening on ${handle.api.url}`);
    }
  } catch (e) {
    // A role that fails to start (port in use, bad plugin config) must not leave connections or timers behind.
    await handle.stop().catch(() => {});
    throw e;
  }
  return handle;
}

function executorOf(operator: string): string {
  return operator === 'pod' ? 'kubernetes' : 'local';
}
