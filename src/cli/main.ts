import { Command, CommanderError } from 'commander';
import { Redis } from 'ioredis';
import { ENV_VARS, loadConfig, type PodflowConfig } from '../config/config.ts';
import { dagRunToApi, dagToApi, runDetail } from '../api/serializers.ts';
import type { TaskInstanceRecord } from '../dag/types.ts';
import { DagRunExistsError, StateStore } from '../state/store.ts';
import { triggerDagRun, TriggerError } from '../scheduler/trigger.ts';
import { clearTasks, setTaskState } from '../scheduler/task-actions.ts';
import { resolveRedisUrl } from './instance.ts';
import { serve } from './serve.ts';
import { table } from './table.ts';
import { extraCommands } from './extra-commands.ts';
import { CliError } from './errors.ts';
import { parseConf } from './conf-arg.ts';
import { LineageStore } from '../lineage/store.ts';
import { renderProvenance, runProvenance } from '../lineage/query.ts';

export { CliError };

/** The most slots `pools set` accepts (-1 means unlimited). */
export const MAX_POOL_SLOTS = 1_000_000;

export interface CliContext {
  config: PodflowConfig;
  /** A state store connected to the instance's Redis; closed after the command. */
  store(): Promise<StateStore>;
  out(text: string): void;
}

function context(): CliContext & { close(): void } {
  const config = loadConfig();
  let redis: Redis | undefined;
  let store: StateStore | undefined;
  return {
    config,
    async store() {
      if (store) return store;
      const url = resolveRedisUrl(config);
      if (!url) {
        throw new CliError('no Podflow instance found: start one with `npx podflow up` in this folder, or set REDIS_URL to the Redis your scheduler uses');
      }
      redis = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: (n) => (n > 3 ? null : 200), lazyConnect: true });
      redis.on('error', () => {});
      try {
        await redis.connect();
      } catch (e) {
        throw new CliError(`cannot reach Redis at ${url} (${(e as Error).message}); is \`podflow up\` still running?`);
      }
      store = new StateStore(redis, config.prefix);
      return store;
    },
    out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    close: () => redis?.disconnect(),
  };
}


async function requireDag(store: StateStore, dagId: string) {
  const dag = await store.getDag(dagId);
  if (dag) return dag;
  const err = (await store.importErrors()).find((e) => e.dag_id === dagId);
  if (err) throw new CliError(`DAG '${dagId}' failed to import from ${err.filename}:\n${err.stack_trace}`);
  const ids = await store.dagIds();
  throw new CliError(`DAG '${dagId}' is not defined; known DAGs: ${ids.join(', ') || '(none)'} (see also \`podflow dags errors\`)`);
}

/**
 * Fail unless Podflow knows the DAG id: defined now, or with an import error, or with runs
 * left from an earlier definition (so history of a removed DAG stays listable).
 */
async function requireKnownDag(store: StateStore, dagId: string): Promise<void> {
  if (await store.getDag(dagId)) return;
  if ((await store.importErrors()).some((e) => e.dag_id === dagId)) return;
  if ((await store.listRuns(dagId, { limit: 1 })).length) return;
  const ids = await store.dagIds();
  throw new CliError(`DAG '${dagId}' is unknown; known DAGs: ${ids.join(', ') || '(none)'} (see also \`podflow dags list\` and \`podflow dags errors\`)`);
}

async function requireRun(store: StateStore, dagId: string, runId: string) {
  const run = await store.getRun(dagId, runId);
  if (!run) await requireKnownDag(store, dagId);
  if (!run) throw new CliError(`DAG '${dagId}' has no run '${runId}'; list runs with \`podflow runs list ${dagId}\``);
  return run;
}

/** The failed task instances of a run, with their notes, and how to read their logs. */
export function failedTasksReport(dagId: string, runId: string, tis: TaskInstanceRecord[]): string {
  const failed = tis.filter((t) => t.state === 'failed' || t.state === 'upstream_failed');
  if (!failed.length) return '';
  const lines = failed.map((t) => {
    const name = t.map_index >= 0 ? `${t.task_id}[${t.map_index}]` : t.task_id;
    return `  ${name}: ${t.state}${t.note ? ` (${t.note})` : ''}`;
  });
  const first = failed.find((t) => t.state === 'failed') ?? failed[0];
  const mapArg = first.map_index >= 0 ? ` --map-index ${first.map_index}` : '';
  return `failed task instances:\n${lines.join('\n')}\nread a log with: npx podflow tasks logs ${dagId} ${runId} ${first.task_id}${mapArg}\n`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('podflow')
    .description('Airflow-style pipelines in TypeScript: DAG files in ./dags, Redis-backed scheduler and workers.')
    .showHelpAfterError()
    .addHelpText(
      'after',
      `\nConfiguration (environment variables):\n${ENV_VARS.map((v) => `  ${v.name.padEnd(32)} ${v.description} [default: ${v.default}]`).join('\n')}\n\nQuick start:\n  npx podflow up                                   # scheduler + worker + API, example DAGs\n  npx podflow dags trigger iris_training --wait    # run the pipeline and wait for it`,
    );

  program.command('up').description('scheduler, worker and API in one process (starts a private Redis when REDIS_URL is unset)').action(async () => {
    await serve(ctx.config, { scheduler: true, worker: true, api: true }, { privateRedis: true });
  });
  program.command('scheduler').description('run only the scheduler (loads DAG files, creates runs, queues tasks)').action(async () => {
    await serve(ctx.config, { scheduler: true }, { privateRedis: false });
  });
  program.command('worker').description('run only a worker (executes task tries from the queue)').action(async () => {
    await serve(ctx.config, { worker: true }, { privateRedis: false });
  });
  program.command('api').description('run only the REST API').action(async () => {
    await serve(ctx.config, { api: true }, { privateRedis: false });
  });

  const dags = program.command('dags').description('list, inspect, trigger and pause DAGs');
  dags
    .command('list')
    .description('DAGs defined by the files in the DAGs folder')
    .option('--json', 'print JSON as the API returns it')
    .action(async (o: { json?: boolean }) => {
      const store = await ctx.store();
      const errs = new Set((await store.importErrors()).map((e) => e.dag_id));
      const rows = [];
      for (const id of await store.dagIds()) {
        const spec = await store.getDag(id);
        if (spec) rows.push(dagToApi(spec, await store.getDagMeta(id), errs.has(id)));
      }
      if (o.json) return ctx.out(JSON.stringify(rows, null, 2));
      ctx.out(
        table(
          ['dag_id', 'schedule', 'paused', 'tasks', 'file'],
          rows.map((d) => [d.dag_id, d.timetable_description ?? 'manual', String(d.is_paused), String(d.tasks.length), d.fileloc]),
        ),
      );
    });
  dags
    .command('errors')
    .description('DAG files that failed to import, and why')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const errs = await (await ctx.store()).importErrors();
      if (o.json) return ctx.out(JSON.stringify(errs, null, 2));
      if (errs.length === 0) return ctx.out('No import errors.');
      for (const e of errs) ctx.out(`${e.filename}${e.dag_id ? ` (DAG '${e.dag_id}')` : ''} at ${e.timestamp}\n  ${e.stack_trace.split('\n').join('\n  ')}\n`);
    });
  dags
    .command('trigger <dag_id>')
    .description('start a manual run')
    .option('--conf <json>', 'run configuration as a JSON object')
    .option('--run-id <id>', 'run id (default manual__<logical date>)')
    .option('--logical-date <iso>', 'logical date (default now)')
    .option('--wait', 'wait until the run ends; exit 0 on success, 1 otherwise')
    .option('--json', 'print the run as the API returns it')
    .action(async (dagId: string, o: { conf?: string; runId?: string; logicalDate?: string; wait?: boolean; json?: boolean }) => {
      const store = await ctx.store();
      const dag = await requireDag(store, dagId);
      let run;
      try {
        run = await triggerDagRun(store, dag, { conf: parseConf(o.conf), dag_run_id: o.runId, logical_date: o.logicalDate });
      } catch (e) {
        if (e instanceof DagRunExistsError || e instanceof TriggerError) throw new CliError(e.message);
        throw e;
      }
      if (!o.json) process.stderr.write(`triggered ${dagId} run ${run.dag_run_id}\n`);
      if (!o.wait) {
        if (o.json) ctx.out(JSON.stringify(dagRunToApi(run), null, 2));
        return;
      }
      let last = '';
      for (;;) {
        const cur = (await store.getRun(dagId, run.dag_run_id))!;
        const tis = await store.listTis(dagId, run.dag_run_id);
        const counts = new Map<string, number>();
        for (const t of tis) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
        const line = `${cur.state}: ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')}`;
        if (line !== last) process.stderr.write(`  ${line}\n`);
        last = line;
        if (cur.state === 'success' || cur.state === 'failed') {
          if (o.json) ctx.out(JSON.stringify(await runDetail(store, cur), null, 2));
          else ctx.out(`run ${cur.dag_run_id}: ${cur.state}`);
          if (cur.state !== 'success') {
            process.exitCode = 1;
            if (!o.json) process.stderr.write(failedTasksReport(dagId, cur.dag_run_id, tis));
          }
          return;
        }
        await sleep(500);
      }
    });
  for (const [name, paused] of [
    ['pause', true],
    ['unpause', false],
  ] as const) {
    dags
      .command(`${name} <dag_id>`)
      .description(paused ? 'stop creating scheduled runs' : 'resume creating scheduled runs')
      .action(async (dagId: string) => {
        const store = await ctx.store();
        await requireDag(store, dagId);
        await store.setPaused(dagId, paused);
        ctx.out(`DAG ${dagId} ${paused ? 'paused' : 'unpaused'}`);
      });
  }

  const runs = program.command('runs').description('DAG runs');
  runs
    .command('list <dag_id>')
    .option('--limit <n>', 'how many', '20')
    .option('--json', 'print JSON')
    .action(async (dagId: string, o: { limit: string; json?: boolean }) => {
      const store = await ctx.store();
      await requireKnownDag(store, dagId);
      const list = (await store.listRuns(dagId, { limit: Number(o.limit) })).map(dagRunToApi);
      if (o.json) return ctx.out(JSON.stringify(list, null, 2));
      ctx.out(table(['dag_run_id', 'state', 'run_type', 'logical_date', 'start', 'end'], list.map((r) => [r.dag_run_id, r.state, r.run_type, r.logical_date, r.start_date ?? '', r.end_date ?? ''])));
    });
  runs
    .command('show <dag_id> <run_id>')
    .description('a run with each task instance: state, tries, XComs and metrics')
    .option('--json', 'print JSON')
    .option('--lineage', "the run's whole provenance: code and data hashes, images, inputs, outputs, artifacts, cost")
    .action(async (dagId: string, runId: string, o: { json?: boolean; lineage?: boolean }) => {
      const store = await ctx.store();
      const run = await requireRun(store, dagId, runId);
      if (o.lineage) {
        const p = await runProvenance(new LineageStore(store.redis, ctx.config.prefix, { retentionDays: ctx.config.retentionDays }), dagId, runId);
        if (!p) throw new CliError(`no lineage is recorded for run '${runId}' of DAG '${dagId}' yet (records are written as tries finish)`);
        return ctx.out(o.json ? JSON.stringify(p, null, 2) : renderProvenance(p));
      }
      const detail = await runDetail(store, run);
      if (o.json) return ctx.out(JSON.stringify(detail, null, 2));
      ctx.out(`${detail.dag_id} ${detail.dag_run_id}: ${detail.state} (${detail.run_type}, logical date ${detail.logical_date})`);
      ctx.out(
        table(
          ['task', 'map', 'state', 'try', 'duration', 'metrics', 'return_value'],
          detail.task_instances.map((t) => [
            t.task_id,
            t.map_index === -1 ? '' : String(t.map_index),
            t.state ?? 'none',
            `${t.try_number}/${t.max_tries}`,
            t.duration === null ? '' : `${t.duration.toFixed(2)}s`,
            Object.entries(t.metrics).map(([k, v]) => `${k}=${Number(v.toFixed(4))}`).join(' '),
            t.xcom.return_value === undefined ? '' : JSON.stringify(t.xcom.return_value).slice(0, 60),
          ]),
        ),
      );
    });

  const tasks = program.command('tasks').description('task instances');
  tasks
    .command('logs <dag_id> <run_id> <task_id>')
    .description('the log of a try (default: the latest)')
    .option('--try <n>', 'try number')
    .option('--map-index <n>', 'map index of a mapped task', '-1')
    .action(async (dagId: string, runId: string, taskId: string, o: { try?: string; mapIndex: string }) => {
      if (!/^-?\d+$/.test(o.mapIndex) || Number(o.mapIndex) < -1) {
        throw new CliError(`--map-index must be a whole number (0, 1, … for a mapped task; -1 for an unmapped one), not '${o.mapIndex}'`);
      }
      if (o.try !== undefined && (!/^\d+$/.test(o.try) || Number(o.try) < 1)) {
        throw new CliError(`--try must be a try number of 1 or more (1 is the first try), not '${o.try}'`);
      }
      const store = await ctx.store();
      await requireRun(store, dagId, runId);
      const key = { dag_id: dagId, dag_run_id: runId, task_id: taskId, map_index: Number(o.mapIndex) };
      const ti = await store.getTi(key);
      if (!ti) {
        const mapped = (await store.listTis(dagId, runId)).filter((t) => t.task_id === taskId && t.map_index >= 0).map((t) => t.map_index);
        if (mapped.length && key.map_index === -1) {
          mapped.sort((a, b) => a - b);
          throw new CliError(`task '${taskId}' in run '${runId}' of DAG '${dagId}' is mapped: pick one instance with --map-index (valid: ${mapped.join(', ')})`);
        }
        if (mapped.length) {
          mapped.sort((a, b) => a - b);
          throw new CliError(`task '${taskId}' in run '${runId}' of DAG '${dagId}' has no map index ${key.map_index}; valid map indexes: ${mapped.join(', ')}`);
        }
        throw new CliError(`no task instance '${taskId}'${key.map_index >= 0 ? `[${key.map_index}]` : ''} in run '${runId}' of DAG '${dagId}'`);
      }
      const tryNumber = o.try ? Number(o.try) : ti.try_number;
      if (ti.try_number === 0) throw new CliError(`task '${taskId}' has not started a try yet (state ${ti.state}); there is no log to show`);
      if (!Number.isInteger(tryNumber) || tryNumber < 1 || tryNumber > ti.try_number) {
        throw new CliError(`task '${taskId}' has ${ti.try_number} tr${ti.try_number === 1 ? 'y' : 'ies'}; pick --try between 1 and ${ti.try_number}`);
      }
      ctx.out((await store.readLog(key, tryNumber)).join('\n'));
    });
  tasks
    .command('mark <dag_id> <run_id> <task_id> <state>')
    .description('mark a task instance success, failed or skipped (a running try is stopped)')
    .action(async (dagId: string, runId: string, taskId: string, state: string) => {
      if (!['success', 'failed', 'skipped'].includes(state)) throw new CliError(`state must be success, failed or skipped, not '${state}'`);
      const store = await ctx.store();
      await requireRun(store, dagId, runId);
      const changed = await setTaskState(store, dagId, runId, taskId, state as 'success' | 'failed' | 'skipped');
      ctx.out(`${changed.length} task instance(s) marked ${state}`);
    });
  tasks
    .command('clear <dag_id> <run_id> <task_ids...>')
    .description('clear task instances so they run again')
    .option('--downstream', 'also clear their downstream tasks')
    .option('--only-failed', 'only failed or upstream_failed instances')
    .action(async (dagId: string, runId: string, taskIds: string[], o: { downstream?: boolean; onlyFailed?: boolean }) => {
      const store = await ctx.store();
      const dag = await requireDag(store, dagId);
      await requireRun(store, dagId, runId);
      const cleared = await clearTasks(store, dag, runId, { taskIds, includeDownstream: o.downstream, onlyFailed: o.onlyFailed });
      ctx.out(`cleared ${cleared.length} task instance(s): ${cleared.map((t) => t.task_id).join(', ')}`);
    });

  const pools = program.command('pools').description('pools limit how many tasks run at once across all DAGs');
  pools.command('list').action(async () => {
    const list = await (await ctx.store()).listPools();
    ctx.out(table(['pool', 'slots', 'occupied', 'description'], list.map((p) => [p.name, String(p.slots), String(p.occupied_slots), p.description ?? ''])));
  });
  pools
    .command('set <name> <slots>')
    .description('create or resize a pool')
    .option('--description <text>')
    .action(async (name: string, slots: string, o: { description?: string }) => {
      const n = Number(slots);
      if (!/^-?\d+$/.test(slots) || !Number.isInteger(n) || n < -1) throw new CliError(`slots must be a whole number >= 0 (or -1 for unlimited), not '${slots}'`);
      if (n > MAX_POOL_SLOTS) throw new CliError(`slots must be at most ${MAX_POOL_SLOTS.toLocaleString('en-US')} (use -1 for unlimited), not ${slots}`);
      if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new CliError(`pool name '${name}' is invalid: use letters, digits and _ . -`);
      // No --description keeps the pool's current one.
      await (await ctx.store()).putPool({ name, slots: n, description: o.description });
      ctx.out(`pool ${name}: ${n} slots`);
    });
  pools.command('delete <name>').action(async (name: string) => {
    if (name === 'default_pool') throw new CliError('default_pool cannot be deleted; resize it with `podflow pools set default_pool <slots>`');
    const ok = await (await ctx.store()).deletePool(name);
    if (!ok) throw new CliError(`pool '${name}' does not exist`);
    ctx.out(`pool ${name} deleted`);
  });

  for (const add of extraCommands) add(program, ctx);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const ctx = context();
  const program = buildProgram(ctx);
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
    } else if (e instanceof CliError) {
      process.stderr.write(`podflow: ${e.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`podflow: ${(e as Error).stack ?? e}\n`);
      process.exitCode = 1;
    }
  } finally {
    ctx.close();
  }
}
