import 'reflect-metadata';
import { existsSync, readFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { container as rootContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe';
import { AuditLog } from '../server/dataprotect/audit.js';
import { HOST_AUTHENTICATOR, type HostAuthenticator } from '../server/dataprotect/auth.js';
import { GenerationCache } from '../server/dataprotect/generation/cache.js';
import { RepositoryBackups } from '../server/dataprotect/generation/runner.js';
import { BACKUP_CONFIG, HOST_PORT, OWN_PARTS, PART_AGENTS } from '../server/dataprotect/generation/tokens.js';
import { agentsFromEnvironment } from '../server/agent/config.js';
import { backupProcess, type BackupProcess, type BackupProcessCommand } from '../server/agent/local.js';
import type { PartAgents } from '../server/dataprotect/generation/part-agents.js';
import { GlobalRestores, RECOVERY_INSTALLATION } from '../server/dataprotect/global-restore/service.js';
import { REHEARSAL_DIR, Rehearsals } from '../server/dataprotect/global-restore/rehearsals.js';
import { ProtectionStatus } from '../server/dataprotect/protection-status.js';
import { RepositoryChecks } from '../server/dataprotect/repository-check.js';
import { ProtectionSummaries } from '../server/dataprotect/summary.js';
import type { Mailer } from '../server/dataprotect/restore/mailer.js';
import { EntityRestores, RESTORE_BACKEND } from '../server/dataprotect/restore/service.js';
import { settingsBackend } from '../server/dataprotect/restore/settings-backend.js';
import {
  BACKUP_RUNNER,
  GENERATION_SERVICE,
  GLOBAL_RESTORE_SERVICE,
  REHEARSAL_SERVICE,
  REPOSITORY_CHECK_SERVICE,
  RESTORE_SERVICE,
  SCHEDULE_VIEW,
  SUMMARY_SERVICE,
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
  UnavailableRehearsalService,
  UnavailableRestoreService,
} from '../server/dataprotect/unavailable.js';
import type { InstallationPort } from '../server/host/installation.js';
import type { HostPort } from '../server/host/port.js';
import { bluemindTaskApi, dataProtectApi } from '../server/http/api.js';
import { BLUEMIND_TASKS_MOUNT } from '../server/http/bluemind.js';
import { BlueMindNumbers } from '../server/store/bluemind-numbers.js';
import { registerMetrics } from '../server/http/metrics.js';
import { DataProtectMetrics } from '../server/dataprotect/metrics.js';
import { alertConfigFromEnv, alertIntervalMs } from '../server/dataprotect/alerts/config.js';
import { ALERT_CONFIG, AlertMonitor } from '../server/dataprotect/alerts/monitor.js';
import { ClusterCoordinator } from '../server/jobs/cluster.js';
import { BackupScheduler, RehearsalScheduler, type SchedulerLog } from '../server/jobs/scheduler.js';
import { RecoveryPointScheduler } from '../server/jobs/recovery-point-scheduler.js';
import { TaskRegistry } from '../server/jobs/task-registry.js';
import { NODE_ID, TASK_FILES_DIR } from '../server/jobs/tokens.js';
import { createPool, type Pool } from '../server/pg/client.js';
import { ensureDatabase } from '../server/pg/databases.js';
import { AuditStore } from '../server/store/audit-store.js';
import { migrate } from '../server/store/migrations.js';
import { SettingsStore } from '../server/store/settings-store.js';
import { TaskStore } from '../server/store/task-store.js';
import { POOL } from '../server/store/tokens.js';

// The server entry, and the composition root of the plugin inside a host: it builds the services, registers the
// API into the host's fastify instance under the manifest's mount, and starts the scheduler. Every token of the
// domain is registered here and nowhere else.

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
  /** Where restore rehearsals make their scratch folders; default DP_REHEARSAL_DIR, else the system's temporary folder. */
  rehearsalDir?: string;
  nodeId?: string;
  log?: SchedulerLog;
  /** false: the host's core serves /api/tasks itself, so BlueMind's task API is not registered there. */
  bluemindTaskApi?: boolean;
}

/** The installation the plugin protects, as the host provides it. */
export interface ProtectedInstallation {
  /** Its servers, directory, data locations and the writers restores put data back with. */
  port: HostPort;
  /** The host's product version, recorded in each generation (BlueMind's version). */
  productVersion: string;
  /** The SMTP relay send.* exports go through; null: the send.* operations are not offered. */
  mailer: Mailer | null;
  /** What a global restore needs to rebuild it (state, mail server resync, addresses); absent: no global restore. */
  recovery?: InstallationPort;
  /**
   * How to start the backup process over this installation (`bm-dataprotect agent --local` for the reference
   * host): the parts of a backup run there, at low CPU and I/O priority (DP_BACKUP_NICE, DP_BACKUP_IO), and the
   * API keeps its event loop. Absent: they run in this process.
   */
  backupProcess?: BackupProcessCommand;
}

/**
 * What the plugin serves beyond settings, tasks and audit. With an installation, backups, generations and
 * single-entity restores run over it; a service given here replaces the built one (a console's demonstration
 * data, a test's fake). What is neither answers 501 (unavailable.ts); so does the global restore without the installation's recovery port.
 */
export interface ServerServices {
  installation?: ProtectedInstallation;
  generations?: (c: DependencyContainer) => GenerationService;
  backups?: (c: DependencyContainer) => BackupRunner;
  restores?: (c: DependencyContainer) => RestoreService;
}

export interface ServerRegistration {
  manifest: PluginManifest;
  apiMount: string;
  /** operationIds of the routes registered. */
  operations: string[];
  scheduler: 'started' | 'not started: no installation to back up';
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
  c.register(HOST_AUTHENTICATOR, { useValue: host.auth });
  c.registerSingleton(TaskStore);
  c.registerSingleton(AuditStore);
  c.registerSingleton(SettingsStore);
  c.registerSingleton(TaskRegistry);
  c.registerSingleton(ClusterCoordinator);
  c.registerSingleton(AuditLog);
  c.registerSingleton(SettingsService);
  c.registerSingleton(BlueMindNumbers);
  c.registerSingleton(ProtectionStatus);
  c.register(REHEARSAL_DIR, { useValue: host.rehearsalDir ?? process.env.DP_REHEARSAL_DIR ?? path.join(tmpdir(), 'bm-dataprotect-rehearsals') });
  // The schedulers start once the API is up; until then (and without an installation) nothing is scheduled.
  const schedules: { backup: BackupScheduler | null; rehearsal: RehearsalScheduler | null } = { backup: null, rehearsal: null };
  c.register(SCHEDULE_VIEW, { useValue: { nextBackup: () => schedules.backup?.nextRun() ?? null, nextRehearsal: () => schedules.rehearsal?.nextRun() ?? null } });
  c.registerSingleton(SUMMARY_SERVICE, ProtectionSummaries);
  c.registerSingleton(REPOSITORY_CHECK_SERVICE, RepositoryChecks);
  const log = host.log ?? { info: (m: string) => host.fastify.log.info(m), error: (m: string) => host.fastify.log.error(m) };
  const own = registerDomainServices(c, services, log);

  const tasks = c.resolve(TaskRegistry);
  await tasks.open();
  const settings = c.resolve(SettingsService);
  const deps = {
    auth: c.resolve(HOST_AUTHENTICATOR),
    settings,
    audit: c.resolve(AuditLog),
    tasks,
    generations: c.resolve(GENERATION_SERVICE),
    backups: c.resolve(BACKUP_RUNNER),
    restores: c.resolve(RESTORE_SERVICE),
    globalRestore: c.resolve(GLOBAL_RESTORE_SERVICE),
    numbers: c.resolve(BlueMindNumbers),
    rehearsals: c.resolve(REHEARSAL_SERVICE),
    checks: c.resolve(REPOSITORY_CHECK_SERVICE),
    summary: c.resolve(SUMMARY_SERVICE),
  };

  const operations: string[] = [];
  const apiMount = manifest.server.api.mount;
  const validateResponses = process.env.DP_VALIDATE_RESPONSES === '1';
  // The API under the manifest's mount, and BlueMind's task API where BlueMind has it (the tasks its calls hand back).
  const apis: [string, typeof dataProtectApi][] = [[apiMount, dataProtectApi]];
  if (host.bluemindTaskApi !== false) apis.push([BLUEMIND_TASKS_MOUNT, bluemindTaskApi]);
  for (const [mount, api] of apis) {
    await host.fastify.register(
      async (scope) => {
        scope.addHook('onRoute', (route) => {
          const id = (route.schema as { operationId?: string } | undefined)?.operationId;
          // fastify adds a HEAD route beside each GET: count each operation once.
          if (id && route.method !== 'HEAD') operations.push(id);
        });
        await scope.register(api, { deps, validateResponses });
      },
      { prefix: mount },
    );
  }

  const metrics = await registerMetrics(host.fastify, { auth: host.auth, metrics: c.resolve(DataProtectMetrics), listen: process.env.DP_METRICS_LISTEN });

  let scheduler: BackupScheduler | null = null;
  let rehearsals: RehearsalScheduler | null = null;
  let recoveryPoints: RecoveryPointScheduler | null = null;
  let alerts: AlertMonitor | null = null;
  if (services.installation || services.backups) {
    scheduler = new BackupScheduler(settings, deps.backups, c.resolve(ClusterCoordinator), log);
    await scheduler.start();
    schedules.backup = scheduler;
    const backups = deps.backups;
    recoveryPoints = new RecoveryPointScheduler(
      settings,
      { startRecoveryPoint: (by) => backups.startRecoveryPoint(by), backupRunning: async () => (await tasks.findRunning('backup')) !== null },
      c.resolve(ClusterCoordinator),
      log,
    );
    await recoveryPoints.start();
    if (services.installation?.recovery) {
      rehearsals = new RehearsalScheduler(settings, deps.rehearsals, c.resolve(ClusterCoordinator), log);
      await rehearsals.start();
      schedules.rehearsal = rehearsals;
    }
    c.register(ALERT_CONFIG, { useValue: alertConfigFromEnv(process.env, log) });
    c.registerSingleton(AlertMonitor);
    alerts = c.resolve(AlertMonitor);
    alerts.start(alertIntervalMs(process.env));
  }

  return {
    manifest,
    apiMount,
    operations,
    scheduler: scheduler ? 'started' : 'not started: no installation to back up',
    container: c,
    async close() {
      await scheduler?.stop();
      await rehearsals?.stop();
      await recoveryPoints?.stop();
      await alerts?.stop();
      await metrics.close();
      await tasks.close();
      await own?.close();
      await pool.end();
    },
  };
}

/** Each server's node agent, else the backup process. */
function withOwn(agents: PartAgents | undefined, own: BackupProcess | null): PartAgents | undefined {
  return own ? (s) => agents?.(s) ?? own.agents(s) : agents;
}

/** The domain services over the installation, each replaced by the one given, else by its 501 stand-in. */
function registerDomainServices(c: DependencyContainer, services: ServerServices, log: SchedulerLog): BackupProcess | null {
  const inst = services.installation;
  let own: BackupProcess | null = null;
  if (inst) {
    c.register(HOST_PORT, { useValue: inst.port });
    c.register(BACKUP_CONFIG, { useValue: { productVersion: inst.productVersion } });
    // Multi-server installations: DP_AGENTS names each server's node agent; unset, every part is backed up here.
    const agents = agentsFromEnvironment(process.env);
    if (agents) c.register(PART_AGENTS, { useValue: agents });
    if (inst.backupProcess) {
      own = backupProcess(inst.backupProcess, { log: (l) => log.info(l) });
      c.register(OWN_PARTS, { useValue: own.agents });
    }
    c.registerSingleton(GenerationCache);
    // One RepositoryBackups serves both the runner and the generations.
    c.registerSingleton(RepositoryBackups);
    c.register(GENERATION_SERVICE, { useToken: RepositoryBackups });
    c.register(BACKUP_RUNNER, { useToken: RepositoryBackups });
    c.register(RESTORE_BACKEND, {
      // A restore's disk work (a mailbox, a file hosting) runs on the server's agent, else in the backup process.
      useFactory: instanceCachingFactory((d) => settingsBackend(d.resolve(SettingsService), d.resolve(HOST_PORT), inst.mailer, withOwn(agents, own))),
    });
    c.registerSingleton(RESTORE_SERVICE, EntityRestores);
  } else {
    c.register(GENERATION_SERVICE, { useValue: new UnavailableGenerationService() });
    c.register(BACKUP_RUNNER, { useValue: new UnavailableBackupRunner() });
    c.register(RESTORE_SERVICE, { useValue: new UnavailableRestoreService() });
  }
  if (services.generations) c.register(GENERATION_SERVICE, { useFactory: instanceCachingFactory(services.generations) });
  if (services.backups) c.register(BACKUP_RUNNER, { useFactory: instanceCachingFactory(services.backups) });
  if (services.restores) c.register(RESTORE_SERVICE, { useFactory: instanceCachingFactory(services.restores) });
  if (inst?.recovery) {
    c.register(RECOVERY_INSTALLATION, { useValue: inst.recovery });
    c.registerSingleton(GLOBAL_RESTORE_SERVICE, GlobalRestores);
    c.registerSingleton(REHEARSAL_SERVICE, Rehearsals);
  } else {
    c.register(GLOBAL_RESTORE_SERVICE, { useValue: new UnavailableGlobalRestoreService() });
    c.register(REHEARSAL_SERVICE, { useValue: new UnavailableRehearsalService() });
  }
  return own;
}
