import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { OperatorRegistry } from './registry.ts';
import type { PodflowConfig } from '../config/config.ts';
import type { SensorRegistry } from '../sensors/registry.ts';

/** What a plugin's entry module (`plugins/<name>/index.ts`, export `register`) receives. */
export interface PluginContext {
  operators: OperatorRegistry;
  /** Sensor types (built-ins already registered); a plugin adds its own with `sensors.register(sensor)`. */
  sensors: SensorRegistry;
  config: PodflowConfig;
  logger: Logger;
  /** A Redis connection for the plugin's own keys (always under `config.prefix`). */
  redis: Redis;
  /** Called on graceful shutdown, in reverse order of registration. */
  onShutdown(fn: () => Promise<void> | void): void;
}

export interface PodflowPlugin {
  register(ctx: PluginContext): void | Promise<void>;
}
