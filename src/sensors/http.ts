import { z } from 'zod';
import type { Json } from '../dag/types.ts';
import { describePredicate, evaluatePredicate, jsonPredicateSchema, valueAt } from './json-predicate.ts';
import { SensorFailure, type PokeResult, type Sensor } from './sensor.ts';

export const httpSensorArgs = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  /** Extra request headers (no secrets here: DAG files are not secret). */
  headers: z.record(z.string(), z.string()).default({}),
  /** Headers whose values come from the worker's environment, e.g. `{ authorization: 'LABELS_API_AUTH' }`. */
  headers_from_env: z.record(z.string(), z.string()).default({}),
  /** Statuses that count as ready. */
  expected_status: z.array(z.number().int().min(100).max(599)).min(1).default([200]),
  /** Condition(s) on the JSON response; all must hold. */
  json_predicate: z.union([jsonPredicateSchema, z.array(jsonPredicateSchema).min(1)]).optional(),
  /** Per-request timeout. */
  timeout_ms: z.number().int().min(1).default(10_000),
  /** Larger bodies are not parsed (the poke is "not ready"). */
  max_body_bytes: z.number().int().min(1).default(1_048_576),
});
export type HttpSensorArgs = z.output<typeof httpSensorArgs>;

/**
 * GETs a URL and is done when the status is expected and the JSON predicates hold.
 * Connection errors, timeouts and other statuses mean "not ready yet" (the endpoint may
 * come up later). Done: XCom `{ status, value }` with the value at the first predicate's
 * path (or the parsed body when there is no predicate and it is JSON).
 */
export const httpSensor: Sensor<HttpSensorArgs> = {
  type: 'http',
  argsSchema: httpSensorArgs,
  async poke(args, ctx): Promise<PokeResult> {
    const preds = args.json_predicate === undefined ? [] : Array.isArray(args.json_predicate) ? args.json_predicate : [args.json_predicate];
    const headers: Record<string, string> = { accept: 'application/json', ...args.headers };
    for (const [name, envVar] of Object.entries(args.headers_from_env)) {
      const v = process.env[envVar];
      if (v === undefined) {
        throw new SensorFailure(`DAG '${ctx.dag_id}' task '${ctx.task_id}': header '${name}' comes from environment variable ${envVar}, which is not set on this worker; set it or drop the header`);
      }
      headers[name] = v;
    }
    let res: Response;
    try {
      res = await fetch(args.url, {
        method: 'GET',
        headers,
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(args.timeout_ms)]),
        redirect: 'follow',
      });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      return { done: false, detail: `GET ${args.url} failed: ${(err as Error).cause ? String((err as { cause: unknown }).cause) : (err as Error).message}` };
    }
    const text = await readLimited(res, args.max_body_bytes);
    if (!args.expected_status.includes(res.status)) {
      return { done: false, detail: `GET ${args.url} answered ${res.status}, waiting for ${args.expected_status.join(' or ')}` };
    }
    if (text === null) return { done: false, detail: `GET ${args.url}: body over ${args.max_body_bytes} bytes, not evaluated` };
    let doc: unknown;
    try {
      doc = text === '' ? undefined : JSON.parse(text);
    } catch {
      if (preds.length) return { done: false, detail: `GET ${args.url} answered ${res.status} but the body is not JSON` };
    }
    for (const p of preds) {
      if (!evaluatePredicate(doc, p)) {
        const seen = valueAt(doc, p.path);
        return { done: false, detail: `GET ${args.url}: waiting for ${describePredicate(p)} (now ${seen === undefined ? 'missing' : JSON.stringify(seen)})` };
      }
    }
    const value = (preds.length ? valueAt(doc, preds[0].path) : doc) as Json | undefined;
    return { done: true, xcom: { status: res.status, value: value ?? null } };
  },
};

async function readLimited(res: Response, max: number): Promise<string | null> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    // Leaving the loop cancels the stream.
    if (size > max) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
