/**
 * The lineage record of one task try: what ran (code, image, argv), on what (resources, node,
 * GPU), with which settings (conf, params), what it read and produced, and what it cost.
 */
import { execFile } from 'node:child_process';
import type { Json, RunType, TaskState } from '../dag/types.ts';
import type { ArtifactRecord } from './artifacts.ts';

/** Resources a try asked for; null where not stated. Memory in GiB, CPU in cores. */
export interface ResourcesAsked {
  cpu: number | null;
  memory_gib: number | null;
  gpu: number | null;
  /** Accelerator resource name when not the NVIDIA default (e.g. `amd.com/gpu`). */
  gpu_resource?: string;
}

/** CPU-, memory- and GPU-seconds asked: resources asked × the try's duration. */
export interface ResourceCost {
  cpu_seconds: number;
  memory_gib_seconds: number;
  gpu_seconds: number;
}

/** A short, bounded description of a try's `return_value` XCom. */
export interface XComSummary {
  type: 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object';
  /** Bytes of its JSON form. */
  bytes: number;
  /** The value itself when its JSON is at most 1 KiB. */
  value?: Json;
  /** Top-level keys (objects) or length (arrays) when the value is too large to keep. */
  keys?: string[];
  length?: number;
  /** First 200 characters of the JSON when the value is too large to keep. */
  preview?: string;
}

export interface TryRecord {
  /** Stable id of this try, see {@link tryId}. */
  id: string;
  dag_id: string;
  run_id: string;
  task_id: string;
  map_index: number;
  try_number: number;
  run_type: RunType | null;
  logical_date: string | null;
  data_interval_start: string | null;
  data_interval_end: string | null;
  dag_file: string;
  dag_file_hash: string;
  /** Commit of the DAGs folder when it is a git repository. */
  git_commit: string | null;
  operator: string;
  executor: string;
  image: string | null;
  /** Resolved digest from pod status (`sha256:…`), when the executor reports it. */
  image_digest: string | null;
  argv: string[] | null;
  resources: ResourcesAsked;
  /** Node (or host) that ran the try. */
  node: string | null;
  gpu_model: string | null;
  hostname: string | null;
  start: string;
  end: string;
  duration_s: number;
  exit_code: number | null;
  state: TaskState;
  error: string | null;
  conf: Record<string, Json>;
  params: Record<string, Json>;
  /** Normalized URIs the task declared it reads. */
  inlets: string[];
  /** Normalized URIs the task declared it updates (datasets). */
  outlets: string[];
  /** Local inlets described at the end of the try (hash of what was read). */
  inputs: ArtifactRecord[];
  /** Declared and registered artifacts, described on success. */
  artifacts: ArtifactRecord[];
  metrics: Record<string, number>;
  return_value: XComSummary | null;
  cost: ResourceCost;
  /** Try ids of this try's upstream tasks in the same run (data passed by XCom or ordering). */
  upstream_tries: string[];
  /** Other facts the executor reported (pod name, preemption …). */
  facts: Record<string, Json>;
}

/**
 * The id of one try: `<dag_id>/<run_id>/<task_id>/<map_index>/<try_number>`.
 * The worker uses the same function to fill `upstream_tries`.
 */
export function tryId(k: { dag_id: string; run_id: string; task_id: string; map_index: number; try_number: number }): string {
  return `${k.dag_id}/${k.run_id}/${k.task_id}/${k.map_index}/${k.try_number}`;
}

const CPU_RE = /^(\d+(?:\.\d+)?)(m?)$/;
const MEM_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** CPU cores from a Kubernetes quantity (`"500m"`, `"2"`, `1.5`); null when absent or unreadable. */
export function parseCpu(q: Json | undefined): number | null {
  if (typeof q === 'number') return Number.isFinite(q) && q >= 0 ? q : null;
  if (typeof q !== 'string') return null;
  const m = CPU_RE.exec(q.trim());
  if (!m) return null;
  return m[2] === 'm' ? Number(m[1]) / 1000 : Number(m[1]);
}

/** GiB from a Kubernetes quantity (`"512Mi"`, `"2Gi"`, `"1G"`, bytes as a number); null when absent or unreadable. */
export function parseMemoryGib(q: Json | undefined): number | null {
  if (typeof q === 'number') return Number.isFinite(q) && q >= 0 ? q / 1024 ** 3 : null;
  if (typeof q !== 'string') return null;
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T|)$/.exec(q.trim());
  if (!m) return null;
  return (Number(m[1]) * MEM_UNITS[m[2]]) / 1024 ** 3;
}

function obj(v: Json | undefined): Record<string, Json> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
}

/**
 * Resources a task asks for, read from its operator arguments. Accepts the pod operator's
 * shorthand (`resources: { cpu, memory, gpus }`, `gpus: N`) and Kubernetes requirements
 * (`resources: { requests, limits }`); requests win over limits, as the scheduler places by requests.
 */
export function resourcesAsked(args: Record<string, Json>): ResourcesAsked {
  const res = obj(args.resources) ?? {};
  const requests = obj(res.requests) ?? {};
  const limits = obj(res.limits) ?? {};
  const pick = (...vals: (Json | undefined)[]) => vals.find((v) => v !== undefined && v !== null);
  const cpu = parseCpu(pick(requests.cpu, res.cpu, limits.cpu, args.cpu));
  const memory_gib = parseMemoryGib(pick(requests.memory, res.memory, limits.memory, args.memory));
  let gpu: number | null = null;
  let gpu_resource: string | undefined;
  const gpuCount = pick(res.gpus, args.gpus, res.gpu, args.gpu);
  if (gpuCount !== undefined) gpu = Number(gpuCount) || 0;
  // extended resources (`vendor.com/name`) are accelerators: nvidia.com/gpu, amd.com/gpu, google.com/tpu …
  for (const src of [limits, requests]) {
    for (const [k, v] of Object.entries(src)) {
      if (k.includes('/')) {
        gpu = Number(v) || 0;
        if (k !== 'nvidia.com/gpu') gpu_resource = k;
      }
    }
  }
  // the pod operator's `accelerator: { resource: 'amd.com/gpu', count: 2 }`
  const accel = obj(pick(res.accelerator, args.accelerator));
  if (accel && typeof accel.resource === 'string') {
    gpu = Number(accel.count) || 0;
    gpu_resource = accel.resource;
  }
  return { cpu, memory_gib, gpu, ...(gpu_resource ? { gpu_resource } : {}) };
}

/** Asked resources × duration. An unstated resource counts as zero. */
export function costOf(r: ResourcesAsked, durationS: number): ResourceCost {
  const d = Math.max(0, durationS);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    cpu_seconds: round((r.cpu ?? 0) * d),
    memory_gib_seconds: round((r.memory_gib ?? 0) * d),
    gpu_seconds: round((r.gpu ?? 0) * d),
  };
}

/** Summarize a `return_value` XCom so records stay small whatever a task returns. */
export function summarizeXCom(v: Json | undefined): XComSummary | null {
  if (v === undefined) return null;
  const json = JSON.stringify(v);
  const bytes = Buffer.byteLength(json);
  const type: XComSummary['type'] = v === null ? 'null' : Array.isArray(v) ? 'array' : (typeof v as XComSummary['type']);
  if (bytes <= 1024) return { type, bytes, value: v };
  const s: XComSummary = { type, bytes, preview: json.slice(0, 200) };
  if (Array.isArray(v)) s.length = v.length;
  else if (type === 'object') s.keys = Object.keys(v as object).slice(0, 50);
  return s;
}

export interface GitInfo {
  commit: string;
  /** Repository root. */
  toplevel: string;
  /** `remote.origin.url`, when set. */
  remote: string | null;
}

const GIT_CACHE_MS = 30_000;
const gitCache = new Map<string, { at: number; info: Promise<GitInfo | null> }>();

function git(folder: string, args: string[]): Promise<string | null> {
  return new Promise((resolveP) => {
    // execFile, never a shell: the folder comes from configuration
    execFile('git', ['-C', folder, ...args], { timeout: 5000, windowsHide: true }, (err, stdout) => {
      resolveP(err ? null : String(stdout).trim() || null);
    });
  });
}

/**
 * The git commit, root and origin of the repository holding `folder`, or null when it is not in
 * a repository (or git is missing). Cached for 30 s per folder: a DAGs folder kept in sync by
 * git-sync moves to new commits, so the cache must not live forever.
 */
export function gitInfoOf(folder: string): Promise<GitInfo | null> {
  const hit = gitCache.get(folder);
  if (hit && Date.now() - hit.at < GIT_CACHE_MS) return hit.info;
  const info = (async () => {
    const out = await git(folder, ['rev-parse', 'HEAD', '--show-toplevel']);
    if (!out) return null;
    const [commit, toplevel] = out.split('\n');
    if (!commit || !/^[0-9a-f]{40,64}$/.test(commit)) return null;
    const remote = await git(folder, ['config', '--get', 'remote.origin.url']);
    return { commit, toplevel: toplevel ?? folder, remote };
  })();
  gitCache.set(folder, { at: Date.now(), info });
  return info;
}

/** The commit (`git -C <folder> rev-parse HEAD`) of the repository holding `folder`, or null. Cached, see {@link gitInfoOf}. */
export async function gitCommitOf(folder: string): Promise<string | null> {
  return (await gitInfoOf(folder))?.commit ?? null;
}
