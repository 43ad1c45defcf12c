import type { RouteGroup } from '../server.ts';
import { backfillRoutes } from './backfill-routes.ts';
import { datasetRoutes } from './dataset-routes.ts';
import { stableApiRoutes } from './stable-api-routes.ts';
import { webhookRoutes } from './webhook-routes.ts';
import { lineageRoutes } from './lineage-routes.ts';

/**
 * Route groups beyond the core (webhooks, datasets, lineage …). Each feature module exports
 * a RouteGroup and is listed here, so the server and its OpenAPI document stay one table.
 */
export const extraRouteGroups: RouteGroup[] = [stableApiRoutes, datasetRoutes, webhookRoutes, backfillRoutes, lineageRoutes];
