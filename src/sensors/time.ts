import { z } from 'zod';
import type { PokeResult, Sensor } from './sensor.ts';

export const timeSensorArgs = z
  .strictObject({
    /** An absolute instant, ISO 8601 with a zone. */
    target_time: z.iso.datetime({ offset: true }).optional(),
    /** A time of day (UTC) on the date of the run's data_interval_end, `HH:MM` or `HH:MM:SS` (Airflow's TimeSensor). */
    time_of_day: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$/, 'HH:MM or HH:MM:SS, 24-hour, UTC').optional(),
    /** Seconds after the run's data_interval_end (Airflow's TimeDeltaSensor). */
    delta_seconds: z.number().optional(),
  })
  .refine((a) => [a.target_time, a.time_of_day, a.delta_seconds].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of target_time, time_of_day, delta_seconds',
  });
export type TimeSensorArgs = z.output<typeof timeSensorArgs>;

/** The instant a time sensor waits for. */
export function timeSensorTarget(args: TimeSensorArgs, dataIntervalEnd: Date): Date {
  if (args.target_time !== undefined) return new Date(args.target_time);
  if (args.delta_seconds !== undefined) return new Date(dataIntervalEnd.getTime() + args.delta_seconds * 1000);
  const [h, m, s = '0'] = args.time_of_day!.split(':');
  const d = new Date(dataIntervalEnd);
  d.setUTCHours(Number(h), Number(m), Number(s), 0);
  return d;
}

/**
 * Waits until a moment: an absolute time, a time of day, or a delta after the run's data
 * interval end. Done: XCom `{ target }` (ISO).
 */
export const timeSensor: Sensor<TimeSensorArgs> = {
  type: 'time',
  argsSchema: timeSensorArgs,
  async poke(args, ctx): Promise<PokeResult> {
    const target = timeSensorTarget(args, ctx.data_interval_end);
    const left = target.getTime() - ctx.now().getTime();
    if (left > 0) return { done: false, detail: `waiting until ${target.toISOString()} (${Math.ceil(left / 1000)}s left)` };
    return { done: true, event_key: target.toISOString(), xcom: { target: target.toISOString() } };
  },
};
