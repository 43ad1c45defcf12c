import type { Command } from 'commander';
import { LineageStore } from '../lineage/store.ts';
import { lineageGraph, renderTree } from '../lineage/query.ts';
import type { CliContext } from './main.ts';
import { CliError } from './errors.ts';

/** `podflow lineage <uri>`: where an artifact or dataset came from and what used it; `--export` dumps every record as NDJSON. */
export function addLineageCommands(program: Command, ctx: CliContext): void {
  program
    .command('lineage [uri]')
    .description('provenance of an artifact (file path or URI) or dataset: the tries that produced it, their inputs recursively, and its consumers')
    .option('--json', 'print the graph as JSON (as GET /api/v1/lineage returns it)')
    .option('--depth <n>', 'how many try levels to follow each way', '10')
    .option('--upstream', 'only where it came from')
    .option('--downstream', 'only what consumed it')
    .option('--export', 'write every lineage record as newline-delimited JSON instead (with --dag and --since)')
    .option('--dag <dag_id>', 'with --export: one DAG only')
    .option('--since <iso>', 'with --export: tries that ended at or after this time')
    .action(async (uri: string | undefined, o: { json?: boolean; depth: string; upstream?: boolean; downstream?: boolean; export?: boolean; dag?: string; since?: string }) => {
      const store = await ctx.store();
      const lineage = new LineageStore(store.redis, ctx.config.prefix, { retentionDays: ctx.config.retentionDays });
      if (o.export) {
        const n = await lineage.exportNdjson(process.stdout, { dag_id: o.dag, since: o.since });
        process.stderr.write(`exported ${n} lineage record(s)\n`);
        return;
      }
      if (!uri) throw new CliError('give an artifact path or URI, e.g. `podflow lineage artifacts/iris_training/model.json`, or --export');
      const depth = Number(o.depth);
      const graph = await lineageGraph(lineage, uri, {
        depth: Number.isInteger(depth) && depth > 0 ? depth : 10,
        direction: o.upstream ? 'upstream' : o.downstream ? 'downstream' : 'both',
      });
      ctx.out(o.json ? JSON.stringify(graph, null, 2) : renderTree(graph));
    });
}
