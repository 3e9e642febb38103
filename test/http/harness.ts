import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { AuditLog } from '../../server/dataprotect/audit.js';
import type { HostAuthenticator } from '../../server/dataprotect/auth.js';
import type { Principal } from '../../server/dataprotect/principal.js';
import type { BackupRunner, GenerationService, GlobalRestoreService, RehearsalService, RestoreService } from '../../server/dataprotect/services.js';
import { ProtectionStatus } from '../../server/dataprotect/protection-status.js';
import { RepositoryChecks } from '../../server/dataprotect/repository-check.js';
import { ProtectionSummaries } from '../../server/dataprotect/summary.js';
import { TaskOutcomes } from '../../server/dataprotect/task-outcomes.js';
import { SettingsService, type SettingsDefaults } from '../../server/dataprotect/settings.js';
import {
  UnavailableBackupRunner,
  UnavailableGenerationService,
  UnavailableGlobalRestoreService,
  UnavailableRehearsalService,
  UnavailableRestoreService,
} from '../../server/dataprotect/unavailable.js';
import { bluemindTaskApi, dataProtectApi } from '../../server/http/api.js';
import { BLUEMIND_TASKS_MOUNT } from '../../server/http/bluemind.js';
import { serverLogOptions, type LogDestination } from '../../server/http/logging.js';
import { BlueMindNumbers } from '../../server/store/bluemind-numbers.js';
import type { ApiDeps } from '../../server/http/deps.js';
import { TaskRegistry } from '../../server/jobs/task-registry.js';
import { AuditStore } from '../../server/store/audit-store.js';
import { createPool, type Pool } from '../../server/pg/client.js';
import { dropDatabase, ensureDatabase } from '../../server/pg/databases.js';
import { migrate } from '../../server/store/migrations.js';
import { SettingsStore } from '../../server/store/settings-store.js';
import { TaskStore } from '../../server/store/task-store.js';

export const PG_BASE = process.env.DP_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432';

/** A caller of a domain; roles are held in that domain (in every domain from global.virt). */
function principal(name: string, domainUid: string, extra: Partial<Principal>): Principal {
  return {
    uid: `uid-${name}-${domainUid}`,
    login: `${name}@${domainUid}`,
    displayName: name,
    email: `${name}@${domainUid}`,
    domainUid,
    globalAdmin: false,
    roles: [],
    restoreOrgUnits: [],
    ...extra,
  };
}

/** API keys of the test callers, one per role situation. */
export const KEYS = {
  admin: 'key-admin',
  /** manageDataProtect in the global domain: installation-wide. */
  dataprotect: 'key-dataprotect',
  restore: 'key-restore',
  ouRestore: 'key-ou-restore',
  noRole: 'key-no-role',
  /** manageRestore of acme.lan only. */
  acmeRestore: 'key-acme-restore',
  /** manageDataProtect of globex.lan only. */
  globexDataProtect: 'key-globex-dataprotect',
} as const;

export const PRINCIPALS: Record<string, Principal> = {
  [KEYS.admin]: principal('admin0', 'global.virt', { globalAdmin: true }),
  [KEYS.dataprotect]: principal('dpadmin', 'global.virt', { roles: ['manageDataProtect'] }),
  [KEYS.restore]: principal('restorer', 'example.test', { roles: ['manageRestore'] }),
  [KEYS.ouRestore]: principal('ourestorer', 'example.test', { restoreOrgUnits: ['ou-sales'] }),
  [KEYS.noRole]: principal('user', 'example.test', {}),
  [KEYS.acmeRestore]: principal('restorer', 'acme.lan', { roles: ['manageRestore'] }),
  [KEYS.globexDataProtect]: principal('dpadmin', 'globex.lan', { roles: ['manageDataProtect'] }),
};

export const testAuth: HostAuthenticator = {
  async authenticate(key) {
    return PRINCIPALS[key] ?? null;
  },
};

export interface TestApi {
  app: FastifyInstance;
  pool: Pool;
  deps: ApiDeps;
  close(): Promise<void>;
}

export interface TestApiOptions {
  /** Where a repository may be saved in these tests (the default is never checked, only a saved one). */
  settingsDefaults?: Partial<SettingsDefaults>;
  generations?: GenerationService;
  backups?: BackupRunner;
  restores?: RestoreService;
  globalRestore?: GlobalRestoreService;
  /** Where the server's log goes (at info level); without it, no log unless DP_TEST_LOG=1. */
  log?: LogDestination;
  rehearsals?: RehearsalService;
}

/** A fresh database (dp_test_<random>, dropped on close) and the API on it, responses validated. */
export async function startTestApi(o: TestApiOptions = {}): Promise<TestApi> {
  const url = `${PG_BASE}/dp_test_${randomBytes(6).toString('hex')}`;
  await ensureDatabase(url);
  const pool = createPool(url, 5);
  await migrate(pool);
  const audit = new AuditLog(new AuditStore(pool));
  const filesDir = mkdtempSync(path.join(tmpdir(), 'dp-task-files-'));
  const tasks = new TaskRegistry(new TaskStore(pool), `test:${process.pid}`, filesDir);
  await tasks.open();
  const settings = new SettingsService(new SettingsStore(pool), audit, { repositoryLocation: '/var/backups/bluemind/dp', ...o.settingsDefaults });
  const deps: ApiDeps = {
    auth: testAuth,
    audit,
    tasks,
    settings,
    rehearsals: o.rehearsals ?? new UnavailableRehearsalService(),
    checks: new RepositoryChecks(tasks, settings, audit),
    summary: new ProtectionSummaries(new ProtectionStatus(settings), settings, tasks, new TaskOutcomes(tasks)),
    generations: o.generations ?? new UnavailableGenerationService(),
    backups: o.backups ?? new UnavailableBackupRunner(),
    restores: o.restores ?? new UnavailableRestoreService(),
    globalRestore: o.globalRestore ?? new UnavailableGlobalRestoreService(),
    numbers: new BlueMindNumbers(pool),
  };
  const app = Fastify(serverLogOptions(o.log || process.env.DP_TEST_LOG === '1' ? { DP_LOG_LEVEL: process.env.DP_LOG_LEVEL } : { DP_LOG: '0' }, o.log));
  await app.register(dataProtectApi, { prefix: '/api/dataprotect', deps, validateResponses: true });
  await app.register(bluemindTaskApi, { prefix: BLUEMIND_TASKS_MOUNT, deps, validateResponses: true });
  await app.ready();
  return {
    app,
    pool,
    deps,
    async close() {
      await app.close();
      await tasks.close();
      await pool.end();
      rmSync(filesDir, { recursive: true, force: true });
      await dropDatabase(url).catch((err: Error) => {
        // A stuck backend elsewhere in the cluster can block DROP DATABASE; leave the database rather than hang.
        console.warn(`could not drop ${url}: ${err.message}`);
      });
    },
  };
}
