import type { Request } from 'express';
import { z } from 'zod';
import type { DagSpec } from '../../dag/types.ts';
import type { StateStore } from '../../state/store.ts';
import { checkDatasetUri, datasetUsage, DatasetEvents, DatasetUriError, referencedUris, type DatasetRecord } from '../../triggers/dataset-events.ts';
import { badRequest, notFound } from '../problem.ts';
import type { ApiDeps, ApiRoute } from '../server.ts';
import { createDatasetEventBody, pagingQuery, parseBody, parseQuery } from '../validation.ts';

const listEventsQuery = pagingQuery.extend({
  dataset_id: z.coerce.number().int().min(1).optional(),
  dataset_uri: z.string().min(1).optional(),
  source_dag_id: z.string().min(1).optional(),
  source_task_id: z.string().min(1).optional(),
  source_run_id: z.string().min(1).optional(),
  source_map_index: z.coerce.number().int().min(-1).optional(),
});

const listDatasetsQuery = pagingQuery.extend({
  uri_pattern: z.string().optional(),
  dag_ids: z.string().optional(),
});

async function allDags(store: StateStore): Promise<DagSpec[]> {
  const out: DagSpec[] = [];
  for (const id of await store.dagIds()) {
    const spec = await store.getDag(id);
    if (spec) out.push(spec);
  }
  return out;
}

/** Datasets the DAGs mention or that have events, each with its consumers and producers (Airflow shape). */
async function listDatasets(store: StateStore, events: DatasetEvents) {
  const dags = await allDags(store);
  const known = new Map((await events.listDatasets()).map((d) => [d.uri, d]));
  for (const uri of referencedUris(dags)) if (!known.has(uri)) known.set(uri, await events.ensureDataset(uri));
  return { dags, datasets: [...known.values()].sort((a, b) => a.uri.localeCompare(b.uri)) };
}

function datasetToApi(d: DatasetRecord, dags: DagSpec[]) {
  return { id: d.id, uri: d.uri, extra: d.extra, created_at: d.created_at, updated_at: d.updated_at, ...datasetUsage(d.uri, dags) };
}

/** Airflow's dataset endpoints: list and get datasets, list and create dataset events. */
export function datasetRoutes({ store }: ApiDeps): ApiRoute[] {
  const events = new DatasetEvents(store);
  return [
    {
      method: 'get',
      path: '/api/v1/datasets',
      summary: 'List datasets with their consuming DAGs and producing tasks',
      role: 'viewer',
      tags: ['Dataset'],
      querySchema: listDatasetsQuery,
      responses: { 200: { description: 'dataset collection' } },
      handler: async (req) => {
        const q = parseQuery(listDatasetsQuery, req.query);
        const { dags, datasets } = await listDatasets(store, events);
        const dagIds = q.dag_ids?.split(',').filter(Boolean);
        const rows = datasets
          .map((d) => datasetToApi(d, dags))
          .filter((d) => !q.uri_pattern || d.uri.includes(q.uri_pattern))
          .filter((d) => !dagIds || [...d.consuming_dags, ...d.producing_tasks].some((x) => dagIds.includes(x.dag_id)));
        return { datasets: rows.slice(q.offset, q.offset + q.limit), total_entries: rows.length };
      },
    },
    // Before /datasets/:uri, which would otherwise take "events" for a URI.
    {
      method: 'get',
      path: '/api/v1/datasets/events',
      summary: 'List dataset events, newest first, with filters and paging',
      role: 'viewer',
      tags: ['Dataset'],
      querySchema: listEventsQuery,
      responses: { 200: { description: 'dataset event collection' } },
      handler: async (req) => {
        const q = parseQuery(listEventsQuery, req.query);
        let uri = q.dataset_uri;
        if (q.dataset_id !== undefined) {
          const hit = (await events.listDatasets()).find((d) => d.id === q.dataset_id);
          if (!hit) return { dataset_events: [], total_entries: 0 };
          uri = hit.uri;
        }
        const { events: rows, total } = await events.listEvents({
          dataset_uri: uri,
          source_dag_id: q.source_dag_id,
          source_task_id: q.source_task_id,
          source_run_id: q.source_run_id,
          source_map_index: q.source_map_index,
          offset: q.offset,
          limit: q.limit,
        });
        return { dataset_events: rows.map((e) => ({ ...e, created_dagruns: [] })), total_entries: total };
      },
    },
    {
      method: 'post',
      path: '/api/v1/datasets/events',
      summary: 'Record a dataset event from outside Podflow (starts DAGs scheduled on the dataset)',
      role: 'operator',
      tags: ['Dataset'],
      requestSchema: createDatasetEventBody,
      responses: { 200: { description: 'the dataset event' } },
      handler: async (req) => {
        const body = parseBody(createDatasetEventBody, req.body);
        try {
          checkDatasetUri(body.dataset_uri);
        } catch (e) {
          if (e instanceof DatasetUriError) throw badRequest(e.message);
          throw e;
        }
        const ev = await events.record(body.dataset_uri, {}, (body.extra ?? {}) as DatasetRecord['extra']);
        return { ...ev, created_dagruns: [] };
      },
    },
    {
      method: 'get',
      path: '/api/v1/datasets/:uri',
      summary: 'Get a dataset by its URI (URL-encoded)',
      role: 'viewer',
      tags: ['Dataset'],
      params: { uri: 'the dataset URI, URL-encoded (dataset%3A%2F%2Fpodflow%2Firis%2Flabels)' },
      responses: { 200: { description: 'dataset' } },
      handler: async (req: Request) => {
        const uri = String(req.params.uri);
        const dags = await allDags(store);
        let d = await events.getDataset(uri);
        if (!d && referencedUris(dags).includes(uri)) d = await events.ensureDataset(uri);
        if (!d) throw notFound(`no dataset '${uri}': no DAG names it and no event was recorded for it; list datasets with GET /api/v1/datasets (URL-encode the URI in the path)`);
        return datasetToApi(d, dags);
      },
    },
    {
      method: 'get',
      path: '/api/v1/dags/:dag_id/dagRuns/:dag_run_id/upstreamDatasetEvents',
      summary: 'The dataset events that started a dataset-triggered run',
      role: 'viewer',
      tags: ['Dataset'],
      responses: { 200: { description: 'dataset event collection' } },
      handler: async (req) => {
        const dagId = String(req.params.dag_id);
        const runId = String(req.params.dag_run_id);
        if (!(await store.getRun(dagId, runId))) throw notFound(`DAG '${dagId}' has no run '${runId}'; list its runs with GET /api/v1/dags/${dagId}/dagRuns`);
        const rows = await events.runEvents(dagId, runId);
        return { dataset_events: rows.map((e) => ({ ...e, created_dagruns: [] })), total_entries: rows.length };
      },
    },
  ];
}
