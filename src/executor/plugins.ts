import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import type { PluginContext, PodflowPlugin } from './plugin.ts';

const ENTRY_NAMES = ['index.ts', 'index.mts', 'index.js', 'index.mjs'];

/**
 * Load every plugin in the plugins folder: each subfolder with an index module exporting
 * `register`. The core never imports a plugin by name. A plugin that fails to load is
 * logged with its folder and skipped; the rest keep working.
 */
export async function loadPlugins(folder: string, ctx: PluginContext, logger: Logger): Promise<string[]> {
  if (!existsSync(folder)) return [];
  const loaded: string[] = [];
  for (const entry of readdirSync(folder, { withFileTypes: true }).filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const file = ENTRY_NAMES.map((n) => join(folder, entry.name, n)).find((f) => existsSync(f));
    if (!file) continue;
    try {
      const mod = (await import(pathToFileURL(file).href)) as Partial<PodflowPlugin>;
      if (typeof mod.register !== 'function') {
        logger.warn({ plugin: entry.name }, `plugin ${file} exports no register(ctx) function; skipped`);
        continue;
      }
      await mod.register({ ...ctx, logger: logger.child({ plugin: entry.name }) });
      loaded.push(entry.name);
    } catch (e) {
      logger.error({ plugin: entry.name, err: e }, `plugin ${file} failed to load and is skipped: ${(e as Error).message}`);
    }
  }
  return loaded;
}
