import { z } from 'zod';
import { lineageGraph, runProvenance } from '../../lineage/query.ts';
import { notFound } from '../problem.ts';
import { parseQuery } from '../validation.ts';
import type { ApiDeps, ApiRoute } from '../server.ts';

const lineageQuery = z.object({
  uri: z.string().min(1).max(3000),
  depth: z.coerce.number().int().min(1).max(50).default(10),
  direction: z.enum(['both', 'upstream', 'downstream']).default('both'),
});

/** Lineage queries: the graph around an artifact or dataset, and a run's provenance. */
export function lineageRoutes({ lineage, store }: ApiDeps): ApiRoute[] {
  return [
    {
      method: 'get',
      path: '/api/v1/lineage',
      summary: 'Lineage graph of an artifact or dataset URI (producers upstream, consumers downstream)',
      role: 'viewer',
      querySchema: lineageQuery,
      responses: { 200: { description: 'lineage graph rooted at the URI' } },
      handler: async (req) => {
        const q = parseQuery(lineageQuery, req.query);
        return lineageGraph(lineage.store, q.uri, { depth: q.depth, direction: q.direction });
      },
    },
    {
      method: 'get',
      path: '/api/v1/dags/:dag_id/dagRuns/:dag_run_id/lineage',
      summary: 'Provenance of a run: every try with its code, image, inputs, outputs, artifacts and cost',
      role: 'viewer',
      responses: { 200: { description: 'run provenance' } },
      handler: async (req) => {
        const dagId = String(req.params.dag_id);
        const runId = String(req.params.dag_run_id);
        if (!(await store.getRun(dagId, runId))) throw notFound(`DAG '${dagId}' has no run '${runId}'`);
        const p = await runProvenance(lineage.store, dagId, runId);
        if (!p) throw notFound(`no lineage is recorded for run '${runId}' of DAG '${dagId}' yet (records are written as tries finish)`);
        return p;
      },
    },
  ];
}
