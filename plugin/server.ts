import 'reflect-metadata';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { AuditLog } from '../server/dataprotect/audit.js';
import type { HostAuthenticator } from '../server/dataprotect/auth.js';
import {
  BACKUP_RUNNER,
  GENERATION_SERVICE,
  GLOBAL_RESTORE_SERVICE,
  RESTORE_SERVICE,
  type BackupRunner,
  type GenerationService,
  type GlobalRestoreService,
  type RestoreService,
} from '../server/dataprotect/services.js';
import { SETTINGS_DEFAULTS, SettingsService } from '../server/dataprotect/settings.js';
import {
  UnavailableBackupRunner,
  UnavailableGenerationService,
  UnavailableGlobalRestoreService,
  UnavailableRestoreService,
} from '../server/dataprotect/unavailable.js';
import { dataProtectApi } from '../server/http/api.js';
import { ClusterCoordinator } from '../server/jobs/cluster.js';
import { BackupScheduler, type SchedulerLog } from '../server/jobs/scheduler.js';
import { TaskRegistry } from '../server/jobs/tasks.js';
import { NODE_ID, TASK_FILES_DIR } from '../server/jobs/tokens.js';
import { createPool, ensureDatabase, type Pool } from '../server/store/db.js';
import { migrate } from '../server/store/migrations.js';
import { POOL } from '../server/store/tokens.js';

// The server entry, and the composition root of the plugin inside a host: it builds the services, registers the
// API into the host's fastify instance under the manifest's mount, and starts the scheduler.

export interface PluginManifest {
  id: string;
  version: string;
  server: { api: { mount: string; specification: string } };
  ui: { pages: { slot: string; tag: string; roles: string[] }[]; components: string[]; context: string[] };
  roles: { id: string; ouScoped: boolean }[];
  [key: string]: unknown;
}

export function readManifest(): PluginManifest {
  const file = ['./manifest.json', '../../plugin/manifest.json']
    .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
    .find((p) => existsSync(p));
  if (!file) throw new Error('plugin/manifest.json not found beside the server entry');
  return JSON.parse(readFileSync(file, 'utf8')) as PluginManifest;
}

export interface ServerHost {
  fastify: FastifyInstance;
  /** The plugin's tables live in this database (created if missing). */
  databaseUrl: string;
  auth: HostAuthenticator;
  /** Default repository location until the administrator sets one. */
  defaultRepositoryLocation: string;
  /** The post-backup action (never settable through the API); default DP_POST_BACKUP_SCRIPT, else BlueMind's. */
  postBackupScript?: string;
  /** Where files made by tasks (exports to download) are kept; shared between nodes. */
  taskFilesDir: string;
  nodeId?: string;
  log?: SchedulerLog;
}

/** Implementations from issues 5 and 6; what is not given answers 501 (unavailable.ts). */
export interface ServerServices {
  generations?: (c: DependencyContainer) => GenerationService;
  backups?: (c: DependencyContainer) => BackupRunner;
  restores?: (c: DependencyContainer) => RestoreService;
  globalRestore?: (c: DependencyContainer) => GlobalRestoreService;
}

export interface ServerRegistration {
  manifest: PluginManifest;
  apiMount: string;
  /** operationIds of the routes registered. */
  operations: string[];
  scheduler: 'started' | 'not started: no backup runner in this build';
  container: DependencyContainer;
  close(): Promise<void>;
}

export async function registerServer(host: ServerHost, services: ServerServices = {}): Promise<ServerRegistration> {
  const manifest = readManifest();
  await ensureDatabase(host.databaseUrl);
  const pool: Pool = createPool(host.databaseUrl);
  await migrate(pool);

  const c = rootContainer.createChildContainer();
  c.register(POOL, { useValue: pool });
  c.register(NODE_ID, { useValue: host.nodeId ?? `${hostname()}:${process.pid}` });
  c.register(TASK_FILES_DIR, { useValue: host.taskFilesDir });
  c.register(SETTINGS_DEFAULTS, { useValue: { repositoryLocation: host.defaultRepositoryLocation, postBackupScript: host.postBackupScript } });
  c.registerSingleton(TaskRegistry);
  c.registerSingleton(ClusterCoordinator);
  c.registerSingleton(AuditLog);
  c.registerSingleton(SettingsService);
  c.register(GENERATION_SERVICE, { useValue: services.generations?.(c) ?? new UnavailableGenerationService() });
  c.register(BACKUP_RUNNER, { useValue: services.backups?.(c) ?? new UnavailableBackupRunner() });
  c.register(RESTORE_SERVICE, { useValue: services.restores?.(c) ?? new UnavailableRestoreService() });
  c.register(GLOBAL_RESTORE_SERVICE, { useValue: services.globalRestore?.(c) ?? new UnavailableGlobalRestoreService() });

  const tasks = c.resolve(TaskRegistry);
  await tasks.open();
  const settings = c.resolve(SettingsService);
  const deps = {
    auth: host.auth,
    settings,
    audit: c.resolve(AuditLog),
    tasks,
    generations: c.resolve(GENERATION_SERVICE),
    backups: c.resolve(BACKUP_RUNNER),
    restores: c.resolve(RESTORE_SERVICE),
    globalRestore: c.resolve(GLOBAL_RESTORE_SERVICE),
  };

  const operations: string[] = [];
  const apiMount = manifest.server.api.mount;
  await host.fastify.register(
    async (scope) => {
      scope.addHook('onRoute', (route) => {
        const id = (route.schema as { operationId?: string } | undefined)?.operationId;
        // fastify adds a HEAD route beside each GET: count each operation once.
        if (id && route.method !== 'HEAD') operations.push(id);
      });
      await scope.register(dataProtectApi, { deps, validateResponses: process.env.DP_VALIDATE_RESPONSES === '1' });
    },
    { prefix: apiMount },
  );

  let scheduler: BackupScheduler | null = null;
  if (services.backups) {
    const log = host.log ?? { info: (m: string) => host.fastify.log.info(m), error: (m: string) => host.fastify.log.error(m) };
    scheduler = new BackupScheduler(settings, deps.backups, c.resolve(ClusterCoordinator), log);
    await scheduler.start();
  }

  return {
    manifest,
    apiMount,
    operations,
    scheduler: scheduler ? 'started' : 'not started: no backup runner in this build',
    container: c,
    async close() {
      await scheduler?.stop();
      await tasks.close();
      await pool.end();
    },
  };
}
