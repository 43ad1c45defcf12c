import { externalTaskSensor } from './external-task.ts';
import { fileSensor } from './file.ts';
import { httpSensor } from './http.ts';
import { metricThresholdSensor } from './metric-threshold.ts';
import { redisKeySensor } from './redis-key.ts';
import type { Sensor } from './sensor.ts';
import { timeSensor } from './time.ts';

/** A task whose operator is `sensor:<type>` runs the sensor of that type. */
export const SENSOR_OPERATOR_PREFIX = 'sensor:';

/** `file` → `sensor:file`. */
export function sensorOperatorType(sensorType: string): string {
  return SENSOR_OPERATOR_PREFIX + sensorType;
}

// Sensors take different argument types; the registry holds them erased.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySensor = Sensor<any>;

/** The sensors Podflow ships: file, http, redis_key, external_task, time, metric_threshold. */
export const builtinSensors: AnySensor[] = [fileSensor, httpSensor, redisKeySensor, externalTaskSensor, timeSensor, metricThresholdSensor];

/** Built-in sensors by type. */
export const sensorsByType: ReadonlyMap<string, AnySensor> = new Map(builtinSensors.map((s) => [s.type, s]));

/** Sensors by type: the built-ins plus those plugins register. */
export class SensorRegistry {
  private readonly byType = new Map<string, AnySensor>();

  constructor(initial: readonly AnySensor[] = builtinSensors) {
    for (const s of initial) this.register(s);
  }

  register(sensor: AnySensor): void {
    if (!/^[a-z][a-z0-9_.-]*$/.test(sensor.type)) {
      throw new Error(`sensor type '${sensor.type}' is invalid: use lowercase letters, digits and _ . - (it becomes operator 'sensor:${sensor.type}')`);
    }
    if (this.byType.has(sensor.type)) throw new Error(`sensor type '${sensor.type}' is registered twice`);
    this.byType.set(sensor.type, sensor);
  }

  get(type: string): AnySensor | undefined {
    return this.byType.get(type.startsWith(SENSOR_OPERATOR_PREFIX) ? type.slice(SENSOR_OPERATOR_PREFIX.length) : type);
  }

  types(): string[] {
    return [...this.byType.keys()].sort();
  }
}
