/**
 * Backfills over the API (shaped after Airflow 3's `/backfills`): create one for a DAG and a
 * range, list, get with progress, cancel. The scheduler creates the runs as
 * `max_active_runs` allows.
 */
import type { Request } from 'express';
import { z } from 'zod';
import { advanceBackfills, BackfillError, backfillProgress, cancelBackfill, createBackfill, getBackfill, listBackfills } from '../../scheduler/backfill.ts';
import { badRequest, notFound } from '../problem.ts';
import type { ApiDeps, ApiRoute } from '../server.ts';
import { pagingQuery, parseBody, parseQuery } from '../validation.ts';

const createBackfillBody = z.strictObject({
  dag_id: z.string().min(1),
  from_date: z.string().min(1, 'from_date is the first interval start to include, e.g. 2026-01-01'),
  to_date: z.string().min(1, 'to_date is the last interval start to include, e.g. 2026-01-31'),
  dag_run_conf: z.record(z.string(), z.json()).nullish(),
});

const listBackfillsQuery = pagingQuery.extend({ dag_id: z.string().min(1).optional() });

function backfillId(req: Request): number {
  const id = Number(req.params.backfill_id);
  if (!Number.isInteger(id) || id < 1) throw badRequest(`backfill id must be a whole number >= 1, not '${String(req.params.backfill_id)}'`);
  return id;
}

/** The backfill route group. */
export function backfillRoutes({ store }: ApiDeps): ApiRoute[] {
  const withProgress = async (id: number) => {
    const p = await backfillProgress(store, id);
    return { ...p.backfill, progress: { pending: p.pending, created: p.created, queued: p.queued, running: p.running, success: p.success, failed: p.failed, done: p.done } };
  };
  return [
    {
      method: 'post',
      path: '/api/v1/backfills',
      summary: 'Backfill a DAG: runs for every schedule interval starting in [from_date, to_date], within max_active_runs',
      role: 'operator',
      tags: ['Backfill'],
      requestSchema: createBackfillBody,
      responses: { 200: { description: 'the backfill' }, 400: { description: 'bad range or a DAG without schedule' }, 404: { description: 'no such DAG' } },
      handler: async (req) => {
        const body = parseBody(createBackfillBody, req.body);
        const dag = await store.getDag(body.dag_id);
        if (!dag) throw notFound(`DAG '${body.dag_id}' is not defined; see GET /api/v1/dags for the DAGs Podflow knows`);
        try {
          const b = await createBackfill(store, dag, { from: body.from_date, to: body.to_date, conf: (body.dag_run_conf ?? {}) as Record<string, never> });
          // The first runs at once rather than at the next scheduler tick.
          await advanceBackfills(store);
          return withProgress(b.id);
        } catch (e) {
          if (e instanceof BackfillError) throw badRequest(e.message);
          throw e;
        }
      },
    },
    {
      method: 'get',
      path: '/api/v1/backfills',
      summary: 'List backfills (newest first), optionally of one DAG',
      role: 'viewer',
      tags: ['Backfill'],
      querySchema: listBackfillsQuery,
      responses: { 200: { description: 'backfill collection' } },
      handler: async (req) => {
        const q = parseQuery(listBackfillsQuery, req.query);
        const all = await listBackfills(store, q.dag_id);
        const page = [];
        for (const b of all.slice(q.offset, q.offset + q.limit)) page.push(await withProgress(b.id));
        return { backfills: page, total_entries: all.length };
      },
    },
    {
      method: 'get',
      path: '/api/v1/backfills/:backfill_id',
      summary: 'A backfill with its progress',
      role: 'viewer',
      tags: ['Backfill'],
      responses: { 200: { description: 'backfill' }, 404: { description: 'no such backfill' } },
      handler: async (req) => {
        const id = backfillId(req);
        if (!(await getBackfill(store, id))) throw notFound(`there is no backfill ${id}; list them with GET /api/v1/backfills`);
        return withProgress(id);
      },
    },
    {
      method: 'post',
      path: '/api/v1/backfills/:backfill_id/cancel',
      summary: 'Stop a backfill from creating more runs (created runs carry on)',
      role: 'operator',
      tags: ['Backfill'],
      responses: { 200: { description: 'backfill' }, 404: { description: 'no such backfill' } },
      handler: async (req) => {
        const id = backfillId(req);
        try {
          await cancelBackfill(store, id);
        } catch (e) {
          if (e instanceof BackfillError) throw notFound(e.message);
          throw e;
        }
        return withProgress(id);
      },
    },
  ];
}
