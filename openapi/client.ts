import ky, { HTTPError, type KyInstance, type Options as KyOptions } from 'ky';
import type { components, operations } from './generated/dataprotect.js';

// The typed client of /api/dataprotect (package entry `bm-dataprotect/client`), for Node scripts and the browser.
// Types come from openapi/generated; nothing here is written by hand that the contract already says.

export type Schemas = components['schemas'];
export type Settings = Schemas['Settings'];
export type SettingsUpdate = Schemas['SettingsUpdate'];
export type Generation = Schemas['Generation'];
export type Part = Schemas['Part'];
/** A global restore's choices beyond the generation: `serverMap` (generation server → server here), `wipe`. */
export type GlobalRestoreOptions = Pick<Schemas['GlobalRestoreRequest'], 'serverMap' | 'wipe'>;
export type Task = Schemas['Task'];
export type TaskStarted = Schemas['TaskStarted'];
export type TaskLogEntry = Schemas['TaskLogEntry'];
export type Problem = Schemas['Problem'];
export type Session = Schemas['Session'];
export type RestoreOperation = Schemas['RestoreOperation'];
export type RestoreRequest = Schemas['RestoreRequest'];
export type Restorable = Schemas['Restorable'];
export type AuditEvent = Schemas['AuditEvent'];
export type ProtectionSummary = Schemas['ProtectionSummary'];
export type RepositoryCheckRequest = Schemas['RepositoryCheckRequest'];

type QueryOf<K extends keyof operations> = operations[K]['parameters'] extends { query?: infer Q } ? NonNullable<Q> : never;

/** A task's server-sent event. */
export type TaskEvent = { type: 'task'; task: Task } | { type: 'log'; entry: TaskLogEntry } | { type: 'end'; task: Task };

/** An answer that is not a success: the RFC 7807 problem the server sent (or one made up from the status). */
export class DataProtectApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail ?? problem.title);
    this.name = 'DataProtectApiError';
  }
  get status(): number {
    return this.problem.status;
  }
  /** The messages per field of a 400 (`body.retentionDays` → `retentionDays`). */
  fieldErrors(prefix = 'body.'): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.problem.errors ?? []) {
      if (e.field.startsWith(prefix)) out[e.field.slice(prefix.length).split('.')[0]] ??= e.message;
    }
    return out;
  }
}

export interface ClientOptions {
  /** Where the API is mounted: `http://host:8080/api/dataprotect`, or `/api/dataprotect` in a browser page. */
  baseUrl: string;
  /** The X-BM-ApiKey to send: a string, or a function read at each request (a console whose session changes). */
  apiKey?: string | (() => string | null | undefined);
  fetch?: typeof fetch;
  /** Milliseconds; default 30 s. */
  timeout?: number;
}

type Params = Record<string, string | number | boolean | undefined>;

function searchParams(q: Params | undefined): Record<string, string | number | boolean> | undefined {
  if (!q) return undefined;
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(q)) if (v !== undefined) out[k] = v;
  return out;
}

async function toApiError(err: unknown): Promise<unknown> {
  if (!(err instanceof HTTPError)) return err;
  const status = err.response.status;
  let body: unknown = null;
  try {
    body = await err.response.clone().json();
  } catch {
    // not JSON: a proxy's error page
  }
  const p = body as Partial<Problem> | null;
  if (p && typeof p.status === 'number' && typeof p.title === 'string') return new DataProtectApiError(p as Problem);
  return new DataProtectApiError({ type: 'about:blank', title: err.response.statusText || 'HTTP error', status, detail: `HTTP ${status}` });
}

export class DataProtectClient {
  private readonly http: KyInstance;

  constructor(private readonly options: ClientOptions) {
    const base = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
    this.http = ky.create({
      prefixUrl: base,
      timeout: options.timeout ?? 30_000,
      retry: { limit: 1, methods: ['get'], statusCodes: [502, 503, 504] },
      ...(options.fetch ? { fetch: options.fetch } : {}),
      hooks: {
        beforeRequest: [
          (request) => {
            const key = typeof options.apiKey === 'function' ? options.apiKey() : options.apiKey;
            if (key) request.headers.set('X-BM-ApiKey', key);
          },
        ],
      },
    });
  }

  private async call<T>(method: 'get' | 'post' | 'put' | 'delete', path: string, o: KyOptions & { query?: Params } = {}): Promise<T> {
    const { query, ...rest } = o;
    try {
      const res = await this.http(path, { method, searchParams: searchParams(query), ...rest });
      return (await res.json()) as T;
    } catch (err) {
      throw await toApiError(err);
    }
  }

  getSession(signal?: AbortSignal): Promise<Session> {
    return this.call('get', 'session', { signal });
  }

  // Generations and backups
  /** Newest first. (`GET generations` itself answers BlueMind's shape, for BlueMind's scripts.) */
  listGenerations(signal?: AbortSignal): Promise<Generation[]> {
    return this.call('get', 'generations/_detailed', { signal });
  }
  getGeneration(id: string, signal?: AbortSignal): Promise<Generation> {
    return this.call('get', `generations/${encodeURIComponent(id)}`, { signal });
  }
  forgetGeneration(id: string): Promise<TaskStarted> {
    return this.call('delete', `generations/${encodeURIComponent(id)}`);
  }
  syncGenerations(): Promise<TaskStarted> {
    return this.call('post', 'generations/_sync');
  }
  /** Kept whatever the retention policy; answers the generation. */
  protectGeneration(id: string): Promise<Generation> {
    return this.call('post', `generations/${encodeURIComponent(id)}/_protect`);
  }
  unprotectGeneration(id: string): Promise<Generation> {
    return this.call('post', `generations/${encodeURIComponent(id)}/_unprotect`);
  }
  startBackup(): Promise<TaskStarted> {
    return this.call('post', 'backups');
  }
  applyRetention(): Promise<TaskStarted> {
    return this.call('post', 'retention/_apply');
  }
  /** Am I protected? What the navigator shows above the generations. */
  getProtectionSummary(signal?: AbortSignal): Promise<ProtectionSummary> {
    return this.call('get', 'summary', { signal });
  }
  /** Rehearses a restore of the newest valid generation in a sandbox (a task of kind rehearsal). */
  startRehearsal(): Promise<TaskStarted> {
    return this.call('post', 'rehearsals');
  }
  /** Checks the repository: structure, a sample of the data, or all of it (a task of kind check). */
  checkRepository(request: RepositoryCheckRequest): Promise<TaskStarted> {
    return this.call('post', 'repository/_check', { json: request });
  }

  // Settings
  getSettings(signal?: AbortSignal): Promise<Settings> {
    return this.call('get', 'settings', { signal });
  }
  updateSettings(settings: SettingsUpdate): Promise<Settings> {
    return this.call('put', 'settings', { json: settings });
  }

  // Restore
  getRestoreCapabilities(generationId?: string, signal?: AbortSignal): Promise<RestoreOperation[]> {
    return this.call('get', 'restore/capabilities', { query: { generationId }, signal });
  }
  listEntities(generationId: string, query: QueryOf<'listGenerationEntities'> = {}, signal?: AbortSignal): Promise<Schemas['RestorablePage']> {
    return this.call('get', `generations/${encodeURIComponent(generationId)}/entities`, { query, signal });
  }
  listMailFolders(generationId: string, entityUid: string, signal?: AbortSignal): Promise<Schemas['MailFolder'][]> {
    return this.call('get', `generations/${encodeURIComponent(generationId)}/entities/${encodeURIComponent(entityUid)}/mail/folders`, { signal });
  }
  listMailMessages(
    generationId: string,
    entityUid: string,
    query: QueryOf<'listMailMessages'>,
    signal?: AbortSignal,
  ): Promise<Schemas['MailMessagePage']> {
    return this.call('get', `generations/${encodeURIComponent(generationId)}/entities/${encodeURIComponent(entityUid)}/mail/messages`, {
      query,
      signal,
    });
  }
  /** An entity's calendars, address books, task lists, notes and web-app data as a generation saved them. */
  listEntityContainers(generationId: string, entityUid: string, signal?: AbortSignal): Promise<Schemas['SavedContainer'][]> {
    return this.call('get', `generations/${encodeURIComponent(generationId)}/entities/${encodeURIComponent(entityUid)}/containers`, { signal });
  }
  listContainerItems(
    generationId: string,
    entityUid: string,
    containerUid: string,
    query: QueryOf<'listContainerItems'> = {},
    signal?: AbortSignal,
  ): Promise<Schemas['SavedItemPage']> {
    return this.call(
      'get',
      `generations/${encodeURIComponent(generationId)}/entities/${encodeURIComponent(entityUid)}/containers/${encodeURIComponent(containerUid)}/items`,
      { query, signal },
    );
  }
  startRestore(request: RestoreRequest): Promise<TaskStarted> {
    return this.call('post', 'restores', { json: request });
  }

  // Global restore
  discoverRepository(repositoryLocation: string): Promise<Generation[]> {
    return this.call('post', 'global-restore/discover', { json: { repositoryLocation } });
  }
  checkGlobalRestore(repositoryLocation: string, generationId: string, options: GlobalRestoreOptions = {}): Promise<Schemas['PrerequisiteReport']> {
    return this.call('post', 'global-restore/check', { json: { repositoryLocation, generationId, ...options } });
  }
  startGlobalRestore(repositoryLocation: string, generationId: string, options: GlobalRestoreOptions = {}): Promise<TaskStarted> {
    return this.call('post', 'global-restore', { json: { repositoryLocation, generationId, ...options } });
  }

  // Tasks
  listTasks(query: QueryOf<'listTasks'> = {}, signal?: AbortSignal): Promise<Schemas['TaskPage']> {
    return this.call('get', 'tasks', { query, signal });
  }
  getTask(id: string, signal?: AbortSignal): Promise<Task> {
    return this.call('get', `tasks/${encodeURIComponent(id)}`, { signal });
  }
  getTaskLog(id: string, after = 0, signal?: AbortSignal): Promise<TaskLogEntry[]> {
    return this.call('get', `tasks/${encodeURIComponent(id)}/log`, { query: { after }, signal });
  }
  listTaskFiles(id: string, signal?: AbortSignal): Promise<Schemas['TaskFile'][]> {
    return this.call('get', `tasks/${encodeURIComponent(id)}/files`, { signal });
  }
  /** The URL of a task's file (for a link in the console; send the X-BM-ApiKey header when fetching it). */
  taskFileUrl(id: string, name: string): string {
    return `${this.options.baseUrl.replace(/\/$/, '')}/tasks/${encodeURIComponent(id)}/files/${encodeURIComponent(name)}`;
  }
  /** Downloads a file a task produced. */
  async downloadTaskFile(id: string, name: string, signal?: AbortSignal): Promise<Blob> {
    try {
      return await this.http(`tasks/${encodeURIComponent(id)}/files/${encodeURIComponent(name)}`, { signal }).blob();
    } catch (err) {
      throw await toApiError(err);
    }
  }
  cancelTask(id: string): Promise<Task> {
    return this.call('post', `tasks/${encodeURIComponent(id)}/cancel`);
  }

  /**
   * The task's events until it ends (fetch-based server-sent events, so that the API key travels in the header,
   * which EventSource cannot do). Reconnects with Last-Event-ID if the connection drops before the end.
   */
  async *taskEvents(id: string, signal?: AbortSignal): AsyncGenerator<TaskEvent> {
    let lastId: string | undefined;
    for (let attempt = 0; attempt < 20; attempt++) {
      let res: Response;
      try {
        res = await this.http(`tasks/${encodeURIComponent(id)}/events`, {
          timeout: false,
          retry: 0,
          signal,
          headers: lastId ? { 'Last-Event-ID': lastId } : {},
        });
      } catch (err) {
        throw await toApiError(err);
      }
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
              else if (line.startsWith('id: ')) lastId = line.slice(4);
            }
            if (!data) continue;
            const parsed = JSON.parse(data);
            if (event === 'log') yield { type: 'log', entry: parsed as TaskLogEntry };
            else if (event === 'task') yield { type: 'task', task: parsed as Task };
            else if (event === 'end') {
              yield { type: 'end', task: parsed as Task };
              return;
            }
          }
        }
      } catch (err) {
        if (signal?.aborted) throw err;
      } finally {
        reader.releaseLock();
      }
      if (signal?.aborted) return;
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
    }
    throw new Error(`lost the event stream of task ${id}`);
  }

  /** Follows a task to its end and returns the final task. */
  async waitForTask(id: string, onEvent?: (e: TaskEvent) => void, signal?: AbortSignal): Promise<Task> {
    for await (const e of this.taskEvents(id, signal)) {
      onEvent?.(e);
      if (e.type === 'end') return e.task;
    }
    return this.getTask(id);
  }

  // Audit
  listAuditEvents(query: QueryOf<'listAuditEvents'> = {}, signal?: AbortSignal): Promise<Schemas['AuditPage']> {
    return this.call('get', 'audit', { query, signal });
  }

  get baseUrl(): string {
    return this.options.baseUrl;
  }
}

export function createClient(options: ClientOptions): DataProtectClient {
  return new DataProtectClient(options);
}
