import type {
  DagSpec,
  DatasetCondition,
  ExpandSpec,
  Json,
  ScheduleSpec,
  TaskOutcome,
  TaskSpec,
  TriggerRule,
  WeightRule,
} from './types.ts';
import { TRIGGER_RULES } from './types.ts';
import type { TaskContext } from '../executor/operator.ts';
import { parseDuration, type Duration } from '../util/duration.ts';
import { closest, validateDagSpec } from './validate.ts';

/** An inline task body. Its JSON return value becomes the `return_value` XCom. */
export type TaskFunction = (ctx: TaskContext) => Promise<Json | void> | Json | void;
/** A branch body returns the task id(s) to follow; the other direct downstream tasks are skipped. */
export type BranchFunction = (ctx: TaskContext) => Promise<string | string[] | null> | string | string[] | null;
export type TaskCallback = (ctx: TaskContext, info: { state: string; error?: string }) => Promise<void> | void;

/** Per-task settings; DAG `default_args` supplies the same fields for every task. */
export interface TaskDefaults {
  /** Retries after the first try (default 0). */
  retries?: number;
  /** Wait before a retry (default 5m, as Airflow). */
  retry_delay?: Duration;
  retry_exponential_backoff?: boolean;
  max_retry_delay?: Duration;
  /** A try running longer is stopped and counts as a failed try (default: none). */
  execution_timeout?: Duration;
  trigger_rule?: TriggerRule;
  pool?: string;
  pool_slots?: number;
  priority_weight?: number;
  weight_rule?: WeightRule;
  queue?: string;
  depends_on_past?: boolean;
  wait_for_downstream?: boolean;
  owner?: string;
  /**
   * Where an inline function runs. "process" (default): in a child process of the worker's
   * pool, so CPU-bound tasks run in parallel, a crash or an endless loop cannot freeze the
   * worker (or `podflow up`'s API and scheduler), and execution_timeout really stops the
   * function (as Airflow's LocalExecutor does). "inline": in the worker's own event loop,
   * fastest for tiny async tasks, but a CPU-bound function blocks everything in the process
   * and can only be asked to stop through ctx.signal.
   */
  isolation?: 'inline' | 'process';
  on_success_callback?: TaskCallback;
  on_failure_callback?: TaskCallback;
  on_retry_callback?: TaskCallback;
}

/**
 * Lists every key of `T`, checked both ways by the compiler: a listed key that `T` lacks is a
 * type error (the `keyof T` bound), and so is a key of `T` left out (the `missing` branch).
 * The key lists below therefore cannot drift from the interfaces they describe.
 */
function allKeys<T>() {
  return <const K extends readonly (keyof T)[]>(
    keys: K & ([Exclude<keyof T, K[number]>] extends [never] ? unknown : { missing: Exclude<keyof T, K[number]> }),
  ): K => keys;
}

/** Every key of TaskDefaults, i.e. what `default_args` accepts. */
export const TASK_DEFAULT_KEYS = allKeys<TaskDefaults>()([
  'retries',
  'retry_delay',
  'retry_exponential_backoff',
  'max_retry_delay',
  'execution_timeout',
  'trigger_rule',
  'pool',
  'pool_slots',
  'priority_weight',
  'weight_rule',
  'queue',
  'depends_on_past',
  'wait_for_downstream',
  'owner',
  'isolation',
  'on_success_callback',
  'on_failure_callback',
  'on_retry_callback',
]);

export interface TaskOptions extends TaskDefaults {
  /** Display group ("search" shows the task under a "search" group); no effect on scheduling. */
  group?: string;
  inlets?: string[];
  outlets?: string[];
  /** Paths (relative to the artifacts folder or absolute) or URIs this task produces. */
  artifacts?: string[];
  /** Dynamic task mapping: a literal list, or an upstream task whose return value is a list. */
  expand?: Json[] | { from: TaskRef | string; key?: string };
  /** Most mapped instances allowed (default 1024). */
  max_map_length?: number;
  doc?: string;
}

/** Every key of TaskOptions (d.task, d.branch, d.operator). */
export const TASK_OPTION_KEYS = allKeys<TaskOptions>()([
  ...TASK_DEFAULT_KEYS,
  'group',
  'inlets',
  'outlets',
  'artifacts',
  'expand',
  'max_map_length',
  'doc',
]);

export interface CommandOptions extends TaskOptions {
  env?: Record<string, string>;
  cwd?: string;
}

/** Every key of CommandOptions (d.command). */
export const COMMAND_OPTION_KEYS = allKeys<CommandOptions>()([...TASK_OPTION_KEYS, 'env', 'cwd']);

export interface SensorOptions extends TaskOptions {
  /** "poke" keeps a worker slot between pokes; "reschedule" frees it (default "poke"). */
  mode?: 'poke' | 'reschedule';
  poke_interval?: Duration;
  /** Measured from the first poke, across retries; on timeout the task fails at once (or is skipped with soft_fail). */
  timeout?: Duration;
  soft_fail?: boolean;
  exponential_backoff?: boolean;
  max_wait?: Duration;
}

/** Every key of SensorOptions (d.sensor). */
export const SENSOR_OPTION_KEYS = allKeys<SensorOptions>()([
  ...TASK_OPTION_KEYS,
  'mode',
  'poke_interval',
  'timeout',
  'soft_fail',
  'exponential_backoff',
  'max_wait',
]);

export type ScheduleInput =
  | string
  | null
  | { cron: string; timezone?: string }
  | string[]
  | DatasetCondition;

export interface DagOptions {
  dag_id: string;
  description?: string;
  /** Cron ("30 2 * * *"), preset ("@daily"), fixed interval ("every 15 minutes"), dataset URIs, or null for manual only. */
  schedule?: ScheduleInput;
  /** IANA time zone the cron is read in (default "UTC"). */
  timezone?: string;
  start_date?: string | Date;
  end_date?: string | Date;
  /** Create runs for every missed interval (default false: only the latest). */
  catchup?: boolean;
  default_args?: TaskDefaults;
  tags?: string[];
  params?: Record<string, Json>;
  /** Default 16, as Airflow. */
  max_active_runs?: number;
  /** Default 16, as Airflow. */
  max_active_tasks?: number;
  dagrun_timeout?: Duration;
  owner?: string;
  on_success_callback?: (info: { dag_id: string; run_id: string; state: string }) => Promise<void> | void;
  on_failure_callback?: (info: { dag_id: string; run_id: string; state: string; reason?: string }) => Promise<void> | void;
  /**
   * Start a run when a sensor's condition becomes true (checked by the scheduler every
   * `interval`, default 60 s), once per distinct event, with the poke's payload as conf.
   * @example trigger: { sensor: 'file', args: { path: '/data/in/*.csv' }, interval: '30s' }
   */
  trigger?: { sensor: string; args?: Record<string, Json>; interval?: Duration };
  /** Name of the environment variable holding this DAG's webhook secret (default PODFLOW_WEBHOOK_SECRET). */
  webhook_secret_env?: string;
  /** JSON settings for features and plugins. */
  extra?: Record<string, Json>;
}

/** Every key of DagOptions. */
export const DAG_OPTION_KEYS = allKeys<DagOptions>()([
  'dag_id',
  'description',
  'schedule',
  'timezone',
  'start_date',
  'end_date',
  'catchup',
  'default_args',
  'tags',
  'params',
  'max_active_runs',
  'max_active_tasks',
  'dagrun_timeout',
  'owner',
  'on_success_callback',
  'on_failure_callback',
  'trigger',
  'webhook_secret_env',
  'extra',
]);

/**
 * One problem per key of `given` that is not in `known` (a misspelt option would otherwise be
 * ignored silently: `execution_timout: '5m'` would mean no timeout at all).
 */
function unknownKeyProblems(prefix: string, given: readonly string[], known: readonly string[]): string[] {
  return given
    .filter((key) => !known.includes(key))
    .map((key) => {
      const hint = closest(key, [...known]);
      return `${prefix} '${key}' ${hint ? `(did you mean '${hint}'?)` : `(known options: ${known.join(', ')})`}`;
    });
}

/** The own keys of an options argument; none when a JavaScript DAG file passed something else. */
function keysOf(given: unknown): string[] {
  return given !== null && typeof given === 'object' ? Object.keys(given) : [];
}

/** An operator task as built by an operator's authoring helper (e.g. `podTask({...})`). */
export interface OperatorTask {
  operator: string;
  operator_args: Record<string, Json>;
}

/** A handle on a task, used to wire dependencies: `a.then(b)`, `a.then([b, c])`. */
export class TaskRef {
  constructor(
    readonly dag: Dag,
    readonly task_id: string,
  ) {}

  /** Make `next` downstream of this task; returns `next` so chains read left to right. */
  then<T extends TaskRef | TaskRef[]>(next: T): T {
    for (const n of Array.isArray(next) ? next : [next]) this.dag.dependency(this.task_id, n.task_id);
    return next;
  }

  /** Make this task downstream of `upstream`. */
  after(...upstream: (TaskRef | string)[]): this {
    for (const u of upstream) this.dag.dependency(typeof u === 'string' ? u : u.task_id, this.task_id);
    return this;
  }
}

/** `chain(a, [b, c], d)`: a before b and c, both before d. */
export function chain(...steps: (TaskRef | TaskRef[])[]): void {
  for (let i = 0; i + 1 < steps.length; i++) {
    const from = steps[i];
    const to = steps[i + 1];
    for (const f of Array.isArray(from) ? from : [from]) f.then(to);
  }
}

export class DagDefinitionError extends Error {
  constructor(
    readonly dag_id: string | null,
    readonly problems: string[],
  ) {
    super(
      problems.length === 1
        ? `DAG '${dag_id ?? '?'}': ${problems[0]}`
        : `DAG '${dag_id ?? '?'}' has ${problems.length} problems:\n  - ${problems.join('\n  - ')}`,
    );
    this.name = 'DagDefinitionError';
  }
}

interface TaskDraft {
  task_id: string;
  operator: string;
  operator_args: Record<string, Json>;
  options: TaskOptions;
  /** The keys the author passed (before command/sensor keys were split off) and the keys that method accepts. */
  given_keys: string[];
  known_keys: readonly string[];
  upstream: Set<string>;
}

/**
 * A DAG: tasks and the order they run in. Build one with `dag()`; export it from a file in
 * the DAGs folder.
 *
 * @example
 * export default dag({ dag_id: 'hello', schedule: '@daily', start_date: '2026-01-01' }, (d) => {
 *   const a = d.task('extract', async (ctx) => ({ rows: 3 }));
 *   const b = d.command('load', ['echo', 'loaded']);
 *   a.then(b);
 * });
 */
export class Dag {
  readonly dag_id: string;
  readonly options: DagOptions;
  private readonly drafts = new Map<string, TaskDraft>();
  private readonly callables = new Map<string, TaskFunction | BranchFunction>();
  private readonly problems: string[] = [];

  constructor(options: DagOptions) {
    this.options = options;
    this.dag_id = options.dag_id;
  }

  /** An inline async function run in the worker process. */
  task(task_id: string, fn: TaskFunction, options: TaskOptions = {}): TaskRef {
    this.callables.set(task_id, fn);
    return this.add(task_id, 'inline', {}, options, options, TASK_OPTION_KEYS);
  }

  /** A branch: `fn` returns the id(s) of the direct downstream task(s) to follow. */
  branch(task_id: string, fn: BranchFunction, options: TaskOptions = {}): TaskRef {
    this.callables.set(task_id, fn);
    return this.add(task_id, 'inline', { branch: true }, options, options, TASK_OPTION_KEYS);
  }

  /** A child process: argv is passed as is, never through a shell; a non-zero exit fails the try. */
  command(task_id: string, argv: string[], options: CommandOptions = {}): TaskRef {
    const { env, cwd, ...rest } = options;
    if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string')) {
      this.problems.push(`task '${task_id}': command needs a non-empty array of strings, e.g. ['python', 'train.py']`);
    }
    return this.add(task_id, 'command', { argv, env: env ?? {}, cwd: cwd ?? null }, rest, options, COMMAND_OPTION_KEYS);
  }

  /** A sensor of a registered type ("file", "http", "redis_key", "external_task", "time", "metric_threshold", …). */
  sensor(task_id: string, type: string, args: Record<string, Json>, options: SensorOptions = {}): TaskRef {
    const { mode, poke_interval, timeout, soft_fail, exponential_backoff, max_wait, ...rest } = options;
    const ms = (d: Duration | undefined, what: string, dflt: number | null) =>
      d === undefined ? dflt : this.duration(d, `task '${task_id}': ${what}`);
    return this.add(
      task_id,
      'sensor',
      {
        sensor: type,
        args,
        mode: mode ?? 'poke',
        poke_interval_ms: ms(poke_interval, 'poke_interval', 60_000),
        timeout_ms: ms(timeout, 'timeout', 7 * 24 * 3600_000),
        soft_fail: soft_fail ?? false,
        exponential_backoff: exponential_backoff ?? false,
        max_wait_ms: ms(max_wait, 'max_wait', null),
      },
      rest,
      options,
      SENSOR_OPTION_KEYS,
    );
  }

  /** A task of any registered operator type, e.g. `d.operator('train', podTask({ image, command }))`. */
  operator(task_id: string, spec: OperatorTask, options: TaskOptions = {}): TaskRef {
    return this.add(task_id, spec.operator, spec.operator_args, options, options, TASK_OPTION_KEYS);
  }

  /** Look up a task by id (for wiring across helper functions). */
  get(task_id: string): TaskRef {
    if (!this.drafts.has(task_id)) throw new Error(`DAG '${this.dag_id}' has no task '${task_id}'`);
    return new TaskRef(this, task_id);
  }

  /** @internal used by TaskRef */
  dependency(upstream: string, downstream: string): void {
    const d = this.drafts.get(downstream);
    if (!d) {
      this.problems.push(`a dependency names task '${downstream}', which does not exist`);
      return;
    }
    d.upstream.add(upstream);
  }

  /** The inline function of a task (worker side). */
  callable(task_id: string): TaskFunction | BranchFunction | undefined {
    return this.callables.get(task_id);
  }

  callbacks(task_id: string): Pick<TaskDefaults, 'on_success_callback' | 'on_failure_callback' | 'on_retry_callback'> {
    const o = this.drafts.get(task_id)?.options ?? {};
    const d = this.options.default_args ?? {};
    return {
      on_success_callback: o.on_success_callback ?? d.on_success_callback,
      on_failure_callback: o.on_failure_callback ?? d.on_failure_callback,
      on_retry_callback: o.on_retry_callback ?? d.on_retry_callback,
    };
  }

  private add(
    task_id: string,
    operator: string,
    operator_args: Record<string, Json>,
    options: TaskOptions,
    given: unknown,
    known_keys: readonly string[],
  ): TaskRef {
    if (this.drafts.has(task_id)) {
      this.problems.push(`task id '${task_id}' is used twice; give each task its own id`);
    } else {
      this.drafts.set(task_id, { task_id, operator, operator_args, options, given_keys: keysOf(given), known_keys, upstream: new Set() });
    }
    if (options.expand && !Array.isArray(options.expand)) {
      const from = options.expand.from;
      this.dependency(typeof from === 'string' ? from : from.task_id, task_id);
    }
    return new TaskRef(this, task_id);
  }

  private duration(d: Duration, what: string): number {
    try {
      return parseDuration(d, what);
    } catch (e) {
      this.problems.push((e as Error).message);
      return 0;
    }
  }

  /**
   * The serializable form the scheduler, API and workers use; throws DagDefinitionError
   * listing every problem (duplicate ids, unknown upstreams, cycles, bad settings).
   */
  toSpec(file = '', file_hash = ''): DagSpec {
    const o = this.options;
    const defaults = o.default_args ?? {};
    const problems: string[] = [];
    const authoringProblems = this.problems.length;
    problems.push(...unknownKeyProblems('unknown DAG option', keysOf(o), DAG_OPTION_KEYS));
    problems.push(...unknownKeyProblems('default_args: unknown option', keysOf(o.default_args), TASK_DEFAULT_KEYS));
    const tasks: TaskSpec[] = [];
    const downstream = new Map<string, string[]>();
    for (const d of this.drafts.values()) {
      for (const u of d.upstream) {
        if (!downstream.has(u)) downstream.set(u, []);
        downstream.get(u)!.push(d.task_id);
      }
    }
    for (const d of this.drafts.values()) {
      const t = { ...defaults, ...d.options };
      const where = `task '${d.task_id}'`;
      problems.push(...unknownKeyProblems(`${where}: unknown option`, d.given_keys, d.known_keys));
      const trigger_rule = t.trigger_rule ?? 'all_success';
      if (!TRIGGER_RULES.includes(trigger_rule)) {
        problems.push(`${where}: trigger_rule '${trigger_rule}' is unknown; use one of ${TRIGGER_RULES.join(', ')}`);
      }
      let expand: ExpandSpec | null = null;
      const max_map_length = d.options.max_map_length ?? 1024;
      if (Array.isArray(d.options.expand)) {
        expand = { kind: 'literal', values: d.options.expand, max_map_length };
        if (d.options.expand.length > max_map_length) {
          problems.push(`${where}: expands over ${d.options.expand.length} values, more than max_map_length ${max_map_length}`);
        }
      } else if (d.options.expand) {
        const from = d.options.expand.from;
        expand = { kind: 'xcom', task_id: typeof from === 'string' ? from : from.task_id, key: d.options.expand.key ?? 'return_value', max_map_length };
      }
      tasks.push({
        task_id: d.task_id,
        operator: d.operator,
        operator_args: d.operator === 'inline' ? { ...d.operator_args, isolation: t.isolation ?? 'process' } : d.operator_args,
        upstream_task_ids: [...d.upstream].sort(),
        downstream_task_ids: (downstream.get(d.task_id) ?? []).sort(),
        trigger_rule,
        retries: t.retries ?? 0,
        retry_delay_ms: t.retry_delay === undefined ? 300_000 : this.duration(t.retry_delay, `${where}: retry_delay`),
        retry_exponential_backoff: t.retry_exponential_backoff ?? false,
        max_retry_delay_ms: t.max_retry_delay === undefined ? null : this.duration(t.max_retry_delay, `${where}: max_retry_delay`),
        execution_timeout_ms:
          t.execution_timeout === undefined ? null : this.duration(t.execution_timeout, `${where}: execution_timeout`),
        pool: t.pool ?? 'default_pool',
        pool_slots: t.pool_slots ?? 1,
        priority_weight: t.priority_weight ?? 1,
        weight_rule: t.weight_rule ?? 'downstream',
        queue: t.queue ?? 'default',
        depends_on_past: t.depends_on_past ?? false,
        wait_for_downstream: t.wait_for_downstream ?? false,
        task_group: d.options.group ?? null,
        inlets: d.options.inlets ?? [],
        outlets: d.options.outlets ?? [],
        artifacts: d.options.artifacts ?? [],
        expand,
        doc: d.options.doc ?? null,
      });
    }
    const spec: DagSpec = {
      dag_id: o.dag_id,
      description: o.description ?? null,
      file,
      file_hash,
      schedule: normalizeSchedule(o.schedule, o.timezone),
      start_date: toIso(o.start_date, 'start_date', problems),
      end_date: toIso(o.end_date, 'end_date', problems),
      catchup: o.catchup ?? false,
      tags: o.tags ?? [],
      params: o.params ?? {},
      max_active_runs: o.max_active_runs ?? 16,
      max_active_tasks: o.max_active_tasks ?? 16,
      dagrun_timeout_ms: o.dagrun_timeout === undefined ? null : this.duration(o.dagrun_timeout, 'dagrun_timeout'),
      owner: o.owner ?? defaults.owner ?? 'podflow',
      tasks,
      extra: {
        ...(o.extra ?? {}),
        ...(o.trigger
          ? {
              trigger: {
                sensor: o.trigger.sensor,
                args: o.trigger.args ?? {},
                interval_seconds: this.duration(o.trigger.interval ?? 60, 'trigger.interval') / 1000,
              },
            }
          : {}),
        ...(o.webhook_secret_env ? { webhook_secret_env: o.webhook_secret_env } : {}),
        has_success_callback: Boolean(o.on_success_callback),
        has_failure_callback: Boolean(o.on_failure_callback),
      },
    };
    // Authoring problems (duplicate ids, bad durations found above) come first.
    problems.unshift(...this.problems);
    this.problems.length = authoringProblems; // toSpec may run again (reload); keep it pure
    problems.push(...validateDagSpec(spec));
    if (problems.length > 0) throw new DagDefinitionError(o.dag_id ?? null, problems);
    return spec;
  }
}

function toIso(v: string | Date | undefined, what: string, problems: string[]): string | null {
  if (v === undefined) return null;
  const d = v instanceof Date ? v : new Date(v);
  if (Number.isNaN(d.getTime())) {
    problems.push(`${what} ${JSON.stringify(v)} is not a date; write an ISO date such as "2026-01-01" or "2026-01-01T00:00:00Z"`);
    return null;
  }
  return d.toISOString();
}

function normalizeSchedule(s: ScheduleInput | undefined, timezone: string | undefined): ScheduleSpec {
  const tz = timezone ?? 'UTC';
  if (s === undefined || s === null) return { cron: null, timezone: tz, datasets: null };
  if (typeof s === 'string') return { cron: s, timezone: tz, datasets: null };
  if (Array.isArray(s)) return { cron: null, timezone: tz, datasets: { all: s.map((uri) => ({ uri })) } };
  if ('cron' in s) return { cron: s.cron, timezone: s.timezone ?? tz, datasets: null };
  return { cron: null, timezone: tz, datasets: s };
}

/**
 * Define a DAG. Export the result from a file in the DAGs folder.
 * @param build optional function that adds the tasks
 */
export function dag(options: DagOptions, build?: (d: Dag) => void): Dag {
  const d = new Dag(options);
  build?.(d);
  return d;
}

export function isDag(v: unknown): v is Dag {
  return v instanceof Dag || (typeof v === 'object' && v !== null && (v as { [DAG_BRAND]?: boolean })[DAG_BRAND] === true);
}

// A brand that survives two copies of this module (e.g. a DAG file importing podflow from
// another install): instanceof alone would miss them.
export const DAG_BRAND = Symbol.for('podflow.dag');
Object.defineProperty(Dag.prototype, DAG_BRAND, { value: true });

export type { TaskOutcome };
