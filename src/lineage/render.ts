/**
 * Terminal rendering of lineage query results: the graph around an artifact as a tree, and a
 * run's provenance as a report. The JSON forms are the query results themselves (query.ts).
 */
import type { Json } from '../dag/types.ts';
import type { DatasetNode, DatasetRef, LineageNode, RunProvenance, TryNode } from './query.ts';

/** First 12 hex characters of a hash, prefixed with its algorithm: `sha256:3f2a9c1b4e5d`. */
export function shortHash(h: string | null | undefined): string {
  if (!h) return '-';
  const [algo, hex] = h.includes(':') ? h.split(':', 2) : ['sha256', h];
  return `${algo}:${hex.slice(0, 12)}`;
}

/** `image ghcr.io/acme/ft:v3  digest sha256:3f2a9c1b4e5d` from an image and a digest or imageID (`repo@sha256:…`). */
function imageLine(image: string, digest: string | null): string {
  const m = digest ? /sha256:([0-9a-f]{12})/.exec(digest) : null;
  return `image ${image}${m ? `  digest sha256:${m[1]}` : digest ? `  digest ${digest}` : ''}`;
}

function humanSize(n: number | null): string | null {
  if (n === null) return null;
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function kv(o: Record<string, Json | number>): string {
  return Object.keys(o)
    .sort()
    .map((k) => `${k}=${typeof o[k] === 'string' ? o[k] : JSON.stringify(o[k])}`)
    .join(' ');
}

function datasetLine(d: DatasetRef | DatasetNode): string {
  const parts = [d.uri];
  if (d.sha256) parts.push(shortHash(d.sha256));
  if (d.version_id) parts.push(`version ${d.version_id}`);
  else if (d.etag) parts.push(`etag ${d.etag}`);
  const size = humanSize(d.size);
  if (size) parts.push(size);
  if (d.media_type) parts.push(d.media_type);
  return parts.join('  ');
}

function tryHeader(t: TryNode): string {
  const map = t.map_index >= 0 ? `[${t.map_index}]` : '';
  return `${t.dag_id}.${t.task_id}${map}  try ${t.try_number}  ${t.state}`;
}

/** Detail lines of a try; what equals the nearest try above it in the tree (same run, code, params) is not repeated. */
function tryDetails(t: TryNode, above: TryNode | null): string[] {
  if (t.elided === 'seen') return ['(shown above)'];
  const sameRun = above !== null && above.dag_id === t.dag_id && above.run_id === t.run_id;
  const lines = [sameRun ? `same run  ${t.start} → ${t.end}` : `run ${t.run_id}  ${t.start} → ${t.end}`];
  if (!(sameRun && above.dag_file_hash === t.dag_file_hash && above.git_commit === t.git_commit)) {
    let code = `code ${t.dag_file} ${shortHash(t.dag_file_hash)}`;
    if (t.git_commit) code += `  git ${t.git_commit.slice(0, 12)}`;
    lines.push(code);
  }
  if (t.image) lines.push(imageLine(t.image, t.image_digest));
  const sameSettings = sameRun && JSON.stringify(above.params) === JSON.stringify(t.params) && JSON.stringify(above.conf) === JSON.stringify(t.conf);
  if (!sameSettings) {
    if (Object.keys(t.params).length) lines.push(`params ${kv(t.params)}`);
    const confOnly = Object.fromEntries(Object.entries(t.conf).filter(([k]) => !(k in t.params)));
    if (Object.keys(confOnly).length) lines.push(`conf ${kv(confOnly)}`);
  }
  if (Object.keys(t.metrics).length) lines.push(`metrics ${kv(t.metrics)}`);
  // small return values carry what a step chose (the best hyper-parameters, a model path …)
  if (t.return_value !== null) {
    const json = JSON.stringify(t.return_value);
    lines.push(`returned ${json.length > 300 ? `${json.slice(0, 299)}…` : json}`);
  }
  if (t.elided === 'depth') lines.push('(depth limit reached; query this try’s inputs to go further)');
  return lines;
}

interface Labeled {
  label: string;
  node: LineageNode;
}

function children(n: LineageNode): Labeled[] {
  if (n.kind === 'dataset') {
    return [
      ...n.produced_by.map((node) => ({ label: 'produced by', node })),
      ...n.consumed_by.map((node) => ({ label: 'read by', node })),
    ];
  }
  return [
    ...n.inputs.map((node) => ({ label: 'read', node })),
    ...n.upstream.map((node) => ({ label: 'after', node })),
    ...n.outputs.map((node) => ({ label: 'wrote', node })),
    ...n.downstream.map((node) => ({ label: 'then', node })),
  ];
}

function renderInto(lines: string[], n: LineageNode, label: string | null, prefix: string, last: boolean, above: TryNode | null): void {
  const branch = label === null ? '' : last ? '└─ ' : '├─ ';
  const cont = label === null ? '' : last ? '   ' : '│  ';
  const head = n.kind === 'dataset' ? datasetLine(n) : tryHeader(n);
  lines.push(`${prefix}${branch}${label ? `${label} ` : ''}${head}`);
  const kids = children(n);
  const inner = prefix + cont;
  if (n.kind === 'try') for (const d of tryDetails(n, above)) lines.push(`${inner}${kids.length ? '│  ' : '   '}${d}`);
  const nextAbove = n.kind === 'try' && !n.elided ? n : above;
  kids.forEach((k, i) => renderInto(lines, k.node, k.label, inner, i === kids.length - 1, nextAbove));
}

/**
 * The lineage graph as a tree for the terminal: datasets with shortened hashes, sizes and
 * media types; tries with their run, code hash and git commit, image, params (the chosen
 * hyper-parameters) and metrics (accuracy …).
 *
 * @example
 * file:///srv/artifacts/model.json  sha256:6c903e8e5166  35 B  application/json
 * ├─ produced by iris_training.train  try 1  success
 * │  │  run manual__2026-12-03T10:00:00+00:00  2026-12-03T10:00:03.000Z → 2026-12-03T10:00:33.000Z
 * │  │  code /srv/dags/iris_training.ts sha256:ca9329d3cbbb  git 571a8d4e04d3
 * │  │  params max_depth=5 n_estimators=50
 * │  ├─ after iris_training.split  try 1  success
 * │  │  │  same run  2026-12-03T10:00:01.000Z → 2026-12-03T10:00:02.000Z
 * │  │  ├─ read file:///srv/data/iris.csv  sha256:f3181d9c722d  108 B  text/csv
 * │  │  └─ wrote file:///srv/artifacts/split.json  sha256:05784ad4ed73  24 B  application/json
 * │  └─ then iris_training.evaluate  try 1  success
 * │        same run  2026-12-03T10:00:34.000Z → 2026-12-03T10:00:35.000Z
 * │        metrics accuracy=0.9667
 * └─ read by iris_training.publish  try 1  success
 *       …
 */
export function renderTree(node: LineageNode): string {
  const lines: string[] = [];
  renderInto(lines, node, null, '', true, null);
  if (node.kind === 'dataset' && node.produced_by.length === 0 && node.consumed_by.length === 0) {
    lines.push('   (no recorded producer or consumer: it was never declared as an inlet, outlet or artifact, or its records are past retention)');
  }
  return lines.join('\n') + '\n';
}

/** A run's provenance for the terminal (`podflow runs show --lineage`). */
export function renderProvenance(p: RunProvenance): string {
  const out: string[] = [];
  out.push(`run ${p.run_id} of ${p.dag_id}${p.run_type ? ` (${p.run_type})` : ''}  ${p.start} → ${p.end}`);
  let code = `code ${p.dag_file} ${shortHash(p.dag_file_hash)}`;
  if (p.git_commit) code += `  git ${p.git_commit.slice(0, 12)}`;
  out.push(code);
  if (Object.keys(p.params).length) out.push(`params ${kv(p.params)}`);
  if (Object.keys(p.conf).length) out.push(`conf ${kv(p.conf)}`);
  if (Object.keys(p.metrics).length) out.push(`metrics ${kv(p.metrics)}`);
  out.push(`cost cpu ${p.cost.cpu_seconds} core·s  memory ${p.cost.memory_gib_seconds} GiB·s  gpu ${p.cost.gpu_seconds} GPU·s (asked)`);
  out.push('inputs');
  for (const d of p.inputs) out.push(`  ${datasetLine(d)}`);
  if (!p.inputs.length) out.push('  (none declared)');
  out.push('outputs');
  for (const d of p.outputs) out.push(`  ${datasetLine(d)}`);
  if (!p.outputs.length) out.push('  (none)');
  out.push('tries');
  for (const t of p.tries) {
    const map = t.map_index >= 0 ? `[${t.map_index}]` : '';
    out.push(`  ${t.task_id}${map}  try ${t.try_number}  ${t.state}  ${t.duration_s}s  ${t.operator}/${t.executor}${t.exit_code !== null ? `  exit ${t.exit_code}` : ''}`);
    if (t.image) out.push(`    ${imageLine(t.image, t.image_digest)}`);
    if (t.argv) out.push(`    argv ${JSON.stringify(t.argv)}`);
    if (t.node || t.gpu_model) out.push(`    on ${t.node ?? '?'}${t.gpu_model ? ` gpu ${t.gpu_model}` : ''}`);
    for (const d of t.inputs) out.push(`    read ${datasetLine(d)}`);
    for (const d of t.outputs) out.push(`    wrote ${datasetLine(d)}`);
    if (Object.keys(t.metrics).length) out.push(`    metrics ${kv(t.metrics)}`);
    if (t.error) out.push(`    error ${t.error}`);
  }
  return out.join('\n') + '\n';
}
