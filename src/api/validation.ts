/**
 * Request body (and query) schemas for the Airflow stable REST API paths Podflow serves,
 * with Airflow's field names and defaults. Unknown fields are rejected, so a typo such as
 * `{ "is_pasued": true }` is a 400 naming the field instead of a silent no-op.
 *
 * @example
 * ```ts
 * app.post('/api/v1/dags/:dag_id/dagRuns', async (req, res) => {
 *   const body = parseBody(triggerDagRunBody, req.body); // throws ApiProblem 400
 *   …
 * });
 * ```
 */
import { z } from 'zod';
import { badRequest, zodIssuesDetail, type ApiProblem } from './problem.ts';

const json: z.ZodType<unknown> = z.json();
const jsonObject = z.record(z.string(), json);

/** An ISO 8601 timestamp with a zone (`2026-01-01T00:00:00Z` or `…+02:00`), as Airflow requires. */
export const isoDateTime = z.iso.datetime({ offset: true });

/** POST /api/v1/dags/{dag_id}/dagRuns */
export const triggerDagRunBody = z
  .strictObject({
    dag_run_id: z.string().min(1).max(250).regex(/^[A-Za-z0-9_.~:+-]+$/, 'use letters, digits and _ . ~ : + - only').nullish(),
    logical_date: isoDateTime.nullish(),
    /** Airflow < 2.2 name of logical_date; still accepted by Airflow's API. */
    execution_date: isoDateTime.nullish(),
    conf: jsonObject.optional(),
    note: z.string().max(1000).nullish(),
  })
  .refine((b) => !(b.logical_date && b.execution_date), {
    message: 'give logical_date or execution_date, not both (execution_date is the deprecated name)',
    path: ['execution_date'],
  });
export type TriggerDagRunBody = z.output<typeof triggerDagRunBody>;

/** PATCH /api/v1/dags/{dag_id} */
export const patchDagBody = z.strictObject({ is_paused: z.boolean() });
export type PatchDagBody = z.output<typeof patchDagBody>;

/** PATCH /api/v1/dags/{dag_id}/dagRuns/{dag_run_id} */
export const patchDagRunStateBody = z.strictObject({ state: z.enum(['success', 'failed', 'queued']) });
export type PatchDagRunStateBody = z.output<typeof patchDagRunStateBody>;

/** PATCH /api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/setNote (and the task instance equivalent) */
export const setNoteBody = z.strictObject({ note: z.string().max(1000).nullable() });
export type SetNoteBody = z.output<typeof setNoteBody>;

/**
 * PATCH /api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}
 * (Airflow's UpdateTaskInstance; `dry_run` defaults to false here, unlike Airflow's true,
 * because a PATCH that changes nothing by default surprises more than it protects).
 */
export const setTaskInstanceStateBody = z.strictObject({
  new_state: z.enum(['success', 'failed', 'skipped']),
  dry_run: z.boolean().default(false),
  map_index: z.number().int().min(-1).optional(),
  include_upstream: z.boolean().default(false),
  include_downstream: z.boolean().default(false),
});
export type SetTaskInstanceStateBody = z.output<typeof setTaskInstanceStateBody>;

/** POST /api/v1/dags/{dag_id}/clearTaskInstances (Airflow's ClearTaskInstances, with its defaults). */
export const clearTaskInstancesBody = z.strictObject({
  /** Airflow defaults to true: the answer lists what would be cleared, nothing changes. */
  dry_run: z.boolean().default(true),
  task_ids: z.array(z.string().min(1)).min(1).optional(),
  dag_run_id: z.string().min(1).nullish(),
  start_date: isoDateTime.optional(),
  end_date: isoDateTime.optional(),
  only_failed: z.boolean().default(true),
  only_running: z.boolean().default(false),
  reset_dag_runs: z.boolean().default(true),
  include_upstream: z.boolean().default(false),
  include_downstream: z.boolean().default(false),
  include_future: z.boolean().default(false),
  include_past: z.boolean().default(false),
});
export type ClearTaskInstancesBody = z.output<typeof clearTaskInstancesBody>;

const poolName = z.string().min(1).max(256).regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits and _ . - only');

/** POST /api/v1/pools */
export const createPoolBody = z.strictObject({
  name: poolName,
  slots: z.number().int().min(-1, 'slots must be a whole number >= 0, or -1 for unlimited'),
  description: z.string().max(1000).nullish(),
  include_deferred: z.boolean().optional(),
});
export type CreatePoolBody = z.output<typeof createPoolBody>;

/** PATCH /api/v1/pools/{pool_name}: any subset of the pool's fields. */
export const patchPoolBody = createPoolBody.partial();
export type PatchPoolBody = z.output<typeof patchPoolBody>;

/** POST /api/v1/datasets/events (Airflow 2.9's CreateDatasetEvent). */
export const createDatasetEventBody = z.strictObject({
  dataset_uri: z.string().min(1).max(3000),
  extra: jsonObject.nullish(),
});
export type CreateDatasetEventBody = z.output<typeof createDatasetEventBody>;

/** `limit`/`offset`/`order_by` of Airflow's list endpoints (query strings, so numbers are coerced). */
export const pagingQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
  order_by: z.string().regex(/^-?[a-z_]+$/, 'a field name, prefixed with - for descending').optional(),
});
export type PagingQuery = z.output<typeof pagingQuery>;

const listOf = <T extends z.ZodType>(item: T) =>
  z.preprocess((v) => (typeof v === 'string' ? v.split(',').filter(Boolean) : v), z.array(item));

/** GET /api/v1/dags/{dag_id}/dagRuns filters. */
export const listDagRunsQuery = pagingQuery.extend({
  state: listOf(z.enum(['queued', 'running', 'success', 'failed'])).optional(),
  execution_date_gte: isoDateTime.optional(),
  execution_date_lte: isoDateTime.optional(),
  start_date_gte: isoDateTime.optional(),
  start_date_lte: isoDateTime.optional(),
  end_date_gte: isoDateTime.optional(),
  end_date_lte: isoDateTime.optional(),
});
export type ListDagRunsQuery = z.output<typeof listDagRunsQuery>;

/**
 * Validate `body` against `schema`: the parsed value (defaults applied) or an
 * ApiProblem 400 whose detail names each bad field, e.g.
 * `Invalid request body: field 'slots': Invalid input: expected number, received string`.
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  // express.json() leaves req.body undefined when no JSON body was sent.
  const r = schema.safeParse(body === undefined ? {} : body);
  if (r.success) return r.data;
  throw invalid('request body', r.error.issues);
}

/** Like {@link parseBody}, for `req.query`. */
export function parseQuery<S extends z.ZodType>(schema: S, query: unknown): z.output<S> {
  const r = schema.safeParse(query ?? {});
  if (r.success) return r.data;
  throw invalid('query parameters', r.error.issues);
}

function invalid(what: string, issues: z.core.$ZodIssue[]): ApiProblem {
  return badRequest(`Invalid ${what}: ${zodIssuesDetail(issues)}`);
}
