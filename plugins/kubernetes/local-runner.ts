/**
 * Local mode: a pod task run as a child process when no cluster is configured, so the same
 * DAG runs on a laptop and in CI. The image is ignored (one warning per process); argv is
 * `local_command`, else `command + args`, spawned without a shell.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Json, TaskOutcome } from '../../src/dag/types.ts';
import type { AbortReason, TaskLogger } from '../../src/executor/operator.ts';
import type { PodArgs } from './pod-args.ts';

let imageWarned = false;

/** For tests: forget that the image warning was given. */
export function resetImageWarning(): void {
  imageWarned = false;
}

export interface LocalRunInput {
  /** Validated, templated args. */
  args: PodArgs;
  /** PODFLOW_* identity and lineage env. */
  podflowEnv: Record<string, string>;
  cwd: string;
  log: TaskLogger;
  signal: AbortSignal;
  logger: Logger;
  where: string;
  /** Grace between SIGTERM and SIGKILL on abort (default: termination_grace_seconds or 10 s). */
  killGraceMs?: number;
}

function literalEnv(args: PodArgs, log: TaskLogger): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(args.env ?? {})) {
    if (typeof v === 'object') {
      if ('secret_key_ref' in v || 'config_map_key_ref' in v) {
        const ref = 'secret_key_ref' in v ? v.secret_key_ref : v.config_map_key_ref;
        if (ref.optional) continue;
      }
      log.warn(`local mode: env ${k} references a Secret/ConfigMap/field and is not set; set it in the worker's environment if the command needs it`);
      continue;
    }
    out[k] = String(v);
  }
  return out;
}

/** Runs the task as a local process; the exit code decides. */
export async function runLocal(input: LocalRunInput): Promise<TaskOutcome> {
  const { args, log, signal } = input;
  if (!imageWarned) {
    imageWarned = true;
    input.logger.warn({ image: args.image }, 'no Kubernetes cluster configured: pod tasks run as local processes and their images are ignored (set PODFLOW_KUBE_MODE=cluster and KUBECONFIG to run pods)');
    log.warn(`local mode: image '${args.image}' ignored; running the command as a local process`);
  }
  const argv = args.local_command ?? [...(args.command ?? []), ...(args.args ?? [])];
  if (argv.length === 0) {
    return { state: 'failed', fatal: true, error: `${input.where}: local mode needs a command: give local_command, or command/args (the image's entrypoint cannot run locally)` };
  }
  const dir = args.result_file ? mkdtempSync(join(tmpdir(), 'podflow-result-')) : null;
  const resultPath = dir ? join(dir, 'result.json') : null;
  const env: Record<string, string | undefined> = {
    ...process.env,
    ...literalEnv(args, log),
    ...input.podflowEnv,
    ...(resultPath ? { PODFLOW_RESULT_FILE: resultPath } : {}),
  };
  try {
    const res = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; spawnError?: Error }>((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), { cwd: input.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
      const pump = (stream: NodeJS.ReadableStream, name: 'stdout' | 'stderr') => {
        let partial = '';
        stream.setEncoding('utf8');
        stream.on('data', (d: string) => {
          const parts = (partial + d).split('\n');
          partial = parts.pop()!;
          for (const p of parts) log.raw(p, name);
        });
        stream.on('end', () => partial && log.raw(partial, name));
      };
      pump(child.stdout!, 'stdout');
      pump(child.stderr!, 'stderr');
      let killTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        child.kill('SIGTERM');
        killTimer = setTimeout(() => child.kill('SIGKILL'), input.killGraceMs ?? (args.termination_grace_seconds ?? 10) * 1000);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      child.on('error', (e) => resolve({ code: null, signal: null, spawnError: e }));
      child.on('close', (code, sig) => {
        clearTimeout(killTimer);
        signal.removeEventListener('abort', onAbort);
        resolve({ code, signal: sig });
      });
    });
    if (res.spawnError) {
      return { state: 'failed', fatal: true, error: `${input.where}: cannot start ${JSON.stringify(argv[0])} locally (${res.spawnError.message}); check local_command` };
    }
    if (signal.aborted) {
      const reason = signal.reason as AbortReason | undefined;
      return { state: 'failed', exit_code: res.code, error: `${input.where}: local process stopped: ${reason?.message ?? 'aborted'}` };
    }
    const facts: Record<string, Json> = { mode: 'local', argv, image_ignored: args.image };
    const code = res.code ?? -1;
    if (code === 0) {
      const out: TaskOutcome = { state: 'success', exit_code: 0, facts };
      if (resultPath) {
        let text: string | null = null;
        try {
          text = readFileSync(resultPath, 'utf8').trim();
        } catch {
          /* no result written */
        }
        if (text) {
          try {
            out.return_value = JSON.parse(text) as Json;
          } catch (e) {
            return { state: 'failed', fatal: true, exit_code: 0, facts, error: `${input.where}: $PODFLOW_RESULT_FILE does not hold JSON (${(e as Error).message})` };
          }
        }
      }
      return out;
    }
    const skip = args.skip_on_exit_code === undefined ? [] : ([] as number[]).concat(args.skip_on_exit_code);
    if (skip.includes(code)) return { state: 'skipped', exit_code: code, facts, error: `exit code ${code} is listed in skip_on_exit_code` };
    return {
      state: 'failed',
      exit_code: res.code,
      facts,
      error: `${input.where}: local process ${JSON.stringify(argv[0])} ${res.signal ? `was killed by ${res.signal}` : `exited with code ${code}`}`,
    };
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
