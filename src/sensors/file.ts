import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import { glob, hasGlob } from './glob.ts';
import type { PokeResult, Sensor } from './sensor.ts';

export const fileSensorArgs = z.strictObject({
  /** A path, or a glob (`*`, `?`, `**`); relative paths resolve against the worker's current directory. */
  path: z.string().min(1),
  /** Only entries whose modification time is at least this old count (a file still being written is not ready). */
  min_age_seconds: z.number().min(0).default(0),
  /** How many matching entries must exist. */
  min_count: z.number().int().min(1).default(1),
});
export type FileSensorArgs = z.output<typeof fileSensorArgs>;

// More would bloat the XCom; the count is still reported.
const MAX_LISTED = 1000;

/**
 * Waits until a file, directory or glob match exists and is old enough.
 * Done: XCom `{ files: [{ path, mtime, size }], count }` (oldest first) and event key
 * `path@mtimeMs` of the newest match, so a trigger fires once per new or rewritten file.
 */
export const fileSensor: Sensor<FileSensorArgs> = {
  type: 'file',
  argsSchema: fileSensorArgs,
  async poke(args, ctx): Promise<PokeResult> {
    const paths = hasGlob(args.path) ? await glob(args.path, { signal: ctx.signal }) : [resolve(args.path)];
    const cutoff = ctx.now().getTime() - args.min_age_seconds * 1000;
    const ready: { path: string; mtimeMs: number; size: number }[] = [];
    let tooYoung = 0;
    for (const p of paths) {
      let st;
      try {
        st = await stat(p);
      } catch {
        continue; // vanished between the listing and the stat
      }
      if (st.mtimeMs <= cutoff) ready.push({ path: p, mtimeMs: st.mtimeMs, size: st.size });
      else tooYoung++;
    }
    if (ready.length < args.min_count) {
      const young = tooYoung ? `; ${tooYoung} more ${tooYoung === 1 ? 'is' : 'are'} younger than ${args.min_age_seconds}s` : '';
      return { done: false, detail: `${ready.length} of ${args.min_count} required entries match '${args.path}'${young}` };
    }
    ready.sort((a, b) => a.mtimeMs - b.mtimeMs || a.path.localeCompare(b.path));
    const newest = ready[ready.length - 1];
    return {
      done: true,
      event_key: `${newest.path}@${Math.trunc(newest.mtimeMs)}`,
      xcom: {
        count: ready.length,
        files: ready.slice(-MAX_LISTED).map((f) => ({ path: f.path, mtime: new Date(f.mtimeMs).toISOString(), size: f.size })),
      },
    };
  },
};
