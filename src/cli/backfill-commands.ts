import type { Command } from 'commander';
import {
  advanceBackfills,
  BackfillError,
  backfillProgress,
  cancelBackfill,
  createBackfill,
  describeProgress,
  listBackfills,
} from '../scheduler/backfill.ts';
import { CliError, type CliContext } from './main.ts';
import { table } from './table.ts';
import { parseConf } from './conf-arg.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/**
 * `podflow dags backfill <dag_id> --from <date> --to <date> [--wait]`, `podflow dags backfills
 * <dag_id>` and `podflow dags backfill-cancel <id>`. The backfill itself lives in Redis and is
 * advanced by the scheduler; this command also advances it while it runs and prints progress
 * until every run is created (with --wait: until every run has finished).
 */
export function addBackfillCommands(program: Command, ctx: CliContext): void {
  const dags = program.commands.find((c) => c.name() === 'dags') ?? program.command('dags');
  dags
    .command('backfill <dag_id>')
    .description('create runs for every schedule interval starting in [--from, --to], within max_active_runs, skipping intervals that already have a run')
    .requiredOption('--from <date>', 'first interval start to include (ISO date or date-time)')
    .requiredOption('--to <date>', 'last interval start to include (ISO date or date-time)')
    .option('--conf <json>', 'run configuration for every backfill run, as a JSON object')
    .option('--wait', 'keep running until every run has finished; exit 1 if any failed')
    .option('--poll-ms <ms>', 'how often to check progress', '500')
    .option('--json', 'print the final progress as JSON instead of progress lines')
    .action(async (dagId: string, o: { from: string; to: string; conf?: string; wait?: boolean; pollMs: string; json?: boolean }) => {
      const store = await ctx.store();
      const dag = await store.getDag(dagId);
      if (!dag) throw new CliError(`DAG '${dagId}' is not defined; known DAGs: ${(await store.dagIds()).join(', ') || '(none)'} (see also \`podflow dags errors\`)`);
      let bf;
      try {
        bf = await createBackfill(store, dag, { from: o.from, to: o.to, conf: parseConf(o.conf) });
      } catch (e) {
        if (e instanceof BackfillError) throw new CliError(e.message);
        throw e;
      }
      const say = (line: string) => {
        if (!o.json) ctx.out(line);
      };
      say(
        `backfill ${bf.id} of ${dagId}: ${bf.total} interval(s) from ${bf.from_date} to ${bf.to_date}` +
          (bf.existing ? `, ${bf.existing} already had a run and are skipped` : '') +
          `; at most ${dag.max_active_runs} run(s) at once`,
      );
      const pollMs = Math.max(20, Number(o.pollMs) || 500);
      let last = '';
      for (;;) {
        await advanceBackfills(store);
        const p = await backfillProgress(store, bf.id);
        const line = describeProgress(p);
        if (line !== last) say(line);
        last = line;
        const finished = o.wait ? p.done : p.backfill.state !== 'running';
        if (finished) {
          if (o.json) ctx.out(JSON.stringify(p, null, 2));
          else if (!o.wait) say(`every run created; the scheduler runs them (follow with \`podflow dags backfills ${dagId}\` or \`podflow runs list ${dagId}\`)`);
          if (o.wait && p.failed > 0) process.exitCode = 1;
          return;
        }
        await sleep(pollMs);
      }
    });

  dags
    .command('backfills <dag_id>')
    .description("a DAG's backfills with their progress")
    .option('--json', 'print JSON')
    .action(async (dagId: string, o: { json?: boolean }) => {
      const store = await ctx.store();
      const rows = [];
      for (const b of await listBackfills(store, dagId)) rows.push(await backfillProgress(store, b.id));
      if (o.json) return ctx.out(JSON.stringify(rows, null, 2));
      ctx.out(
        table(
          ['id', 'from', 'to', 'state', 'created', 'running', 'succeeded', 'failed', 'pending'],
          rows.map((p) => [
            String(p.backfill.id),
            p.backfill.from_date,
            p.backfill.to_date,
            p.backfill.state,
            String(p.created),
            String(p.queued + p.running),
            String(p.success),
            String(p.failed),
            String(p.pending),
          ]),
        ),
      );
    });

  dags
    .command('backfill-cancel <id>')
    .description('stop a backfill from creating more runs (runs already created carry on)')
    .action(async (id: string) => {
      const n = Number(id);
      if (!Number.isInteger(n) || n < 1) throw new CliError(`backfill id must be a whole number >= 1, not '${id}'`);
      try {
        const b = await cancelBackfill(await ctx.store(), n);
        ctx.out(`backfill ${n} of ${b.dag_id}: ${b.state}`);
      } catch (e) {
        if (e instanceof BackfillError) throw new CliError(e.message);
        throw e;
      }
    });
}
