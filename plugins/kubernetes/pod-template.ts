/**
 * Pod templates: a base V1Pod (object or JSON/YAML file) that a task's fields are merged onto.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { loadKubeClient } from './kube-client.ts';

/**
 * Resolves `pod_template`: an object is used as-is; a string is a path, relative to the DAG
 * file's folder, to a JSON or YAML pod manifest (parsed with the client's YAML loader, so it
 * loads `@kubernetes/client-node`). Rejects with the path and the fix.
 */
export async function resolvePodTemplate(ref: string | Record<string, unknown> | undefined, dagDir: string, where: string): Promise<V1Pod | null> {
  if (ref === undefined) return null;
  if (typeof ref !== 'string') return structuredClone(ref) as V1Pod;
  const path = isAbsolute(ref) ? ref : resolve(dagDir, ref);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${where}: pod_template file ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give a path relative to the DAG file's folder`);
  }
  const { loadYaml } = await loadKubeClient();
  let obj: unknown;
  try {
    obj = loadYaml(text); // YAML is a superset of JSON
  } catch (e) {
    throw new Error(`${where}: pod_template file ${path} is not valid YAML/JSON: ${(e as Error).message}`);
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new Error(`${where}: pod_template file ${path} must hold one Pod object`);
  }
  return obj as V1Pod;
}

/** Folder used to resolve relative template paths for a DAG file. */
export function dagDirOf(dagFile: string, dagsFolder: string): string {
  if (isAbsolute(dagFile)) return dirname(dagFile);
  const inFolder = resolve(dagsFolder, dagFile);
  return dirname(existsSync(inFolder) ? inFolder : resolve(dagFile));
}
