/**
 * nightly_report: wait for the day's metrics export, then summarise it.
 *
 * Every night at 02:00 UTC a file sensor in reschedule mode waits for
 * `<params.input_dir>/<ds>.csv` (default input_dir: PODFLOW_ARTIFACTS/nightly_report/incoming),
 * holding no worker slot between pokes; after 6 hours without the file the sensor gives up
 * and the run fails. Once the file is there, `write_report` reads the CSV (a header row, then
 * rows of values) and writes a Markdown and a JSON summary (row count, and per numeric
 * column min/mean/max) to PODFLOW_ARTIFACTS/nightly_report/reports/<ds>.{md,json}.
 *
 * Try it: `npx podflow dags trigger nightly_report --conf '{"input_dir": "/tmp/exports"}'`,
 * then drop a CSV named after the run's date (e.g. /tmp/exports/2026-12-03.csv).
 * NIGHTLY_REPORT_POKE_INTERVAL (default 5m) sets how often the sensor looks.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { dag, type Json } from 'podflow';

function artifactsRoot(): string {
  return resolve(process.env.PODFLOW_ARTIFACTS ?? './artifacts');
}

type ColumnSummary = { column: string; count: number; min: number; mean: number; max: number };

/** Summaries of the numeric columns of a simple CSV (no quoted commas). */
export function summariseCsv(text: string): { rows: number; columns: string[]; numeric: ColumnSummary[] } {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new Error('the input file is empty; expected a header row and data rows');
  const columns = lines[0].split(',').map((c) => c.trim());
  const rows = lines.slice(1).map((l) => l.split(',').map((c) => c.trim()));
  const numeric: ColumnSummary[] = [];
  columns.forEach((column, j) => {
    const values = rows.map((r) => Number(r[j])).filter((v, i) => rows[i][j] !== '' && Number.isFinite(v));
    if (values.length === 0 || values.length !== rows.length) return;
    numeric.push({
      column,
      count: values.length,
      min: Math.min(...values),
      mean: values.reduce((a, b) => a + b, 0) / values.length,
      max: Math.max(...values),
    });
  });
  return { rows: rows.length, columns, numeric };
}

export default dag(
  {
    dag_id: 'nightly_report',
    description: "Wait for the day's metrics export (file sensor, reschedule mode), then write a report",
    schedule: '0 2 * * *',
    timezone: 'UTC',
    start_date: '2026-01-01',
    catchup: false,
    max_active_runs: 1,
    tags: ['example', 'sensors'],
    params: { input_dir: join(artifactsRoot(), 'nightly_report', 'incoming') },
    default_args: { owner: 'analytics', retries: 1, retry_delay: '1m' },
  },
  (d) => {
    const wait = d.sensor(
      'wait_for_export',
      'file',
      { path: '{{ params.input_dir }}/{{ ds }}.csv' },
      { mode: 'reschedule', poke_interval: process.env.NIGHTLY_REPORT_POKE_INTERVAL ?? '5m', timeout: '6h', doc: "Waits for the day's CSV without holding a worker slot" },
    );

    const report = d.task(
      'write_report',
      async (ctx) => {
        const found = (await ctx.xcom.pull('wait_for_export')) as { files: { path: string; size: number }[] };
        const input = found.files[found.files.length - 1].path;
        const summary = summariseCsv(await readFile(input, 'utf8'));
        const ds = ctx.logical_date.toISOString().slice(0, 10);
        const out = join(artifactsRoot(), 'nightly_report', 'reports');
        await mkdir(out, { recursive: true });
        const md = [
          `# Nightly report ${ds}`,
          '',
          `Input: ${input} (${summary.rows} rows, columns: ${summary.columns.join(', ')})`,
          '',
          '| column | count | min | mean | max |',
          '|---|---|---|---|---|',
          ...summary.numeric.map((c) => `| ${c.column} | ${c.count} | ${c.min} | ${c.mean.toFixed(4)} | ${c.max} |`),
          '',
        ].join('\n');
        const mdPath = join(out, `${ds}.md`);
        const jsonPath = join(out, `${ds}.json`);
        await writeFile(mdPath, md);
        await writeFile(jsonPath, `${JSON.stringify({ ds, input, ...summary }, null, 2)}\n`);
        await ctx.artifact(mdPath, { media_type: 'text/markdown' });
        await ctx.artifact(jsonPath, { media_type: 'application/json' });
        await ctx.metric('rows', summary.rows);
        ctx.log.info(`wrote ${mdPath} (${summary.rows} rows, ${summary.numeric.length} numeric columns)`);
        return { report: mdPath, json: jsonPath, rows: summary.rows } as Json;
      },
      { outlets: ['dataset://podflow/reports/nightly'] },
    );

    wait.then(report);
  },
);
