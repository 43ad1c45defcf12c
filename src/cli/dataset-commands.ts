import type { Command } from 'commander';
import type { DagSpec, Json } from '../dag/types.ts';
import { checkDatasetUri, datasetUsage, DatasetEvents, DatasetUriError, referencedUris } from '../triggers/dataset-events.ts';
import { CliError, type CliContext } from './main.ts';
import { table } from './table.ts';

function parseExtra(text: string | undefined): Record<string, Json> {
  if (text === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CliError(`--extra is not valid JSON (${(e as Error).message}); write it like --extra '{"rows": 120}'`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CliError(`--extra must be a JSON object such as '{"rows": 120}'`);
  return v as Record<string, Json>;
}

/**
 * `podflow datasets list | events [uri] | event <uri> [--extra JSON]`: see and update the
 * datasets that start dataset-scheduled DAGs.
 */
export function addDatasetCommands(program: Command, ctx: CliContext): void {
  const datasets = program.command('datasets').description('datasets (assets): what produces them, what they start, their events');

  datasets
    .command('list')
    .description('datasets the DAGs mention or that have events, with producers, consumers and last update')
    .option('--json', 'print JSON as the API returns it')
    .action(async (o: { json?: boolean }) => {
      const store = await ctx.store();
      const events = new DatasetEvents(store);
      const dags: DagSpec[] = [];
      for (const id of await store.dagIds()) {
        const spec = await store.getDag(id);
        if (spec) dags.push(spec);
      }
      const known = new Map((await events.listDatasets()).map((d) => [d.uri, d]));
      const uris = [...new Set([...known.keys(), ...referencedUris(dags)])].sort();
      const latest = await events.latestIds(uris);
      const rows = uris.map((uri) => ({ uri, updated_at: known.get(uri)?.updated_at ?? null, has_events: (latest.get(uri) ?? 0) > 0, ...datasetUsage(uri, dags) }));
      if (o.json) return ctx.out(JSON.stringify(rows, null, 2));
      ctx.out(
        table(
          ['uri', 'produced by', 'starts', 'last event'],
          rows.map((r) => [
            r.uri,
            r.producing_tasks.map((t) => `${t.dag_id}.${t.task_id}`).join(', '),
            r.consuming_dags.map((d) => d.dag_id).join(', '),
            r.has_events ? (r.updated_at ?? '') : 'never',
          ]),
        ),
      );
    });

  datasets
    .command('events [uri]')
    .description('recent dataset events, newest first (all datasets, or one)')
    .option('--limit <n>', 'how many', '20')
    .option('--json', 'print JSON')
    .action(async (uri: string | undefined, o: { limit: string; json?: boolean }) => {
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new CliError(`--limit must be a whole number >= 1, got ${o.limit}`);
      const { events } = await new DatasetEvents(await ctx.store()).listEvents({ dataset_uri: uri, limit });
      if (o.json) return ctx.out(JSON.stringify(events, null, 2));
      ctx.out(
        table(
          ['id', 'uri', 'timestamp', 'source', 'extra'],
          events.map((e) => [
            String(e.id),
            e.dataset_uri,
            e.timestamp,
            e.source_dag_id ? `${e.source_dag_id}.${e.source_task_id}${e.source_map_index >= 0 ? `[${e.source_map_index}]` : ''} (${e.source_run_id})` : 'external',
            Object.keys(e.extra).length ? JSON.stringify(e.extra) : '',
          ]),
        ),
      );
    });

  datasets
    .command('event <uri>')
    .description('record that a dataset was updated (starts the DAGs scheduled on it)')
    .option('--extra <json>', 'extra information as a JSON object, passed to the triggered runs')
    .option('--json', 'print the event as JSON')
    .action(async (uri: string, o: { extra?: string; json?: boolean }) => {
      const extra = parseExtra(o.extra);
      try {
        checkDatasetUri(uri);
      } catch (e) {
        if (e instanceof DatasetUriError) throw new CliError(e.message);
        throw e;
      }
      const ev = await new DatasetEvents(await ctx.store()).record(uri, {}, extra);
      if (o.json) return ctx.out(JSON.stringify(ev, null, 2));
      ctx.out(`recorded event ${ev.id} on ${uri} at ${ev.timestamp}`);
    });
}
