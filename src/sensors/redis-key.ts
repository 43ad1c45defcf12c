import { z } from 'zod';
import type { Json } from '../dag/types.ts';
import { SensorFailure, type PokeResult, type Sensor } from './sensor.ts';

const streamId = z.string().regex(/^\d+(-\d+)?$/, 'a stream entry id such as 1733227200000-0');

export const redisKeySensorArgs = z.strictObject({
  /** The key, used verbatim (not under Podflow's prefix): it is written by another system. */
  key: z.string().min(1),
  /** `exists`: the key exists. `stream`: the stream has an entry (newer than `after_id`, if given). */
  mode: z.enum(['exists', 'stream']).default('exists'),
  /** Only entries with an id greater than this count (exclusive). */
  after_id: streamId.optional(),
});
export type RedisKeySensorArgs = z.output<typeof redisKeySensorArgs>;

/**
 * Waits for a key in Podflow's Redis to exist, or for a stream entry.
 * Done (exists): XCom `{ key, type }`. Done (stream): XCom `{ key, id, fields }` of the
 * oldest qualifying entry and event key `key@id`.
 */
export const redisKeySensor: Sensor<RedisKeySensorArgs> = {
  type: 'redis_key',
  argsSchema: redisKeySensorArgs.refine((a) => a.mode === 'stream' || a.after_id === undefined, {
    message: "after_id applies to mode 'stream' only",
    path: ['after_id'],
  }),
  async poke(args, ctx): Promise<PokeResult> {
    if (args.mode === 'exists') {
      const type = await ctx.redis.type(args.key);
      if (type === 'none') return { done: false, detail: `Redis key '${args.key}' does not exist yet` };
      return { done: true, event_key: args.key, xcom: { key: args.key, type } };
    }
    let entries: [string, string[]][];
    try {
      entries = await ctx.redis.xrange(args.key, args.after_id ? `(${args.after_id}` : '-', '+', 'COUNT', 1);
    } catch (err) {
      if (/WRONGTYPE/.test((err as Error).message)) {
        throw new SensorFailure(`DAG '${ctx.dag_id}' task '${ctx.task_id}': Redis key '${args.key}' is a ${await ctx.redis.type(args.key)}, not a stream; use mode 'exists' or point the sensor at a stream`);
      }
      throw err;
    }
    if (entries.length === 0) {
      return { done: false, detail: `stream '${args.key}' has no entry${args.after_id ? ` after ${args.after_id}` : ''} yet` };
    }
    const [id, flat] = entries[0];
    const fields: Record<string, Json> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
    return { done: true, event_key: `${args.key}@${id}`, xcom: { key: args.key, id, fields } };
  },
};
