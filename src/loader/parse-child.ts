/**
 * Child process entry: import one DAG file and report its DAGs as JSON over IPC. Running
 * each file in its own process is what lets a file that throws, exits, or loops forever at
 * import become an import error without harming the scheduler.
 */
import { pathToFileURL } from 'node:url';
import { isDag, type Dag } from '../dag/dag.ts';
import type { DagSpec } from '../dag/types.ts';

export interface ParseResult {
  ok: boolean;
  dags: DagSpec[];
  /** Invalid DAGs in an otherwise importable file, or the file's own import failure (dag_id null). */
  errors: { dag_id: string | null; message: string }[];
}

async function main(): Promise<void> {
  const [file, fileHash] = process.argv.slice(2);
  const result: ParseResult = { ok: true, dags: [], errors: [] };
  try {
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    const seen = new Set<Dag>();
    for (const value of Object.values(mod)) {
      const candidates = Array.isArray(value) ? value : [value];
      for (const c of candidates) {
        if (!isDag(c) || seen.has(c)) continue;
        seen.add(c);
        try {
          result.dags.push(c.toSpec(file, fileHash));
        } catch (e) {
          result.ok = false;
          result.errors.push({ dag_id: c.dag_id ?? null, message: (e as Error).message });
        }
      }
    }
  } catch (e) {
    result.ok = false;
    const err = e as Error;
    result.errors.push({ dag_id: null, message: formatImportFailure(err) });
  }
  process.send!(result, () => process.exit(0));
}

/** The first line of an import failure and up to 8 stack frames in user code (no Node internals, no node_modules). */
function formatImportFailure(err: Error): string {
  const stack = (err?.stack ?? String(err)).split('\n');
  // Keep the message and the frames inside user code; Node's loader frames help nobody.
  // Frames in Node's own modules look like "at Socket.emit (node:events:524:28)" or "at node:internal/…".
  const frames = stack.slice(1).filter((l) => !/[( ]node:/.test(l) && !l.includes('/node_modules/'));
  return [stack[0], ...frames.slice(0, 8)].join('\n');
}

main().catch((e) => {
  process.send!({ ok: false, dags: [], errors: [{ dag_id: null, message: String(e) }] }, () => process.exit(1));
});
