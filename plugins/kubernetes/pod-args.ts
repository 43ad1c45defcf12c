/**
 * The arguments of a `pod` task (TaskSpec.operator_args), validated with zod.
 * Field names are snake_case like the rest of Podflow; raw Kubernetes objects
 * (affinity, tolerations, security contexts, pod_template) keep Kubernetes' camelCase.
 */
import { z } from 'zod';

const quantity = z.union([z.string().min(1), z.number().positive()]);
const stringMap = z.record(z.string(), z.string());
const k8sObject = z.record(z.string(), z.unknown());

const keyRef = z.strictObject({ name: z.string().min(1), key: z.string().min(1), optional: z.boolean().optional() });

/** An env value: a literal (templated) or a reference to a Secret or ConfigMap key. */
const envValue = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.strictObject({ secret_key_ref: keyRef }),
  z.strictObject({ config_map_key_ref: keyRef }),
  z.strictObject({ field_ref: z.string().min(1) }),
]);

const envFrom = z
  .strictObject({
    secret: z.string().min(1).optional(),
    config_map: z.string().min(1).optional(),
    prefix: z.string().optional(),
    optional: z.boolean().optional(),
  })
  .refine((e) => (e.secret === undefined) !== (e.config_map === undefined), {
    message: 'give exactly one of "secret" or "config_map"',
  });

const volume = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'volume names are DNS-1123 labels (lowercase, digits, -)'),
    mount_path: z.string().startsWith('/', 'mount_path must be absolute'),
    sub_path: z.string().optional(),
    read_only: z.boolean().optional(),
    pvc: z.strictObject({ claim_name: z.string().min(1), read_only: z.boolean().optional() }).optional(),
    config_map: z.strictObject({ name: z.string().min(1), items: z.array(z.strictObject({ key: z.string(), path: z.string() })).optional(), default_mode: z.number().int().optional() }).optional(),
    secret: z.strictObject({ secret_name: z.string().min(1), items: z.array(z.strictObject({ key: z.string(), path: z.string() })).optional(), default_mode: z.number().int().optional() }).optional(),
    empty_dir: z.strictObject({ medium: z.enum(['', 'Memory']).optional(), size_limit: quantity.optional() }).optional(),
  })
  .refine((v) => [v.pvc, v.config_map, v.secret, v.empty_dir].filter((s) => s !== undefined).length === 1, {
    message: 'give exactly one source: pvc, config_map, secret or empty_dir',
  });

const resources = z.strictObject({
  cpu: quantity.optional(),
  memory: quantity.optional(),
  ephemeral_storage: quantity.optional(),
  /** NVIDIA GPUs (`nvidia.com/gpu` limit). */
  gpus: z.number().int().nonnegative().optional(),
  /** Another accelerator resource, e.g. `{ resource: 'amd.com/gpu', count: 2 }`. */
  accelerator: z.strictObject({ resource: z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'a resource name like amd.com/gpu'), count: z.number().int().positive() }).optional(),
  /** Limits that differ from the requests (by default requests = limits). */
  limits: z.strictObject({ cpu: quantity.optional(), memory: quantity.optional(), ephemeral_storage: quantity.optional() }).optional(),
});

const argv = z.array(z.string());

export const podArgsSchema = z.strictObject({
  image: z.string().min(1, 'image is required (e.g. "python:3.12-slim")'),
  command: argv.optional(),
  args: argv.optional(),
  /** Argv run instead of command+args in local mode. */
  local_command: argv.min(1).optional(),
  env: z.record(z.string().regex(/^[-._a-zA-Z][-._a-zA-Z0-9]*$/, 'env var names are C identifiers (dots and dashes allowed)'), envValue).optional(),
  env_from: z.array(envFrom).optional(),
  resources: resources.optional(),
  capacity: z.enum(['spot', 'on-demand', 'any']).optional(),
  node_selector: stringMap.optional(),
  affinity: k8sObject.optional(),
  tolerations: z.array(k8sObject).optional(),
  priority_class: z.string().min(1).optional(),
  volumes: z.array(volume).optional(),
  service_account: z.string().min(1).optional(),
  image_pull_secrets: z.array(z.string().min(1)).optional(),
  image_pull_policy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
  labels: stringMap.optional(),
  annotations: stringMap.optional(),
  /** Container securityContext, merged over the restrictive default. */
  security_context: k8sObject.optional(),
  /** Pod securityContext, merged over the default (runAsNonRoot, RuntimeDefault seccomp). */
  pod_security_context: k8sObject.optional(),
  active_deadline_seconds: z.number().int().positive().optional(),
  termination_grace_seconds: z.number().int().nonnegative().optional(),
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a namespace is a DNS-1123 label').optional(),
  /** A V1Pod object, or a path (JSON or YAML, relative to the DAG file) the fields above are merged onto. */
  pod_template: z.union([z.string().min(1), k8sObject]).optional(),
  schedule_timeout_seconds: z.number().positive().optional(),
  skip_on_exit_code: z.union([z.number().int(), z.array(z.number().int())]).optional(),
  cleanup: z.enum(['delete', 'keep_failed', 'keep_all']).optional(),
  /** Absolute path the container writes JSON to (<= 4 KiB); it becomes the task's return_value XCom. */
  result_file: z.string().startsWith('/', 'result_file must be an absolute path in the container').optional(),
});

/** Arguments of a pod task as a DAG author writes them. */
export type PodTaskArgs = z.input<typeof podArgsSchema>;
/** Arguments after validation. */
export type PodArgs = z.output<typeof podArgsSchema>;
export type PodVolume = z.output<typeof volume>;
export type EnvValue = z.output<typeof envValue>;

/** Defaults applied when a field is absent. */
export const POD_ARG_DEFAULTS = {
  capacity: 'any',
  cleanup: 'delete',
  schedule_timeout_seconds: 600,
  namespace: 'default',
} as const;

/** A pod task whose arguments are invalid; never worth a retry. */
export class PodArgsError extends Error {
  readonly code = 'POD_ARGS_INVALID';
  constructor(
    readonly dagId: string,
    readonly taskId: string,
    readonly field: string,
    detail: string,
    file?: string,
  ) {
    super(`${file ? `${file}: ` : ''}DAG '${dagId}', task '${taskId}': operator_args.${field}: ${detail}`);
    this.name = 'PodArgsError';
  }
}

/**
 * Validates operator_args of a pod task. Throws PodArgsError naming the DAG, task and
 * field, e.g. "dags/x.ts: DAG 'x', task 'train': operator_args.resources.gpus: expected int".
 */
export function parsePodArgs(raw: unknown, where: { dagId: string; taskId: string; file?: string }): PodArgs {
  const res = podArgsSchema.safeParse(raw);
  if (res.success) return res.data;
  const first = res.error.issues[0]!;
  const field = first.path.map(String).join('.') || '(root)';
  const more = res.error.issues.length > 1 ? ` (and ${res.error.issues.length - 1} more: ${res.error.issues.slice(1).map((i) => i.path.join('.') || '(root)').join(', ')})` : '';
  throw new PodArgsError(where.dagId, where.taskId, field, first.message + more, where.file);
}
