import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDag, type Dag } from '../dag/dag.ts';

/**
 * Worker side: the live Dag object (with its inline functions) of a DAG file, imported
 * in-process once per file content. The scheduler has already imported the same content in
 * a child process within the time limit, so this import is known to finish.
 */
const cache = new Map<string, Promise<Record<string, unknown>>>();

export class DagModuleError extends Error {
  readonly code = 'DAG_MODULE';
}

/**
 * @param fileHash the content hash the scheduler loaded (DagSpec.file_hash); when given, the
 *   module of that version is reused without reading the file again.
 */
export async function loadDagObject(file: string, dagId: string, fileHash?: string): Promise<Dag> {
  const abs = isAbsolute(file) ? file : resolve(process.cwd(), file);
  let hash = fileHash?.slice(0, 16);
  if (!hash || !cache.has(`${abs}?v=${hash}`)) {
    let content: Buffer;
    try {
      content = readFileSync(abs);
    } catch {
      throw new DagModuleError(`DAG file ${file} of DAG '${dagId}' cannot be read on this worker; is the DAGs folder the same on every worker?`);
    }
    hash = createHash('sha256').update(content).digest('hex').slice(0, 16);
  }
  const key = `${abs}?v=${hash}`;
  let mod = cache.get(key);
  if (!mod) {
    // The query string makes Node import a changed file anew instead of returning the old module.
    mod = import(`${pathToFileURL(abs).href}?v=${hash}`) as Promise<Record<string, unknown>>;
    cache.set(key, mod);
    mod.catch(() => cache.delete(key));
  }
  const exports = await mod;
  for (const value of Object.values(exports)) {
    for (const c of Array.isArray(value) ? value : [value]) {
      if (isDag(c) && c.dag_id === dagId) return c;
    }
  }
  throw new DagModuleError(`${file} no longer defines DAG '${dagId}'; the file changed after the run was scheduled`);
}
