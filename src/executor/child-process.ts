import { spawn } from 'node:child_process';
import type { TaskLogger } from './operator.ts';

export interface ChildResult {
  exit_code: number | null;
  signal: string | null;
  /** Last non-empty stdout line (Airflow's BashOperator pushes it as the XCom). */
  last_line: string | null;
  /** The process could not be started (ENOENT …): a message saying why. */
  spawn_error: string | null;
}

/**
 * Run argv as a child process without a shell, streaming stdout/stderr lines into the task
 * log. On abort, the whole process group gets SIGTERM, then SIGKILL after `graceMs`.
 */
export function runChild(
  argv: string[],
  opts: { env: Record<string, string | undefined>; cwd?: string; signal: AbortSignal; log: TaskLogger; graceMs?: number },
): Promise<ChildResult> {
  return new Promise((resolve) => {
    let lastLine: string | null = null;
    const child = spawn(argv[0], argv.slice(1), {
      env: opts.env as NodeJS.ProcessEnv,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group, so a timeout kills grandchildren too
    });
    const pipe = (stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr') => {
      let buf = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          opts.log.raw(line, name);
          if (name === 'stdout' && line.trim()) lastLine = line;
        }
      });
      stream?.on('end', () => {
        if (buf) {
          opts.log.raw(buf, name);
          if (name === 'stdout' && buf.trim()) lastLine = buf;
        }
      });
    };
    pipe(child.stdout, 'stdout');
    pipe(child.stderr, 'stderr');
    let killTimer: NodeJS.Timeout | undefined;
    const kill = () => {
      if (child.pid === undefined || child.exitCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      killTimer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, opts.graceMs ?? 5000);
    };
    if (opts.signal.aborted) kill();
    else opts.signal.addEventListener('abort', kill, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => {
      opts.signal.removeEventListener('abort', kill);
      resolve({
        exit_code: null,
        signal: null,
        last_line: null,
        spawn_error:
          e.code === 'ENOENT'
            ? `command '${argv[0]}' was not found on the worker's PATH; install it or give its full path`
            : `command '${argv[0]}' could not be started: ${e.message}`,
      });
    });
    child.on('close', (code, signal) => {
      clearTimeout(killTimer);
      opts.signal.removeEventListener('abort', kill);
      resolve({ exit_code: code, signal, last_line: lastLine, spawn_error: null });
    });
  });
}
