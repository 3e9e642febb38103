// A task as every node reads it from the task history: long work (a backup run, a restore, forgetting a
// generation) with progress, a log and cancellation.

export type TaskKind =
  | 'backup' | 'restore' | 'forget' | 'sync' | 'retention' | 'global-restore' | 'check' | 'content' | 'rehearsal' | 'copy' | 'recovery-point';

/** INTERRUPTED: the process running it stopped before it ended (its heartbeat went stale). */
export type TaskStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED' | 'INTERRUPTED';

export type LogLevel = 'info' | 'warn' | 'error';

/**
 * The product's own words as a message key of the console and its parameters, kept beside the English text so
 * that the console can say them in its language. Raw tool output has none.
 */
export interface Phrase {
  key: string;
  params: Record<string, string | number>;
}

export interface TaskProgress {
  done: number;
  /** null while unknown */
  total: number | null;
  unit?: string | null;
  /** Bytes processed so far (read by a backup, written by a restore). */
  bytes?: number | null;
  message: string | null;
}

export interface TaskFile {
  name: string;
  size: number;
  contentType: string;
  createdAt: string;
}

export interface Task {
  id: string;
  kind: TaskKind;
  title: string;
  /** The title in the console's words (null for tasks recorded before it existed). */
  titlePhrase: Phrase | null;
  status: TaskStatus;
  progress: TaskProgress;
  createdAt: string;
  endedAt: string | null;
  /** The login that started it, or 'scheduler'. */
  actor: string;
  actorUid: string | null;
  target: string | null;
  error: string | null;
  /** The error explained, with what to do (null when it is not one we can explain). */
  errorPhrase: Phrase | null;
  result: Record<string, unknown> | null;
  cancelRequested: boolean;
}

export interface TaskLogEntry {
  seq: number;
  time: string;
  level: LogLevel;
  message: string;
  phrase?: Phrase | null;
}
