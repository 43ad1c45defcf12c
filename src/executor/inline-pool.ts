import { fork, type ChildProcess } from 'node:child_process';
import type { ChildMessage, ChildStart } from './inline-child.ts';

const CHILD = new URL('./inline-child.ts', import.meta.url).pathname;
const TSX_LOADER = import.meta.resolve('tsx');

interface Pooled {
  child: ChildProcess;
  tasks: number;
  idleTimer?: NodeJS.Timeout;
}

export interface TaskChild {
  child: ChildProcess;
  /** Give the process back after a clean finish; it runs the next task without a new start. */
  release(): void;
  /** Kill it (timeout, kill request, crash): it never runs another task. */
  discard(): void;
}

/**
 * Warm child processes for inline task functions. Starting a process (Node, the TypeScript
 * loader, the DAG file and its libraries) costs hundreds of milliseconds, so a finished
 * process is kept for the next task; a killed or crashed one is replaced. Processes are
 * recycled after `maxTasks` tasks and stopped after `idleMs` without work.
 */
export class InlineProcessPool {
  private readonly idle: Pooled[] = [];
  private closed = false;

  constructor(private readonly opts: { maxIdle?: number; maxTasks?: number; idleMs?: number } = {}) {}

  acquire(): TaskChild {
    if (this.closed) throw new Error('the worker is shutting down');
    let p = this.idle.pop();
    if (p) clearTimeout(p.idleTimer);
    else {
      const child = fork(CHILD, [], { execArgv: ['--import', TSX_LOADER], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
      child.on('error', () => {}); // reported through 'exit' to the task that owns it
      p = { child, tasks: 0 };
    }
    const pooled = p;
    pooled.tasks++;
    let settled = false;
    return {
      child: pooled.child,
      release: () => {
        if (settled) return;
        settled = true;
        const alive = pooled.child.exitCode === null && pooled.child.signalCode === null && pooled.child.connected;
        if (!alive || this.closed || pooled.tasks >= (this.opts.maxTasks ?? 200) || this.idle.length >= (this.opts.maxIdle ?? 8)) {
          pooled.child.kill('SIGKILL');
          return;
        }
        pooled.child.removeAllListeners('message');
        pooled.child.removeAllListeners('exit');
        pooled.child.stdout?.removeAllListeners('data');
        pooled.child.stderr?.removeAllListeners('data');
        pooled.idleTimer = setTimeout(() => this.retire(pooled), this.opts.idleMs ?? 60_000);
        pooled.idleTimer.unref();
        this.idle.push(pooled);
      },
      discard: () => {
        if (settled) return;
        settled = true;
        pooled.child.kill('SIGKILL');
      },
    };
  }

  private retire(p: Pooled) {
    const i = this.idle.indexOf(p);
    if (i >= 0) this.idle.splice(i, 1);
    p.child.kill('SIGKILL');
  }

  /** Stop every idle process (running ones are stopped by their tasks' abort). */
  close(): void {
    this.closed = true;
    for (const p of this.idle.splice(0)) {
      clearTimeout(p.idleTimer);
      p.child.kill('SIGKILL');
    }
  }
}

export type { ChildMessage, ChildStart };
