import type { Json } from '../dag/types.ts';
import { CliError } from './errors.ts';

/** The value of a `--conf` option: a JSON object, or a CliError saying how to write one. */
export function parseConf(text: string | undefined): Record<string, Json> {
  if (text === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CliError(`--conf is not valid JSON (${(e as Error).message}); write it like --conf '{"lr": 0.1}'`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CliError(`--conf must be a JSON object such as '{"lr": 0.1}'`);
  return v as Record<string, Json>;
}
