import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { inject, injectable } from 'tsyringe';
import { TaskStore, type TaskQuery } from '../store/task-store.js';
import type { LogLevel, Phrase, Task, TaskFile, TaskKind, TaskLogEntry, TaskProgress } from '../store/task-record.js';
import { explainError } from './explain-error.js';
import { NODE_ID, TASK_FILES_DIR } from './tokens.js';

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._ ()-]{0,199}$/;

/** What a running task's body receives: report progress, write to its log, notice cancellation. */
export interface TaskContext {
  readonly id: string;
  /** Aborted when someone cancels the task; the body should stop soon and throw. */
  readonly signal: AbortSignal;
  progress(p: Partial<TaskProgress>): void;
  /** `phrase`: the same line as a message key of the console and its parameters (the product's own words only). */
  log(level: LogLevel, message: string, phrase?: Phrase): void;
  info(message: string, phrase?: Phrase): void;
  warn(message: string, phrase?: Phrase): void;
  error(message: string, phrase?: Phrase): void;
  /** Keeps a file the task produced (an export to download); `name` is a plain file name. */
  attach(name: string, content: Buffer | string | Readable, contentType: string): Promise<TaskFile>;
}

export interface TaskActor {
  login: string;
  uid: string | null;
}

/** What starting a task answers. */
export interface TaskStart {
  task: Task;
  /** True when the answer is a run that was already in progress (Backup now during a backup). */
  alreadyRunning: boolean;
}

export interface TaskSpec {
  kind: TaskKind;
  title: string;
  /** The title as a message key of the console (`task.title.*`) and its parameters. */
  titlePhrase?: Phrase;
  actor: TaskActor;
  target?: string | null;
}

export type TaskBody = (ctx: TaskContext) => Promise<Record<string, unknown> | void>;

/**
 * Thrown by a body whose work ran to its end but found the outcome bad (a check that found damage, a rehearsal
 * whose restore differs): the task ends FAILED and still keeps its result, which says what was found.
 */
export class TaskFailedError extends Error {
  constructor(
    message: string,
    readonly result: Record<string, unknown>,
  ) {
    super(message);
  }
}

type Outcome = Pick<Task, 'status' | 'error' | 'errorPhrase' | 'result'>;

export type TaskEvent = { type: 'task'; task: Task } | { type: 'log'; entry: TaskLogEntry } | { type: 'end'; task: Task };

interface Running {
  task: Task;
  controller: AbortController;
  seq: number;
  /** Log lines and progress are written in order, one after the other. */
  writes: Promise<void>;
  lastProgressWrite: number;
  progressTimer: NodeJS.Timeout | null;
  done: Promise<Task>;
  /** Ends the task now, whatever its body does (a cancel it ignores, a server that stops). */
  finishNow: (status: 'CANCELLED' | 'INTERRUPTED', error: string) => void;
  /** When the body last reported progress or wrote to the log; the watchdog reads it. */
  lastActivity: number;
  stuckSince: number | null;
  /** Set when the server stops: the task ends INTERRUPTED, not CANCELLED. */
  stopping: boolean;
}

/** How long a task may go without progress before the watchdog reports it stuck, and how long a cancel may take. */
export interface TaskLimits {
  stuckAfterMs: number;
  cancelGraceMs: number;
}

/** DP_TASK_STUCK_MS (10 minutes by default) and DP_TASK_CANCEL_GRACE_MS (10 s). */
export function taskLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): TaskLimits {
  const ms = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}=${raw} is not a positive number of milliseconds`);
    return n;
  };
  return { stuckAfterMs: ms('DP_TASK_STUCK_MS', 10 * 60_000), cancelGraceMs: ms('DP_TASK_CANCEL_GRACE_MS', 10_000) };
}

const PROGRESS_WRITE_INTERVAL_MS = 500;
const HEARTBEAT_MS = 5_000;
const STALE_SECONDS = 30;

/**
 * Runs tasks in this process and records them in the database, so that every node (and every later process)
 * can read a task's status and log. Subscribers get live events for the tasks running here.
 */
@injectable()
export class TaskRegistry {
  private readonly running = new Map<string, Running>();
  private readonly events = new EventEmitter();
  private heartbeat: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private limits: TaskLimits = taskLimitsFromEnv();

  constructor(
    @inject(TaskStore) private readonly store: TaskStore,
    @inject(NODE_ID) private readonly node: string,
    @inject(TASK_FILES_DIR) private readonly filesDir: string,
  ) {
    this.events.setMaxListeners(0);
  }

  /** Marks tasks left RUNNING by a stopped process as INTERRUPTED and starts the heartbeat and the watchdog. */
  async open(): Promise<void> {
    await this.store.markStaleInterrupted(STALE_SECONDS);
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    this.startWatchdog();
  }

  /** Changes the watchdog's and the cancel's limits (configuration, tests). */
  setLimits(limits: Partial<TaskLimits>): void {
    this.limits = { ...this.limits, ...limits };
    if (this.watchdog) this.startWatchdog();
  }

  private startWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = setInterval(() => this.watch(), Math.max(50, Math.min(30_000, Math.floor(this.limits.stuckAfterMs / 4))));
    this.watchdog.unref();
  }

  /** A task without progress for too long is reported stuck in its log and its status message; never silent. */
  private watch(now = Date.now()): void {
    for (const run of this.running.values()) {
      const idle = now - run.lastActivity;
      if (run.stuckSince !== null || idle < this.limits.stuckAfterMs) continue;
      run.stuckSince = now;
      const last = run.task.progress.message ? ` (last: ${run.task.progress.message})` : '';
      const seconds = Math.round(idle / 1000);
      const message = `stuck: no progress for ${seconds} s${last}; cancel it, or check that the repository and the servers are reachable`;
      this.appendLog(run, 'warn', message, { key: 'task.line.stuck', params: { seconds } });
      this.updateProgress(run, { message });
    }
  }

  /** Marks activity; a stuck task that moves again says so. */
  private active(run: Running): void {
    run.lastActivity = Date.now();
    if (run.stuckSince === null) return;
    run.stuckSince = null;
    this.appendLog(run, 'info', 'progressing again', { key: 'task.line.progressing', params: {} });
  }

  /**
   * Stops what still runs here: each task is cancelled and, when it has not ended within `timeoutMs`, recorded
   * INTERRUPTED anyway, so that the server can exit and no task is left RUNNING.
   */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.watchdog) clearInterval(this.watchdog);
    this.heartbeat = null;
    this.watchdog = null;
    const pending = [...this.running.values()];
    for (const r of pending) {
      r.stopping = true;
      this.appendLog(r, 'warn', 'the server is stopping: the task is interrupted', { key: 'task.line.stopping', params: {} });
      r.controller.abort(new Error('the server is stopping'));
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(pending.map((r) => r.done)),
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    for (const r of pending) r.finishNow('INTERRUPTED', 'the server stopped before the task ended');
    await Promise.allSettled(pending.map((r) => r.done));
  }

  /** Records the task, starts its body in the background, and returns the task as it starts. */
  async start(spec: TaskSpec, body: TaskBody): Promise<Task> {
    const task: Task = {
      id: randomUUID(),
      kind: spec.kind,
      title: spec.title,
      titlePhrase: spec.titlePhrase ?? null,
      status: 'RUNNING',
      progress: { done: 0, total: null, unit: null, message: null },
      createdAt: new Date().toISOString(),
      endedAt: null,
      actor: spec.actor.login,
      actorUid: spec.actor.uid,
      target: spec.target ?? null,
      error: null,
      errorPhrase: null,
      result: null,
      cancelRequested: false,
    };
    const controller = new AbortController();
    let resolveDone!: (t: Task) => void;
    const run: Running = {
      task,
      controller,
      seq: 0,
      writes: Promise.resolve(),
      lastProgressWrite: 0,
      progressTimer: null,
      done: new Promise<Task>((r) => (resolveDone = r)),
      finishNow: () => {},
      lastActivity: Date.now(),
      stuckSince: null,
      stopping: false,
    };
    let ended = false;
    // The first end wins: the body's own, or a forced one when it does not stop in time.
    const end = (outcome: Outcome) => {
      if (ended) return;
      ended = true;
      void this.finish(run, outcome).then(resolveDone);
    };
    run.finishNow = (status, error) => {
      if (!ended) this.appendLog(run, 'warn', `${error}: the task is recorded ${status} and its work abandoned`);
      end({ status, error, errorPhrase: null, result: null });
    };
    // Known here before its row exists: whoever finds the row (a list, a test) can wait for it with whenDone.
    this.running.set(task.id, run);
    try {
      await this.store.insert(task, this.node);
    } catch (err) {
      this.running.delete(task.id);
      throw err;
    }
    const ctx = this.context(run);
    setImmediate(() => void this.execute(run, ctx, body).then(end));
    return { ...task };
  }

  private context(run: Running): TaskContext {
    const log = (level: LogLevel, message: string, phrase?: Phrase) => {
      if (!this.running.has(run.task.id)) return; // a body still going after its task was ended
      this.active(run);
      this.appendLog(run, level, message, phrase);
    };
    return {
      id: run.task.id,
      signal: run.controller.signal,
      progress: (p) => {
        this.active(run);
        this.updateProgress(run, p);
      },
      log,
      info: (m, p) => log('info', m, p),
      warn: (m, p) => log('warn', m, p),
      error: (m, p) => log('error', m, p),
      attach: (name, content, contentType) => this.attach(run.task.id, name, content, contentType),
    };
  }

  private async attach(taskId: string, name: string, content: Buffer | string | Readable, contentType: string): Promise<TaskFile> {
    if (!FILE_NAME.test(name)) throw new Error(`attaching ${JSON.stringify(name)} to task ${taskId}: not a plain file name`);
    const dir = path.join(this.filesDir, taskId);
    await mkdir(dir, { recursive: true });
    const final = path.join(dir, name);
    const temp = `${final}.${randomUUID()}.part`;
    const source = typeof content === 'string' || Buffer.isBuffer(content) ? Readable.from([Buffer.from(content)]) : content;
    await pipeline(source, createWriteStream(temp, { flags: 'wx' }));
    await rename(temp, final);
    const file: TaskFile = { name, size: (await stat(final)).size, contentType, createdAt: new Date().toISOString() };
    await this.store.addFile(taskId, file);
    return file;
  }

  files(taskId: string): Promise<TaskFile[]> {
    return this.store.files(taskId);
  }

  /** A file a task produced, or null. */
  async openFile(taskId: string, name: string): Promise<{ file: TaskFile; stream: Readable } | null> {
    if (!FILE_NAME.test(name)) return null;
    const file = (await this.store.files(taskId)).find((f) => f.name === name);
    if (!file) return null;
    return { file, stream: createReadStream(path.join(this.filesDir, taskId, name)) };
  }

  /** Runs the body and says how it ended; recording the end is `finish`'s job. */
  private async execute(run: Running, ctx: TaskContext, body: TaskBody): Promise<Outcome> {
    try {
      // Cancelled before it began: do not start the work at all.
      run.controller.signal.throwIfAborted();
      const result = await body(ctx);
      return { status: 'SUCCEEDED', error: null, errorPhrase: null, result: result ?? null };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof TaskFailedError && !run.controller.signal.aborted) {
        this.appendLog(run, 'error', message);
        return { status: 'FAILED', error: message, errorPhrase: null, result: err.result };
      }
      if (run.stopping) return { status: 'INTERRUPTED', error: `the server stopped before the task ended: ${message}`, errorPhrase: null, result: null };
      if (run.controller.signal.aborted) return { status: 'CANCELLED', error: `cancelled: ${message}`, errorPhrase: null, result: null };
      // The failure explained, with what to do; the raw message stays in the log for whoever digs further.
      const explained = explainError(err);
      if (explained) {
        const phrase = { key: explained.key, params: explained.params };
        this.appendLog(run, 'error', explained.message, phrase);
        this.appendLog(run, 'error', message);
        return { status: 'FAILED', error: explained.message, errorPhrase: phrase, result: null };
      }
      this.appendLog(run, 'error', message);
      return { status: 'FAILED', error: message, errorPhrase: null, result: null };
    }
  }

  private async finish(run: Running, outcome: Outcome): Promise<Task> {
    const t = run.task;
    if (run.progressTimer) clearTimeout(run.progressTimer);
    run.progressTimer = null;
    const final: Task = { ...t, ...outcome, endedAt: new Date().toISOString(), progress: { ...t.progress } };
    run.writes = run.writes.then(() => this.store.finish(final)).catch(() => {});
    await run.writes;
    // Only once recorded: until then a reader here and one reading the database see the same RUNNING task.
    Object.assign(t, final);
    this.running.delete(t.id);
    this.events.emit(t.id, { type: 'end', task: { ...final } } satisfies TaskEvent);
    return final;
  }

  private appendLog(run: Running, level: LogLevel, message: string, phrase?: Phrase): void {
    const entry: TaskLogEntry = { seq: ++run.seq, time: new Date().toISOString(), level, message, phrase: phrase ?? null };
    run.writes = run.writes.then(() => this.store.appendLog(run.task.id, entry)).catch(() => {});
    this.events.emit(run.task.id, { type: 'log', entry } satisfies TaskEvent);
  }

  private updateProgress(run: Running, p: Partial<TaskProgress>): void {
    if (!this.running.has(run.task.id)) return; // a body still going after its task was ended
    run.task.progress = { ...run.task.progress, ...p };
    this.events.emit(run.task.id, { type: 'task', task: { ...run.task } } satisfies TaskEvent);
    const wait = run.lastProgressWrite + PROGRESS_WRITE_INTERVAL_MS - Date.now();
    if (run.progressTimer) return;
    run.progressTimer = setTimeout(
      () => {
        run.progressTimer = null;
        run.lastProgressWrite = Date.now();
        const snapshot = { ...run.task.progress };
        run.writes = run.writes
          .then(async () => {
            const { cancelRequested } = await this.store.saveProgress(run.task.id, snapshot);
            if (cancelRequested) this.abortLocal(run, 'cancelled from another node');
          })
          .catch(() => {});
      },
      Math.max(0, wait),
    );
  }

  private async beat(): Promise<void> {
    try {
      const cancelled = await this.store.heartbeat([...this.running.keys()]);
      for (const id of cancelled) {
        const run = this.running.get(id);
        if (run) this.abortLocal(run, 'cancelled from another node');
      }
    } catch {
      // The database is away for a moment: the next beat tries again.
    }
  }

  private abortLocal(run: Running, reason: string): void {
    if (run.controller.signal.aborted) return;
    run.task.cancelRequested = true;
    run.controller.abort(new Error(reason));
    this.events.emit(run.task.id, { type: 'task', task: { ...run.task } } satisfies TaskEvent);
    // A body that does not notice the cancel (waiting on something that never answers) does not keep the task
    // "Cancelling…": after the grace, the task ends CANCELLED.
    setTimeout(() => run.finishNow('CANCELLED', `cancelled (${reason}), but the work did not stop within ${Math.round(this.limits.cancelGraceMs / 1000)} s`), this.limits.cancelGraceMs).unref();
  }

  /**
   * Asks a task to stop. Returns the task as it is now, or null when there is no such task. A task running on
   * another node is flagged in the database and stops at that node's next heartbeat.
   */
  async cancel(id: string, by: string): Promise<Task | null> {
    const run = this.running.get(id);
    if (run) {
      this.appendLog(run, 'warn', `cancel requested by ${by}`, { key: 'task.line.cancelRequested', params: { who: by } });
      this.abortLocal(run, `cancelled by ${by}`);
      await this.store.requestCancel(id);
      return { ...run.task };
    }
    await this.store.requestCancel(id);
    return this.get(id);
  }

  async get(id: string): Promise<Task | null> {
    const run = this.running.get(id);
    if (run) return { ...run.task };
    await this.store.markStaleInterrupted(STALE_SECONDS);
    return this.store.get(id);
  }

  async list(q: TaskQuery): Promise<{ total: number; offset: number; items: Task[] }> {
    await this.store.markStaleInterrupted(STALE_SECONDS);
    const page = await this.store.list(q);
    // Tasks running here have fresher progress than the throttled copy in the database.
    page.items = page.items.map((t) => (this.running.has(t.id) ? { ...this.running.get(t.id)!.task } : t));
    return page;
  }

  /** The task of this kind, or of one of these kinds (the first found), and target, running anywhere in the cluster, if any. */
  async findRunning(kind: TaskKind | readonly TaskKind[], target?: string | null): Promise<Task | null> {
    const kinds: readonly TaskKind[] = typeof kind === 'string' ? [kind] : kind;
    for (const k of kinds) {
      for (const r of this.running.values()) {
        // A task that has ended but is still being recorded is not running any more.
        if (r.task.status === 'RUNNING' && r.task.kind === k && (target == null || r.task.target === target)) return { ...r.task };
      }
    }
    return this.store.findRunning(kinds, target, STALE_SECONDS);
  }

  async log(id: string, after: number, limit: number): Promise<TaskLogEntry[]> {
    const run = this.running.get(id);
    if (run) await run.writes;
    return this.store.log(id, after, limit);
  }

  isLocal(id: string): boolean {
    return this.running.has(id);
  }

  /** Live events of a task running here. Returns the function that unsubscribes. */
  subscribe(id: string, listener: (e: TaskEvent) => void): () => void {
    this.events.on(id, listener);
    return () => this.events.off(id, listener);
  }

  /** Resolves with the final task when a task running here ends (for the CLI and tests). */
  async whenDone(id: string): Promise<Task | null> {
    const run = this.running.get(id);
    return run ? run.done : this.get(id);
  }
}
