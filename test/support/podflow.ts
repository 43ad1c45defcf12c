import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.ts';
import { parseTokens } from '../../src/api/auth.ts';
import { startPodflow, type PodflowHandle, type Roles, type StartOptions } from '../../src/runtime/podflow.ts';
import type { DagRunRecord } from '../../src/dag/types.ts';
import { redisUrl, uniquePrefix } from './redis.ts';

const repoRoot = new URL('../../', import.meta.url).pathname;

export const OPERATOR_TOKEN = 'operator-token-0123456789abcdef';
export const VIEWER_TOKEN = 'viewer-token-0123456789abcdef';

/**
 * A DAGs folder inside the repository (git-ignored), so DAG files can
 * `import { dag } from 'podflow'` through the package's self-reference.
 */
export function dagsFolder(files: Record<string, string> = {}): { dir: string; write(name: string, source: string): void; remove(): void } {
  const dir = join(repoRoot, 'test', '.tmp', randomUUID());
  mkdirSync(dir, { recursive: true });
  const write = (name: string, source: string) => writeFileSync(join(dir, name), source);
  for (const [n, s] of Object.entries(files)) write(n, s);
  return { dir, write, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestPodflow extends PodflowHandle {
  folder: ReturnType<typeof dagsFolder>;
  /** Wait until the run is success or failed (polling Redis), or throw after `timeoutMs`. */
  waitForRun(dagId: string, runId: string, timeoutMs?: number): Promise<DagRunRecord>;
  close(): Promise<void>;
}

/**
 * Podflow in this process against the test run's Redis, with a unique key prefix, fast
 * scheduler ticks and an API on a free port (tokens OPERATOR_TOKEN and VIEWER_TOKEN).
 */
export async function startTestPodflow(
  opts: { files?: Record<string, string>; env?: Record<string, string>; roles?: Roles; hooks?: Pick<StartOptions, 'tryHooks' | 'runHooks'> } = {},
): Promise<TestPodflow> {
  const folder = dagsFolder(opts.files);
  const config = loadConfig({
    ...process.env,
    REDIS_URL: redisUrl(),
    PODFLOW_PREFIX: uniquePrefix('e2e'),
    PODFLOW_DAGS_FOLDER: folder.dir,
    PODFLOW_ARTIFACTS: join(folder.dir, 'artifacts'),
    PORT: '0',
    PODFLOW_SCHEDULER_INTERVAL_MS: '100',
    PODFLOW_DAG_RELOAD_INTERVAL_MS: '200',
    // Generous: on a loaded 2-core CI machine a DAG file importing ML libraries can take seconds.
    PODFLOW_DAG_IMPORT_TIMEOUT_MS: '30000',
    PODFLOW_WORKER_CONCURRENCY: '4',
    ...opts.env,
  });
  const handle = await startPodflow({
    config,
    roles: opts.roles ?? { scheduler: true, worker: true, api: true },
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    tokens: parseTokens(`operator:${OPERATOR_TOKEN},viewer:${VIEWER_TOKEN}`),
    ...opts.hooks,
  });
  await handle.loader?.scan(); // tests start with every DAG file loaded
  return Object.assign(handle, {
    folder,
    async waitForRun(dagId: string, runId: string, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const run = await handle.store.getRun(dagId, runId);
        if (run && (run.state === 'success' || run.state === 'failed')) return run;
        if (Date.now() > deadline) {
          const tis = await handle.store.listTis(dagId, runId);
          throw new Error(`run ${runId} of ${dagId} did not finish within ${timeoutMs} ms: ${run?.state}; ${tis.map((t) => `${t.task_id}[${t.map_index}]=${t.state}`).join(', ')}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async close() {
      await handle.stop();
      folder.remove();
    },
  });
}
