import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { Logger } from 'pino';
import type { DagSpec } from '../dag/types.ts';
import type { StateStore } from '../state/store.ts';
import type { ParseResult } from './parse-child.ts';

const DAG_FILE_RE = /\.(ts|mts|js|mjs)$/;
const CHILD = new URL('./parse-child.ts', import.meta.url).pathname;
const TSX_LOADER = import.meta.resolve('tsx');

interface FileState {
  mtimeMs: number;
  size: number;
  hash: string;
  dagIds: string[];
}

export interface LoaderOptions {
  folder: string;
  importTimeoutMs: number;
  logger: Logger;
  /** Files parsed at once (each in its own process). */
  concurrency?: number;
}

/**
 * Watches the DAGs folder: parses new and changed files in isolated child processes,
 * stores valid DAGs in Redis, records import errors, and forgets DAGs of removed files.
 */
export class DagFolderLoader {
  private readonly files = new Map<string, FileState>();
  /** dag_id -> file that owns it (the first file to define it keeps it). */
  private readonly owners = new Map<string, string>();
  private readonly specs = new Map<string, DagSpec>();
  /** dag_id -> files refused because another file owned that id; re-parsed when the owner lets go. */
  private readonly refused = new Map<string, Set<string>>();
  /** Files to parse again on the next scan although unchanged (their duplicate id became free). */
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private reconciled = false;

  constructor(
    private readonly store: StateStore,
    private readonly opts: LoaderOptions,
  ) {}

  /** DAGs currently loaded from files, by id. */
  dags(): Map<string, DagSpec> {
    return this.specs;
  }

  /** Scan now; resolves when every changed file is parsed and stored. */
  scan(): Promise<void> {
    this.scanning ??= this.doScan().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  start(intervalMs: number): void {
    const tick = () => {
      this.scan()
        .catch((e) => this.opts.logger.error({ err: e }, 'scanning the DAGs folder failed'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, intervalMs);
        });
    };
    this.timer = setTimeout(tick, intervalMs);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async doScan(): Promise<void> {
    const { folder, logger } = this.opts;
    if (!existsSync(folder)) {
      logger.warn({ folder }, `DAGs folder ${folder} does not exist; create it or set PODFLOW_DAGS_FOLDER`);
    }
    const present = existsSync(folder) ? listDagFiles(folder) : [];
    const changed: string[] = [];
    for (const file of present) {
      let st;
      try {
        st = statSync(file);
      } catch {
        continue;
      }
      const prev = this.files.get(file);
      if (prev && prev.mtimeMs === st.mtimeMs && prev.size === st.size) continue;
      const content = readFileSync(file);
      const hash = createHash('sha256').update(content).digest('hex');
      if (prev && prev.hash === hash) {
        prev.mtimeMs = st.mtimeMs;
        prev.size = st.size;
        continue;
      }
      // Like Airflow's safe mode: a file that never mentions podflow defines no DAG (helpers, libs).
      if (!content.includes('podflow')) {
        this.files.set(file, { mtimeMs: st.mtimeMs, size: st.size, hash, dagIds: [] });
        await this.forgetFileDags(file, []);
        await this.store.clearImportError(this.rel(file));
        continue;
      }
      this.files.set(file, { mtimeMs: st.mtimeMs, size: st.size, hash, dagIds: prev?.dagIds ?? [] });
      changed.push(file);
    }
    for (const file of [...this.files.keys()]) {
      if (!present.includes(file)) {
        this.unrefuse(file);
        await this.forgetFileDags(file, []);
        this.files.delete(file);
        this.pending.delete(file);
        await this.store.clearImportError(this.rel(file));
        logger.info({ file: this.rel(file) }, 'DAG file removed');
      }
    }
    // Files refused as duplicates whose id has since been freed; a second round covers ids
    // freed while applying this scan's results (a file that stopped defining a DAG).
    for (let round = 0; round < 2 && (changed.length > 0 || this.pending.size > 0); round++) {
      const batch = [...new Set([...changed, ...[...this.pending].filter((f) => this.files.has(f))])].sort();
      changed.length = 0;
      this.pending.clear();
      await this.parseBatch(batch);
    }
    if (!this.reconciled) {
      this.reconciled = true;
      await this.reconcile();
    }
  }

  /** After the first full scan: forget DAGs and import errors left in Redis by files that are gone. */
  private async reconcile(): Promise<void> {
    for (const id of await this.store.dagIds()) {
      if (!this.specs.has(id)) await this.store.removeDag(id);
    }
    const known = new Set([...this.files.keys()].map((f) => this.rel(f)));
    for (const e of await this.store.importErrors()) {
      if (!known.has(e.filename)) await this.store.clearImportError(e.filename);
    }
  }

  private rel(file: string): string {
    return relative(process.cwd(), file) || file;
  }

  /**
   * Parse files concurrently (each in its own process) but apply the results in sorted path
   * order, so which of two files defining the same DAG id owns it does not depend on timing.
   */
  private async parseBatch(sorted: string[]): Promise<void> {
    const results = new Map<string, Promise<ParseResult>>();
    const queue = [...sorted];
    const started = Date.now();
    const workers = Array.from({ length: Math.min(this.opts.concurrency ?? 2, queue.length) }, async () => {
      for (let f = queue.shift(); f; f = queue.shift()) {
        const p = parseInChild(f, this.files.get(f)!.hash, this.opts.importTimeoutMs);
        results.set(f, p);
        await p;
      }
    });
    await Promise.all(workers);
    for (const file of sorted) {
      // A file may have been removed from the map meanwhile (never during a scan today; cheap to check).
      if (!this.files.has(file)) continue;
      await this.applyResult(file, await results.get(file)!, started);
    }
  }

  /** Stop tracking `file` as refused for any DAG id. */
  private unrefuse(file: string): void {
    for (const [id, files] of this.refused) {
      files.delete(file);
      if (files.size === 0) this.refused.delete(id);
    }
  }

  private async applyResult(file: string, result: ParseResult, started: number): Promise<void> {
    const state = this.files.get(file)!;
    const rel = this.rel(file);
    this.unrefuse(file);
    const accepted: string[] = [];
    const problems: { dag_id: string | null; message: string }[] = [...result.errors];
    for (const spec of result.dags) {
      const owner = this.owners.get(spec.dag_id);
      if (owner && owner !== file && this.files.has(owner)) {
        let set = this.refused.get(spec.dag_id);
        if (!set) this.refused.set(spec.dag_id, (set = new Set()));
        set.add(file);
        problems.push({
          dag_id: spec.dag_id,
          message: `DAG id '${spec.dag_id}' is already defined in ${this.rel(owner)}; rename the DAG in one of the two files`,
        });
        continue;
      }
      this.owners.set(spec.dag_id, file);
      this.specs.set(spec.dag_id, spec);
      await this.store.putDag(spec);
      accepted.push(spec.dag_id);
    }
    await this.forgetFileDags(file, accepted);
    state.dagIds = accepted;
    if (problems.length > 0) {
      const message = problems.map((p) => `${rel}${p.dag_id ? ` (DAG '${p.dag_id}')` : ''}: ${withoutDagPrefix(p.message, p.dag_id)}`).join('\n');
      await this.store.setImportError(rel, problems.find((p) => p.dag_id)?.dag_id ?? null, message);
      this.opts.logger.error({ file: rel, dag_id: problems[0].dag_id, error: message }, `import error in ${rel}`);
    } else {
      await this.store.clearImportError(rel);
    }
    this.opts.logger.info(
      { file: rel, dags: accepted, errors: problems.length, ms: Date.now() - started },
      `loaded ${rel}: ${accepted.length} DAG(s)${problems.length ? `, ${problems.length} error(s)` : ''}`,
    );
  }

  /** Drop DAGs this file defined before but no longer does. */
  private async forgetFileDags(file: string, keep: string[]): Promise<void> {
    const prev = this.files.get(file)?.dagIds ?? [];
    for (const id of prev) {
      if (keep.includes(id) || this.owners.get(id) !== file) continue;
      this.owners.delete(id);
      // Files refused as duplicates of this id may now own it: parse them again.
      for (const f of this.refused.get(id) ?? []) if (f !== file) this.pending.add(f);
      this.specs.delete(id);
      await this.store.removeDag(id);
    }
  }
}

/** A validation message already names its DAG ("DAG 'x': …"); the import error line names it too, so drop the repeat. */
function withoutDagPrefix(message: string, dagId: string | null): string {
  if (!dagId) return message;
  const prefix = `DAG '${dagId}': `;
  if (message.startsWith(prefix)) return message.slice(prefix.length);
  const many = `DAG '${dagId}' has `;
  return message.startsWith(many) ? message.slice(many.length) : message;
}

/** DAG files below `folder`, sorted, skipping hidden folders, node_modules and .podflowignore patterns. */
export function listDagFiles(folder: string): string[] {
  const ignore = readIgnore(folder);
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const full = join(dir, e.name);
      const rel = relative(folder, full).split(sep).join('/');
      if (ignore.some((re) => re.test(rel))) continue;
      if (e.isDirectory()) walk(full);
      else if (DAG_FILE_RE.test(e.name) && !e.name.endsWith('.d.ts') && !/\.test\.[mc]?[jt]s$/.test(e.name)) out.push(full);
    }
  };
  walk(folder);
  return out.sort();
}

/** .podflowignore: one regular expression per line, matched against paths relative to the folder (as Airflow's .airflowignore). */
function readIgnore(folder: string): RegExp[] {
  const file = join(folder, '.podflowignore');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => new RegExp(l));
}

/** Import one file in a child process with a time limit. Never throws: failures become errors. */
export function parseInChild(file: string, hash: string, timeoutMs: number): Promise<ParseResult> {
  return new Promise((resolve) => {
    let settled = false;
    let stderr = '';
    const child = fork(CHILD, [file, hash], {
      execArgv: ['--import', TSX_LOADER],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, PODFLOW_PARSING: '1' },
    });
    const done = (r: ParseResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
      resolve(r);
    };
    const timer = setTimeout(() => {
      done({
        ok: false,
        dags: [],
        errors: [
          {
            dag_id: null,
            message: `importing the file took longer than ${timeoutMs / 1000}s and was stopped: move slow work (network calls, training, endless loops) out of module top level into tasks, or raise PODFLOW_DAG_IMPORT_TIMEOUT_MS`,
          },
        ],
      });
    }, timeoutMs);
    child.stderr?.on('data', (d) => {
      if (stderr.length < 20_000) stderr += String(d);
    });
    child.on('message', (m) => done(m as ParseResult));
    child.on('error', (e) => done({ ok: false, dags: [], errors: [{ dag_id: null, message: `could not start the parser: ${e.message}` }] }));
    child.on('exit', (code, signal) => {
      // Let a message still in flight arrive before declaring the exit an error.
      setTimeout(
        () =>
          done({
            ok: false,
            dags: [],
            errors: [
              {
                dag_id: null,
                message: `the file ended the process while being imported (exit code ${code ?? signal})${stderr ? `: ${stderr.trim().split('\n').slice(-15).join('\n')}` : ''}`,
              },
            ],
          }),
        50,
      );
    });
  });
}
