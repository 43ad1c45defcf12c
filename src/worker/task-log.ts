import type { Logger } from 'pino';
import type { TaskInstanceKey } from '../dag/types.ts';
import type { TaskLogger } from '../executor/operator.ts';
import type { StateStore } from '../state/store.ts';

/**
 * The log of one task try: every line goes to pino (with DAG, run, task and try ids) and is
 * appended to the try's log in Redis in small batches, so `podflow tasks logs` can read it
 * while the task runs and long after.
 */
export class TaskLog implements TaskLogger {
  private buffer: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** Lines this try wrote so far (this object is the try's only writer while it runs). */
  private total = 0;

  /**
   * @param maxLines lines kept per try: beyond it the oldest lines are dropped and the first
   *   line says how many, so a runaway task cannot exhaust Redis memory (the tail, where a
   *   failure shows, is kept).
   */
  constructor(
    private readonly store: StateStore,
    private readonly ti: TaskInstanceKey,
    private readonly tryNumber: number,
    private readonly logger: Logger,
    private readonly maxLines = 100_000,
  ) {}

  debug(msg: string, fields?: Record<string, unknown>) {
    this.line('DEBUG', msg, fields);
    this.logger.debug(fields ?? {}, msg);
  }
  info(msg: string, fields?: Record<string, unknown>) {
    this.line('INFO', msg, fields);
    this.logger.info(fields ?? {}, msg);
  }
  warn(msg: string, fields?: Record<string, unknown>) {
    this.line('WARNING', msg, fields);
    this.logger.warn(fields ?? {}, msg);
  }
  error(msg: string, fields?: Record<string, unknown>) {
    this.line('ERROR', msg, fields);
    this.logger.error(fields ?? {}, msg);
  }
  raw(line: string, stream: 'stdout' | 'stderr' = 'stdout') {
    this.push(`[${new Date().toISOString()}] {${stream}} ${line}`);
    this.logger.debug({ stream }, line);
  }

  private line(level: string, msg: string, fields?: Record<string, unknown>) {
    const extra = fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : '';
    this.push(`[${new Date().toISOString()}] {${level}} ${msg}${extra}`);
  }

  private push(text: string) {
    this.buffer.push(text);
    if (this.buffer.length >= 200) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), 100);
  }

  /** Write what is buffered; resolves when it is in Redis. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const lines = this.buffer;
    this.buffer = [];
    this.total += lines.length;
    const total = this.total;
    this.flushing = this.flushing.then(async () => {
      try {
        await this.store.appendLog(this.ti, this.tryNumber, lines);
        if (total > this.maxLines) {
          const note = `[${new Date().toISOString()}] {WARNING} ${total - this.maxLines + 1} earlier lines of this try were dropped to keep its log under ${this.maxLines} lines (PODFLOW_TASK_LOG_MAX_LINES)`;
          await this.store.keepLogTail(this.ti, this.tryNumber, this.maxLines, note);
        }
      } catch (e) {
        this.logger.error({ err: e }, 'could not write task log lines to Redis');
      }
    });
    return this.flushing;
  }
}
