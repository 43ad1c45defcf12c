import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queue } from 'bullmq';
import type { StateStore } from '../state/store.ts';
import type { TaskJobData } from '../worker/jobs.ts';

/**
 * Prometheus metrics of this process. Try counters and durations come from the worker role
 * running here; run, slot, pool and queue gauges are read from Redis at scrape time, so any
 * API replica reports the same cluster-wide figures.
 */
export class PodflowMetrics {
  readonly registry = new Registry();
  private readonly tries = new Counter({
    name: 'podflow_task_tries_total',
    help: 'Task tries finished by this process, by final state',
    labelNames: ['dag_id', 'operator', 'state'],
    registers: [this.registry],
  });
  private readonly durations = new Histogram({
    name: 'podflow_task_try_duration_seconds',
    help: 'Duration of task tries run by this process',
    labelNames: ['dag_id', 'operator'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'podflow_process_' });
  }

  recordTry(dagId: string, operator: string, state: string, seconds: number | null): void {
    this.tries.inc({ dag_id: dagId, operator, state });
    if (seconds !== null) this.durations.observe({ dag_id: dagId, operator }, seconds);
  }

  /** OpenLineage emission counters of this process (emitted, delivered, dropped, failed, queued). */
  watchLineage(stats: () => Record<string, number>): void {
    new Gauge({
      name: 'podflow_openlineage_events',
      help: 'OpenLineage events of this process by outcome (emitted, delivered, dropped, failed, queued)',
      labelNames: ['outcome'],
      registers: [this.registry],
      collect() {
        for (const [outcome, n] of Object.entries(stats())) if (typeof n === 'number') this.set({ outcome }, n);
      },
    });
  }

  /** Gauges read from Redis on every scrape. Call once per process that serves /metrics. */
  watchState(store: StateStore, queue: Queue<TaskJobData>): void {
    const registers = [this.registry];
    new Gauge({
      name: 'podflow_dag_runs_active',
      help: 'DAG runs queued or running',
      registers,
      async collect() {
        this.set((await store.activeRuns()).length);
      },
    });
    new Gauge({
      name: 'podflow_task_slots_used',
      help: 'Task instances queued or running (counts against PODFLOW_PARALLELISM)',
      registers,
      async collect() {
        this.set(await store.redis.zcard(store.keys.occupancy()));
      },
    });
    new Gauge({
      name: 'podflow_pool_slots',
      help: 'Pool slots by pool and kind (total, occupied, open)',
      labelNames: ['pool', 'kind'],
      registers,
      async collect() {
        this.reset();
        for (const p of await store.listPools()) {
          this.set({ pool: p.name, kind: 'total' }, p.slots);
          this.set({ pool: p.name, kind: 'occupied' }, p.occupied_slots);
          this.set({ pool: p.name, kind: 'open' }, Math.max(0, p.slots - p.occupied_slots));
        }
      },
    });
    new Gauge({
      name: 'podflow_import_errors',
      help: 'DAG files that failed to import',
      registers,
      async collect() {
        this.set((await store.importErrors()).length);
      },
    });
    new Gauge({
      name: 'podflow_queue_jobs',
      help: 'Jobs in the BullMQ task queue by state',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed');
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
  }
}
