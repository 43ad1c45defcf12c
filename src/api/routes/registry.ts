import type { RouteGroup } from '../server.ts';

/**
 * Route groups beyond the core (webhooks, datasets, lineage …). Each feature module exports
 * a RouteGroup and is listed here, so the server and its OpenAPI document stay one table.
 */
export const extraRouteGroups: RouteGroup[] = [];
