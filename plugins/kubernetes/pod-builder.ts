/**
 * Builds the V1Pod for one task try from validated (and already templated) pod args.
 * Precedence, lowest first: pod template < capacity profile < task fields < Podflow's own
 * labels, annotations and env (which identify the try and must not be overridden).
 */
import type {
  V1Affinity,
  V1Container,
  V1EnvFromSource,
  V1EnvVar,
  V1NodeSelectorTerm,
  V1Pod,
  V1PodSecurityContext,
  V1SecurityContext,
  V1Toleration,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import type { PodArgs, EnvValue } from './pod-args.ts';
import { capacityConstraints, defaultGpuTolerations, type CapacityProfiles, type Capacity } from './capacity-profiles.ts';
import { labelValue, podName, type PodIdentity } from './pod-names.ts';

/** Name of the container whose end decides the task (Airflow's KubernetesPodOperator uses the same). */
export const MAIN_CONTAINER = 'base';

export const LABELS = {
  managedBy: 'podflow.io/managed-by',
  dagId: 'podflow.io/dag-id',
  runId: 'podflow.io/run-id',
  taskId: 'podflow.io/task-id',
  mapIndex: 'podflow.io/map-index',
  tryNumber: 'podflow.io/try-number',
  attempt: 'podflow.io/attempt',
} as const;
export const MANAGED_BY = 'podflow';
/** Annotation holding the exact (unsanitized) ids of the try as JSON. */
export const TRY_ANNOTATION = 'podflow.io/task-instance';
export const RUN_ANNOTATION = 'podflow.io/run-id';

export const DEFAULT_POD_SECURITY_CONTEXT: V1PodSecurityContext = {
  runAsNonRoot: true,
  seccompProfile: { type: 'RuntimeDefault' },
};
export const DEFAULT_CONTAINER_SECURITY_CONTEXT: V1SecurityContext = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

export interface BuildPodInput {
  /** Validated args with command, args and env already templated. */
  args: PodArgs;
  identity: PodIdentity;
  namespace: string;
  profiles: CapacityProfiles | null;
  template: V1Pod | null;
  /** Lineage ids of the run (file hash, logical date …) passed to the container as env vars. */
  lineageEnv?: Record<string, string>;
}

/** Labels selecting every pod of one task try (all attempts). */
export function tryLabels(id: PodIdentity): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.dagId]: labelValue(id.dagId),
    [LABELS.runId]: labelValue(id.runId),
    [LABELS.taskId]: labelValue(id.taskId),
    // -1 is not a valid label value (it must start with an alphanumeric).
    [LABELS.mapIndex]: id.mapIndex >= 0 ? String(id.mapIndex) : 'none',
    [LABELS.tryNumber]: String(id.tryNumber),
  };
}

/** The exact-ids annotation value, compared on re-attach so a label hash collision can never adopt a stranger's pod. */
export function tryAnnotation(id: PodIdentity): string {
  return JSON.stringify({ dag_id: id.dagId, run_id: id.runId, task_id: id.taskId, map_index: id.mapIndex, try_number: id.tryNumber });
}

function str(q: string | number): string {
  return typeof q === 'number' ? String(q) : q;
}

function envVar(name: string, v: EnvValue): V1EnvVar {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return { name, value: String(v) };
  if ('secret_key_ref' in v) return { name, valueFrom: { secretKeyRef: v.secret_key_ref } };
  if ('config_map_key_ref' in v) return { name, valueFrom: { configMapKeyRef: v.config_map_key_ref } };
  return { name, valueFrom: { fieldRef: { fieldPath: v.field_ref } } };
}

function mergeEnv(base: V1EnvVar[] | undefined, over: V1EnvVar[]): V1EnvVar[] {
  const names = new Set(over.map((e) => e.name));
  return [...(base ?? []).filter((e) => !names.has(e.name)), ...over];
}

function volumeOf(v: PodArgs['volumes'] extends (infer T)[] | undefined ? T : never): { volume: V1Volume; mount: V1VolumeMount } {
  const volume: V1Volume = { name: v.name };
  if (v.pvc) volume.persistentVolumeClaim = { claimName: v.pvc.claim_name, readOnly: v.pvc.read_only };
  else if (v.config_map) volume.configMap = { name: v.config_map.name, items: v.config_map.items, defaultMode: v.config_map.default_mode };
  else if (v.secret) volume.secret = { secretName: v.secret.secret_name, items: v.secret.items, defaultMode: v.secret.default_mode };
  else if (v.empty_dir) volume.emptyDir = { medium: v.empty_dir.medium, sizeLimit: v.empty_dir.size_limit === undefined ? undefined : str(v.empty_dir.size_limit) };
  const mount: V1VolumeMount = { name: v.name, mountPath: v.mount_path, subPath: v.sub_path, readOnly: v.read_only };
  return { volume: dropUndefined(volume), mount: dropUndefined(mount) };
}

/** JSON round trip drops `undefined` so the pod equals what the API server stores. */
function dropUndefined<T>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}

function tolerationKey(t: V1Toleration): string {
  return JSON.stringify([t.key ?? '', t.operator ?? '', t.value ?? '', t.effect ?? '', t.tolerationSeconds ?? null]);
}

function uniqueTolerations(...lists: (V1Toleration[] | undefined)[]): V1Toleration[] {
  const seen = new Set<string>();
  const out: V1Toleration[] = [];
  for (const t of lists.flatMap((l) => l ?? [])) {
    const k = tolerationKey(t);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(t);
    }
  }
  return out;
}

/**
 * Combines two affinities so both hold: required node selector terms are ORed lists of
 * ANDed expressions, so the result is the cross product with expressions concatenated.
 * Preferred terms and pod (anti-)affinity terms are concatenated.
 */
export function mergeAffinity(a: V1Affinity | null | undefined, b: V1Affinity | null | undefined): V1Affinity | undefined {
  if (!a) return b ?? undefined;
  if (!b) return a;
  const out: V1Affinity = structuredClone(a);
  const ra = a.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  const rb = b.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (ra || rb) {
    let terms: V1NodeSelectorTerm[];
    if (ra && rb) {
      terms = ra.flatMap((ta) =>
        rb.map((tb) => ({
          matchExpressions: [...(ta.matchExpressions ?? []), ...(tb.matchExpressions ?? [])],
          ...(ta.matchFields || tb.matchFields ? { matchFields: [...(ta.matchFields ?? []), ...(tb.matchFields ?? [])] } : {}),
        })),
      );
    } else terms = (ra ?? rb)!;
    out.nodeAffinity = { ...out.nodeAffinity, requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } };
  }
  const pa = a.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
  const pb = b.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
  if (pa.length + pb.length > 0) {
    out.nodeAffinity = { ...out.nodeAffinity, preferredDuringSchedulingIgnoredDuringExecution: [...pa, ...pb] };
  }
  for (const k of ['podAffinity', 'podAntiAffinity'] as const) {
    if (!b[k]) continue;
    const x = a[k] ?? {};
    const y = b[k]!;
    out[k] = {
      requiredDuringSchedulingIgnoredDuringExecution: [...(x.requiredDuringSchedulingIgnoredDuringExecution ?? []), ...(y.requiredDuringSchedulingIgnoredDuringExecution ?? [])],
      preferredDuringSchedulingIgnoredDuringExecution: [...(x.preferredDuringSchedulingIgnoredDuringExecution ?? []), ...(y.preferredDuringSchedulingIgnoredDuringExecution ?? [])],
    };
  }
  return out;
}

/** Env vars every pod gets, identifying its try. */
export function podflowEnv(id: PodIdentity, lineageEnv: Record<string, string> = {}, resultFile?: string): V1EnvVar[] {
  const env: V1EnvVar[] = [
    { name: 'PODFLOW_DAG_ID', value: id.dagId },
    { name: 'PODFLOW_RUN_ID', value: id.runId },
    { name: 'PODFLOW_TASK_ID', value: id.taskId },
    { name: 'PODFLOW_MAP_INDEX', value: String(id.mapIndex) },
    { name: 'PODFLOW_TRY_NUMBER', value: String(id.tryNumber) },
  ];
  for (const [k, v] of Object.entries(lineageEnv)) env.push({ name: k, value: v });
  if (resultFile) env.push({ name: 'PODFLOW_RESULT_FILE', value: resultFile });
  return env;
}

/**
 * The pod for one try. Throws (with the fix) when the capacity asked for has no profile.
 *
 * Resources: `cpu`, `memory` and `ephemeral_storage` become requests; memory and ephemeral
 * storage are also limits (a pod over its memory request would be OOM-killed by surprise on a
 * busy node), CPU is left unlimited unless `resources.limits.cpu` is set (CPU limits throttle
 * data loaders). `gpus: n` becomes the `nvidia.com/gpu: n` limit plus the NVIDIA toleration.
 */
export function buildPod(input: BuildPodInput): V1Pod {
  const { args, identity, namespace, profiles } = input;
  const pod: V1Pod = input.template ? structuredClone(input.template) : {};
  pod.apiVersion = 'v1';
  pod.kind = 'Pod';
  const spec = (pod.spec ??= { containers: [] });
  spec.containers ??= [];

  let main = spec.containers.find((c) => c.name === MAIN_CONTAINER) ?? spec.containers[0];
  if (!main) {
    main = { name: MAIN_CONTAINER };
    spec.containers.push(main);
  }
  const mainName = main.name;
  const c: V1Container = main;

  c.image = args.image;
  if (args.command) c.command = args.command;
  if (args.args) c.args = args.args;
  if (args.image_pull_policy) c.imagePullPolicy = args.image_pull_policy;

  const env = Object.entries(args.env ?? {}).map(([k, v]) => envVar(k, v));
  c.env = mergeEnv(mergeEnv(c.env, env), podflowEnv(identity, input.lineageEnv, args.result_file));
  if (args.env_from?.length) {
    const from: V1EnvFromSource[] = args.env_from.map((e) =>
      dropUndefined(
        e.secret
          ? { prefix: e.prefix, secretRef: { name: e.secret, optional: e.optional } }
          : { prefix: e.prefix, configMapRef: { name: e.config_map!, optional: e.optional } },
      ),
    );
    c.envFrom = [...(c.envFrom ?? []), ...from];
  }

  // Resources
  const r = args.resources;
  if (r) {
    const requests: Record<string, string> = { ...(c.resources?.requests ?? {}) };
    const limits: Record<string, string> = { ...(c.resources?.limits ?? {}) };
    if (r.cpu !== undefined) requests.cpu = str(r.cpu);
    if (r.memory !== undefined) requests.memory = limits.memory = str(r.memory);
    if (r.ephemeral_storage !== undefined) requests['ephemeral-storage'] = limits['ephemeral-storage'] = str(r.ephemeral_storage);
    if (r.limits?.cpu !== undefined) limits.cpu = str(r.limits.cpu);
    if (r.limits?.memory !== undefined) limits.memory = str(r.limits.memory);
    if (r.limits?.ephemeral_storage !== undefined) limits['ephemeral-storage'] = str(r.limits.ephemeral_storage);
    // Extended resources: a limit alone is enough (the request defaults to it and may not differ).
    if (r.gpus) limits['nvidia.com/gpu'] = String(r.gpus);
    if (r.accelerator) limits[r.accelerator.resource] = String(r.accelerator.count);
    c.resources = {
      ...(Object.keys(requests).length ? { requests } : {}),
      ...(Object.keys(limits).length ? { limits } : {}),
    };
  }

  // Security: restrictive by default; template, then task, may loosen it.
  c.securityContext = { ...DEFAULT_CONTAINER_SECURITY_CONTEXT, ...(c.securityContext ?? {}), ...((args.security_context as V1SecurityContext | undefined) ?? {}) };
  spec.securityContext = { ...DEFAULT_POD_SECURITY_CONTEXT, ...(spec.securityContext ?? {}), ...((args.pod_security_context as V1PodSecurityContext | undefined) ?? {}) };

  // Result channel: the kubelet copies this file into the terminated status (no sidecar needed).
  if (args.result_file) {
    c.terminationMessagePath = args.result_file;
    c.terminationMessagePolicy = 'File';
  } else {
    // On failure with no message file, the tail of the log becomes the status message.
    c.terminationMessagePolicy ??= 'FallbackToLogsOnError';
  }

  // Volumes
  if (args.volumes?.length) {
    const built = args.volumes.map(volumeOf);
    const names = new Set(built.map((b) => b.volume.name));
    spec.volumes = [...(spec.volumes ?? []).filter((v) => !names.has(v.name)), ...built.map((b) => b.volume)];
    const paths = new Set(built.map((b) => b.mount.mountPath));
    c.volumeMounts = [...(c.volumeMounts ?? []).filter((m) => !paths.has(m.mountPath)), ...built.map((b) => b.mount)];
  }

  // Scheduling
  const capacity: Capacity = args.capacity ?? 'any';
  const constraints = capacityConstraints(profiles, capacity);
  const nodeSelector = { ...(spec.nodeSelector ?? {}), ...constraints.node_selector, ...(args.node_selector ?? {}) };
  if (Object.keys(nodeSelector).length) spec.nodeSelector = nodeSelector;
  const gpuTolerations = r?.gpus ? defaultGpuTolerations(profiles) : [];
  const tolerations = uniqueTolerations(spec.tolerations, constraints.tolerations, gpuTolerations, args.tolerations as V1Toleration[] | undefined);
  if (tolerations.length) spec.tolerations = tolerations;
  const affinity = mergeAffinity(mergeAffinity(spec.affinity, constraints.affinity), args.affinity as V1Affinity | undefined);
  if (affinity) spec.affinity = affinity;
  if (args.priority_class) spec.priorityClassName = args.priority_class;
  if (args.service_account) spec.serviceAccountName = args.service_account;
  if (args.image_pull_secrets?.length) {
    const have = new Set((spec.imagePullSecrets ?? []).map((s) => s.name));
    spec.imagePullSecrets = [...(spec.imagePullSecrets ?? []), ...args.image_pull_secrets.filter((n) => !have.has(n)).map((name) => ({ name }))];
  }
  if (args.active_deadline_seconds !== undefined) spec.activeDeadlineSeconds = args.active_deadline_seconds;
  if (args.termination_grace_seconds !== undefined) spec.terminationGracePeriodSeconds = args.termination_grace_seconds;
  // A try is one attempt: retries are Podflow's, never the kubelet's.
  spec.restartPolicy = 'Never';

  // Metadata
  const meta = (pod.metadata ??= {});
  meta.name = podName(identity);
  meta.namespace = namespace;
  delete meta.generateName;
  delete meta.resourceVersion;
  delete meta.uid;
  meta.labels = {
    ...(meta.labels ?? {}),
    ...(args.labels ?? {}),
    ...tryLabels(identity),
    [LABELS.attempt]: String(identity.attempt ?? 0),
  };
  meta.annotations = {
    ...(meta.annotations ?? {}),
    ...(args.annotations ?? {}),
    [RUN_ANNOTATION]: identity.runId,
    [TRY_ANNOTATION]: tryAnnotation(identity),
    'podflow.io/main-container': mainName!,
  };
  delete pod.status;
  return dropUndefined(pod);
}
