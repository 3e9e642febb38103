import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { Generation } from '../../server/dataprotect/model.js';
import type { GenerationService } from '../../server/dataprotect/services.js';
import { SPEC_PATH } from '../../server/http/api.js';
import { bluemindBinders } from '../../server/http/bluemind.js';
import { binders } from '../../server/http/handlers.js';
import { KEYS, PRINCIPALS, startTestApi, type TestApi } from './harness.js';

const spec = parse(readFileSync(SPEC_PATH, 'utf8')) as {
  paths: Record<
    string,
    Record<string, { operationId: string; 'x-dp-roles': string[]; 'x-dp-scope'?: string; responses: Record<string, unknown> }>
  >;
};
/** Repository folders these tests may save: a private folder, removed at the end. */
const WORK = mkdtempSync(path.join(tmpdir(), 'dp-contract-'));
const REPOSITORY = path.join(WORK, 'backup');
const TASK_ID = '00000000-0000-4000-8000-000000000000';
const GEN = 'g1';

/** One valid request per operation: roles and 501s are checked with inputs the contract accepts. */
const VALID: Record<string, { method: string; url: string; payload?: unknown; mount?: string }> = {
  getSession: { method: 'GET', url: '/session' },
  listGenerations: { method: 'GET', url: '/generations/_detailed' },
  syncGenerations: { method: 'POST', url: '/generations/_sync' },
  getGeneration: { method: 'GET', url: `/generations/${GEN}` },
  forgetGeneration: { method: 'DELETE', url: `/generations/${GEN}` },
  protectGeneration: { method: 'POST', url: `/generations/${GEN}/_protect` },
  unprotectGeneration: { method: 'POST', url: `/generations/${GEN}/_unprotect` },
  listGenerationEntities: { method: 'GET', url: `/generations/${GEN}/entities?kind=USER&search=ann&limit=20` },
  listMailFolders: { method: 'GET', url: `/generations/${GEN}/entities/u1/mail/folders` },
  listMailMessages: { method: 'GET', url: `/generations/${GEN}/entities/u1/mail/messages?folder=INBOX` },
  listEntityContainers: { method: 'GET', url: `/generations/${GEN}/entities/u1/containers` },
  listContainerItems: { method: 'GET', url: `/generations/${GEN}/entities/u1/containers/calendar:Default:u1/items?missing=true&search=lunch` },
  startBackup: { method: 'POST', url: '/backups' },
  applyRetention: { method: 'POST', url: '/retention/_apply' },
  getProtectionSummary: { method: 'GET', url: '/summary' },
  startRehearsal: { method: 'POST', url: '/rehearsals' },
  startRecoveryPoint: { method: 'POST', url: '/recovery-points' },
  checkRepository: { method: 'POST', url: '/repository/_check', payload: { mode: 'sample', samplePercent: 5 } },
  getSettings: { method: 'GET', url: '/settings' },
  updateSettings: {
    method: 'PUT',
    url: '/settings',
    payload: {
      retentionDays: 10,
      backupEmails: true,
      backupArchivedEmails: false,
      backupTime: '02:30',
      repositoryLocation: REPOSITORY,
      skippedTags: [],
    },
  },
  getRestoreCapabilities: { method: 'GET', url: `/restore/capabilities?generationId=${GEN}` },
  startRestore: {
    method: 'POST',
    url: '/restores',
    payload: { operation: 'subfolder.mailbox', generationId: GEN, entity: { kind: 'USER', uid: 'u1', domainUid: 'd1' } },
  },
  listTasks: { method: 'GET', url: '/tasks' },
  getTask: { method: 'GET', url: `/tasks/${TASK_ID}` },
  getTaskLog: { method: 'GET', url: `/tasks/${TASK_ID}/log` },
  cancelTask: { method: 'POST', url: `/tasks/${TASK_ID}/cancel` },
  listTaskFiles: { method: 'GET', url: `/tasks/${TASK_ID}/files` },
  downloadTaskFile: { method: 'GET', url: `/tasks/${TASK_ID}/files/calendar.ics` },
  streamTaskEvents: { method: 'GET', url: `/tasks/${TASK_ID}/events` },
  discoverRepository: { method: 'POST', url: '/global-restore/discover', payload: { repositoryLocation: '/srv/backup' } },
  checkGlobalRestore: { method: 'POST', url: '/global-restore/check', payload: { repositoryLocation: '/srv/backup', generationId: GEN } },
  startGlobalRestore: { method: 'POST', url: '/global-restore', payload: { repositoryLocation: '/srv/backup', generationId: GEN } },
  listAuditEvents: { method: 'GET', url: '/audit' },
  // BlueMind's IDataProtect and ITask, as BlueMind's scripts call them.
  bmGetAvailableGenerations: { method: 'GET', url: '/generations' },
  bmForget: { method: 'DELETE', url: `/generations?generationId=${GEN}` },
  bmGetContent: { method: 'POST', url: `/_content/${GEN}` },
  bmGetRestoreCapabilities: { method: 'GET', url: '/restore/_capabilities' },
  bmGetRestoreCapabilitiesByTags: { method: 'GET', url: '/restore/_capabilities_by_tags', payload: ['mail/imap'] },
  bmRun: {
    method: 'POST',
    url: '/restore',
    payload: { restoreOperationIdenfitier: 'replace.mailbox', generation: GEN, item: { kind: 'USER', entryUid: 'u1', domainUid: 'd1' } },
  },
  bmGetRetentionPolicy: { method: 'GET', url: '/policy' },
  bmUpdatePolicy: { method: 'POST', url: '/policy', payload: { daily: 9 } },
  bmSyncWithFilesystem: { method: 'POST', url: '/_syncfs' },
  bmInstallFromGeneration: { method: 'POST', url: '/_install', payload: GEN },
  bmSaveAll: { method: 'POST', url: '/_backup' },
  bmTaskStatus: { method: 'GET', url: `/${TASK_ID}`, mount: '/api/tasks' },
  bmTaskLog: { method: 'GET', url: `/${TASK_ID}/_log`, mount: '/api/tasks' },
  bmTaskCurrentLogs: { method: 'GET', url: `/${TASK_ID}/_currentLogs?offset=0`, mount: '/api/tasks' },
};

const operations = Object.entries(spec.paths).flatMap(([, item]) =>
  Object.entries(item)
    .filter(([m]) => ['get', 'put', 'post', 'delete', 'patch'].includes(m))
    .map(([, op]) => op),
);

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
  rmSync(WORK, { recursive: true, force: true });
});

function call(key: string | null, req: { method: string; url: string; payload?: unknown; mount?: string }) {
  return api.app.inject({
    method: req.method as 'GET',
    url: `${req.mount ?? '/api/dataprotect'}${req.url}`,
    headers: { ...(key ? { 'x-bm-apikey': key } : {}), ...(req.payload !== undefined ? { 'content-type': 'application/json' } : {}) },
    // Encoded here: a bare JSON string or number (BlueMind's _install) is a body too.
    ...(req.payload !== undefined ? { payload: JSON.stringify(req.payload) } : {}),
  });
}

describe('the contract and the binders', () => {
  it('binds every operation of the spec, and nothing else', () => {
    const inSpec = operations.map((o) => o.operationId).sort();
    const bound = [...Object.keys(binders(api.deps)), ...Object.keys(bluemindBinders(api.deps)), 'streamTaskEvents', 'downloadTaskFile', 'bmTaskLog'].sort();
    expect(bound).toEqual(inSpec);
    expect(Object.keys(VALID).sort()).toEqual(inSpec);
  });

  it('declares roles on every operation and documents 401 on each', () => {
    for (const op of operations) {
      expect(op['x-dp-roles'], op.operationId).toBeDefined();
      expect(op.responses['401'], op.operationId).toBeDefined();
    }
  });
});

describe('authentication and roles', () => {
  for (const op of operations) {
    it(`${op.operationId}: 401 without a key or with an unknown key`, async () => {
      for (const key of [null, 'not-a-key']) {
        const r = await call(key, VALID[op.operationId]);
        expect(r.statusCode).toBe(401);
        expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(r.json()).toMatchObject({ status: 401, title: 'Authentication required' });
      }
    });
    if (op['x-dp-roles'].includes('any')) continue;
    it(`${op.operationId}: 403 for a user without ${op['x-dp-roles'].join(' or ')}`, async () => {
      const r = await call(KEYS.noRole, VALID[op.operationId]);
      expect(r.statusCode).toBe(403);
      expect(r.json().detail).toContain('lacks the role');
    });
    if (!op['x-dp-roles'].includes('manageRestore')) {
      it(`${op.operationId}: 403 for a restore-only administrator`, async () => {
        const r = await call(KEYS.restore, VALID[op.operationId]);
        expect(r.statusCode).toBe(403);
        const ou = await call(KEYS.ouRestore, VALID[op.operationId]);
        expect(ou.statusCode).toBe(403);
      });
    } else {
      it(`${op.operationId}: allowed to restore administrators, even OU-limited ones`, async () => {
        for (const key of [KEYS.restore, KEYS.ouRestore, KEYS.dataprotect]) {
          const r = await call(key, VALID[op.operationId]);
          expect([401, 403]).not.toContain(r.statusCode);
        }
      });
    }
  }

  for (const op of operations.filter((o) => o['x-dp-scope'] === 'installation')) {
    it(`${op.operationId}: installation-wide, so 403 for a domain's manageDataProtect`, async () => {
      const r = await call(KEYS.globexDataProtect, VALID[op.operationId]);
      expect(r.statusCode).toBe(403);
      expect(r.json().detail).toMatch(/manages globex\.lan only; .*global domain \(global\.virt\)/);
      if (op.operationId === 'updateSettings' || op.operationId === 'bmUpdatePolicy') return; // the global domain's administrator saves below
      const global = await call(KEYS.dataprotect, VALID[op.operationId]);
      expect([401, 403]).not.toContain(global.statusCode);
    });
  }

  it('marks settings, backup runs, forget, sync, retention, checks, rehearsals, global restore and the audit log installation-wide', () => {
    const wide = operations.filter((o) => o['x-dp-scope'] === 'installation').map((o) => o.operationId).sort();
    expect(wide).toEqual([
      'applyRetention', 'bmForget', 'bmGetRetentionPolicy', 'bmInstallFromGeneration', 'bmSaveAll', 'bmSyncWithFilesystem',
      'bmUpdatePolicy', 'checkGlobalRestore', 'checkRepository', 'discoverRepository', 'forgetGeneration', 'getSettings', 'listAuditEvents',
      'protectGeneration', 'startBackup', 'startGlobalRestore', 'startRecoveryPoint', 'startRehearsal', 'syncGenerations', 'unprotectGeneration', 'updateSettings',
    ]);
  });

  it('a domain administrator does not change the installation\'s settings, and nothing is saved', async () => {
    const r = await call(KEYS.globexDataProtect, VALID.updateSettings);
    expect(r.statusCode).toBe(403);
    expect((await call(KEYS.admin, VALID.getSettings)).json().updatedAt).toBeNull();
  });

  it('getSession tells the caller who they are and what they hold', async () => {
    const r = await call(KEYS.ouRestore, VALID.getSession);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ login: PRINCIPALS[KEYS.ouRestore].login, roles: [], restoreOrgUnits: ['ou-sales'], managesInstallation: false });
    expect((await call(KEYS.dataprotect, VALID.getSession)).json()).toMatchObject({ domainUid: 'global.virt', managesInstallation: true });
    expect((await call(KEYS.globexDataProtect, VALID.getSession)).json()).toMatchObject({ domainUid: 'globex.lan', managesInstallation: false });
  });
});

describe('capabilities that do not exist yet answer 501, never invented data', () => {
  const missing: Record<string, string> = {
    listGenerations: 'generations',
    getGeneration: 'generations',
    forgetGeneration: 'generations',
    syncGenerations: 'generations',
    protectGeneration: 'generations',
    unprotectGeneration: 'generations',
    startBackup: 'backup-runner',
    applyRetention: 'backup-runner',
    listGenerationEntities: 'restore',
    listMailFolders: 'restore',
    listMailMessages: 'restore',
    listEntityContainers: 'restore',
    listContainerItems: 'restore',
    getRestoreCapabilities: 'restore',
    startRestore: 'restore',
    discoverRepository: 'global-restore',
    checkGlobalRestore: 'global-restore',
    startGlobalRestore: 'global-restore',
    bmGetAvailableGenerations: 'generations',
    bmForget: 'generations',
    bmSyncWithFilesystem: 'generations',
    bmSaveAll: 'backup-runner',
    bmGetContent: 'restore',
    bmGetRestoreCapabilities: 'restore',
    bmGetRestoreCapabilitiesByTags: 'restore',
    bmRun: 'restore',
    bmInstallFromGeneration: 'global-restore',
    startRehearsal: 'rehearsal',
    startRecoveryPoint: 'backup-runner',
  };
  for (const [op, capability] of Object.entries(missing)) {
    it(`${op} → 501 naming ${capability}`, async () => {
      const r = await call(KEYS.admin, VALID[op]);
      expect(r.statusCode).toBe(501);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      const p = r.json();
      expect(p).toMatchObject({ status: 501, capability, title: 'Not available in this build' });
      expect(p.detail.length).toBeGreaterThan(30);
    });
  }

  it('Backup now says plainly that nothing was started', async () => {
    const r = await call(KEYS.dataprotect, VALID.startBackup);
    expect(r.json().detail).toMatch(/no backup runner.*Nothing was started/);
    const tasks = await call(KEYS.admin, VALID.listTasks);
    expect(tasks.json().total).toBe(0);
  });
});

describe('request validation: 400 naming the field', () => {
  const cases: [string, { method: string; url: string; payload?: unknown }, string][] = [
    ['bad generation id', { method: 'GET', url: '/generations/..%2Fetc' }, 'path.generationId'],
    ['unknown kind', { method: 'GET', url: `/generations/${GEN}/entities?kind=PRINTER` }, 'query.kind'],
    ['limit too big', { method: 'GET', url: `/generations/${GEN}/entities?limit=100000` }, 'query.limit'],
    ['negative offset', { method: 'GET', url: '/tasks?offset=-1' }, 'query.offset'],
    ['folder missing', { method: 'GET', url: `/generations/${GEN}/entities/u1/mail/messages` }, 'query.folder'],
    ['task id not a uuid', { method: 'GET', url: '/tasks/42' }, 'path.taskId'],
    ['file name with a path', { method: 'GET', url: `/tasks/${TASK_ID}/files/..%2Fetc%2Fpasswd` }, 'path.fileName'],
    ['unknown task status', { method: 'GET', url: '/tasks?status=DONE' }, 'query.status'],
    [
      'unknown restore operation',
      { method: 'POST', url: '/restores', payload: { operation: 'replace.everything', generationId: GEN, entity: { kind: 'USER', uid: 'u', domainUid: 'd' } } },
      'body.operation',
    ],
    [
      'entity without uid',
      { method: 'POST', url: '/restores', payload: { operation: 'replace.mailbox', generationId: GEN, entity: { kind: 'USER', domainUid: 'd' } } },
      'body.entity.uid',
    ],
    [
      'extra field in restore',
      {
        method: 'POST',
        url: '/restores',
        payload: { operation: 'replace.mailbox', generationId: GEN, entity: { kind: 'USER', uid: 'u', domainUid: 'd' }, force: true },
      },
      'body.force',
    ],
    ['discover without location', { method: 'POST', url: '/global-restore/discover', payload: {} }, 'body.repositoryLocation'],
    ['bad recipient', { method: 'POST', url: '/restores', payload: { operation: 'send.books.vcf', generationId: GEN, entity: { kind: 'USER', uid: 'u', domainUid: 'd' }, recipient: 'nope' } }, 'body.recipient'],
  ];
  for (const [name, req, field] of cases) {
    it(`${name} → 400 on ${field}`, async () => {
      const r = await call(KEYS.admin, req);
      expect(r.statusCode).toBe(400);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(r.json().errors.map((e: { field: string }) => e.field)).toContain(field);
    });
  }

  const noBody: [string, string][] = [
    ['PUT', '/settings'],
    ['POST', '/restores'],
    ['POST', '/global-restore'],
    ['POST', '/global-restore/discover'],
    ['POST', '/global-restore/check'],
  ];
  for (const [method, url] of noBody) {
    it(`${method} ${url} without a body → 400, not 500`, async () => {
      for (const headers of [{}, { 'content-type': 'application/json' }]) {
        const r = await api.app.inject({ method: method as 'PUT', url: `/api/dataprotect${url}`, headers: { 'x-bm-apikey': KEYS.admin, ...headers } });
        expect(r.statusCode, r.body).toBe(400);
        expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      }
      const nul = await api.app.inject({ method: method as 'PUT', url: `/api/dataprotect${url}`, headers: { 'x-bm-apikey': KEYS.admin, 'content-type': 'application/json' }, payload: 'null' });
      expect(nul.statusCode).toBe(400);
    });
  }

  const outOfRange: [string, string, string][] = [
    ['offset beyond 2^53', '/tasks?offset=9007199254740993', 'query.offset'],
    ['offset beyond 2^31', '/audit?offset=2147483648', 'query.offset'],
    ['offset of 1e400', '/audit?offset=1e400', 'query.offset'],
    ['log sequence beyond 2^53', `/tasks/${TASK_ID}/log?after=9007199254740993`, 'query.after'],
    ['a NUL in an audit filter', '/audit?action=%00', 'query.action'],
    ['a NUL in an actor', '/audit?actor=admin%00', 'query.actor'],
    ['a NUL in a search', `/generations/${GEN}/entities?search=a%00`, 'query.search'],
    ['a NUL in an entity uid', `/generations/${GEN}/entities/u%00/mail/folders`, 'path.entityUid'],
  ];
  for (const [name, url, field] of outOfRange) {
    it(`${name} → 400 on ${field}, never a database error`, async () => {
      const r = await call(KEYS.admin, { method: 'GET', url });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().errors.map((e: { field: string }) => e.field)).toContain(field);
    });
  }

  it('a Last-Event-ID beyond the sequence numbers → 400 before the stream starts', async () => {
    const r = await api.app.inject({
      method: 'GET',
      url: `/api/dataprotect/tasks/${TASK_ID}/events`,
      headers: { 'x-bm-apikey': KEYS.admin, 'last-event-id': '18446744073709551616' },
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().errors[0].field).toBe('header.last-event-id');
  });

  it('a body that is not JSON is a 400 problem; an unknown route a 404 problem', async () => {
    const bad = await api.app.inject({
      method: 'PUT',
      url: '/api/dataprotect/settings',
      headers: { 'x-bm-apikey': KEYS.admin, 'content-type': 'application/json' },
      payload: '{"retentionDays": ',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['content-type']).toMatch(/problem\+json/);
    const text = await api.app.inject({
      method: 'PUT',
      url: '/api/dataprotect/settings',
      headers: { 'x-bm-apikey': KEYS.admin, 'content-type': 'text/plain' },
      payload: 'retentionDays=3',
    });
    expect(text.statusCode, text.body).toBe(415);
    expect(text.json()).toMatchObject({ status: 415, title: 'Unsupported media type' });
    const none = await call(KEYS.admin, { method: 'GET', url: '/nothing-here' });
    expect(none.statusCode).toBe(404);
    expect(none.json().status).toBe(404);
  });
});

describe('settings', () => {
  const valid = VALID.updateSettings.payload as Record<string, unknown>;

  it('starts from the defaults: 01:00, emails on, archived emails off', async () => {
    const r = await call(KEYS.dataprotect, VALID.getSettings);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ backupTime: '01:00', backupEmails: true, backupArchivedEmails: false, updatedAt: null });
  });

  it('keeps weekly/monthly retention when an update leaves them out', async () => {
    const full = await call(KEYS.admin, { method: 'PUT', url: '/settings', payload: { ...valid, keepWeekly: 4, keepMonthly: 6 } });
    expect(full.statusCode, full.body).toBe(200);
    const partial = await call(KEYS.admin, { method: 'PUT', url: '/settings', payload: valid });
    expect(partial.json()).toMatchObject({ keepWeekly: 4, keepMonthly: 6 });
  });

  it('shows the post-backup action read-only: the API cannot set the program a backup runs as root', async () => {
    const r = await call(KEYS.admin, { method: 'PUT', url: '/settings', payload: { ...valid, postBackupScript: '/usr/bin/id' } });
    expect(r.statusCode).toBe(400);
    expect(r.json().errors.map((e: { field: string }) => e.field)).toContain('body.postBackupScript');
    const now = (await call(KEYS.admin, VALID.getSettings)).json();
    expect(now.postBackupScript).toBe(process.env.DP_POST_BACKUP_SCRIPT || '/usr/bin/bm-post-full-backup.sh');
    // A value saved when the API still accepted one is never used.
    await api.pool.query(`UPDATE dp_settings SET value = value || '{"postBackupScript": "/usr/bin/id"}'::jsonb WHERE id = 1`);
    expect((await api.deps.settings.get()).postBackupScript).toBe(now.postBackupScript);
  });

  it('saves, reads back, and writes an audit event naming what changed', async () => {
    const payload = { ...valid, retentionDays: 11, backupTime: '02:45', repositoryLocation: `${REPOSITORY}/`, skippedTags: ['mail/archive', 'bm/es'] };
    const put = await call(KEYS.dataprotect, { ...VALID.updateSettings, payload });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({ retentionDays: 11, backupTime: '02:45', skippedTags: ['bm/es', 'mail/archive'], updatedBy: 'dpadmin@global.virt' });
    const get = await call(KEYS.admin, VALID.getSettings);
    expect(get.json()).toMatchObject({ retentionDays: 11, backupTime: '02:45', repositoryLocation: REPOSITORY });
    const audit = await call(KEYS.admin, { method: 'GET', url: '/audit?action=settings.update' });
    expect(audit.statusCode).toBe(200);
    const event = audit.json().items[0];
    expect(event).toMatchObject({ actor: 'dpadmin@global.virt', action: 'settings.update', result: 'ok' });
    expect(event.detail.changed).toEqual(expect.arrayContaining(['retentionDays', 'backupTime', 'skippedTags']));
  });

  const invalid: [string, Record<string, unknown>, string][] = [
    ['retention as a string', { ...valid, retentionDays: '10' }, 'body.retentionDays'],
    ['retention of 0 days', { ...valid, retentionDays: 0 }, 'body.retentionDays'],
    ['a negative retention', { ...valid, retentionDays: -3 }, 'body.retentionDays'],
    ['retention of 1.5 days', { ...valid, retentionDays: 1.5 }, 'body.retentionDays'],
    ['negative weekly generations', { ...valid, keepWeekly: -1 }, 'body.keepWeekly'],
    ['half a monthly generation', { ...valid, keepMonthly: 0.5 }, 'body.keepMonthly'],
    ['too many weekly generations', { ...valid, keepWeekly: 521 }, 'body.keepWeekly'],
    ['backup time 25:00', { ...valid, backupTime: '25:00' }, 'body.backupTime'],
    ['backupEmails missing', (({ backupEmails: _, ...rest }) => rest)(valid), 'body.backupEmails'],
    ['unknown field', { ...valid, retention: 3 }, 'body.retention'],
    ['relative repository', { ...valid, repositoryLocation: 'var/backups' }, 'body.repositoryLocation'],
    ['repository with ..', { ...valid, repositoryLocation: '/srv/../etc' }, 'body.repositoryLocation'],
    ['badly formed tag', { ...valid, skippedTags: ['MAIL'] }, 'body.skippedTags.0'],
    ['a tag twice', { ...valid, skippedTags: ['bm/es', 'bm/es'] }, 'body.skippedTags'],
    ['rehearsal enabled as a string', { ...valid, rehearsalEnabled: 'yes' }, 'body.rehearsalEnabled'],
    ['rehearsal on a day that is not one', { ...valid, rehearsalDay: 'someday' }, 'body.rehearsalDay'],
    ['rehearsal time 24:00', { ...valid, rehearsalTime: '24:00' }, 'body.rehearsalTime'],
  ];

  it('the restore rehearsal is off until enabled, weekly on Sunday by default; saved, read back, kept when left out', async () => {
    const defaults = (await call(KEYS.admin, VALID.getSettings)).json();
    expect(defaults).toMatchObject({ rehearsalEnabled: false, rehearsalDay: 'sunday', rehearsalTime: '04:00' });
    const put = await call(KEYS.admin, { method: 'PUT', url: '/settings', payload: { ...valid, rehearsalEnabled: true, rehearsalDay: 'daily', rehearsalTime: '22:10' } });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json()).toMatchObject({ rehearsalEnabled: true, rehearsalDay: 'daily', rehearsalTime: '22:10' });
    const partial = await call(KEYS.admin, { method: 'PUT', url: '/settings', payload: valid });
    expect(partial.json()).toMatchObject({ rehearsalEnabled: true, rehearsalDay: 'daily', rehearsalTime: '22:10' });
    const back = await call(KEYS.admin, { method: 'PUT', url: '/settings', payload: { ...valid, rehearsalEnabled: false, rehearsalDay: 'sunday', rehearsalTime: '04:00' } });
    expect(back.json()).toMatchObject({ rehearsalEnabled: false, rehearsalDay: 'sunday', rehearsalTime: '04:00' });
  });
  for (const [name, payload, field] of invalid) {
    it(`refuses ${name} (400 on ${field}) and keeps what was saved`, async () => {
      const before = (await call(KEYS.admin, VALID.getSettings)).json();
      const r = await call(KEYS.admin, { method: 'PUT', url: '/settings', payload });
      expect(r.statusCode).toBe(400);
      expect(r.json().errors.map((e: { field: string }) => e.field)).toContain(field);
      expect((await call(KEYS.admin, VALID.getSettings)).json()).toEqual(before);
    });
  }
});

describe('response validation is on in the tests', () => {
  it('a domain answer that breaks the contract becomes a 500, a conforming one passes', async () => {
    const gen: Generation = {
      id: 'g-ok',
      protectionTime: '2026-11-20T01:00:00.000Z',
      status: 'VALID',
      runStatus: 'OK',
      productVersion: '0.1.0',
      formatVersion: 1,
      protected: false,
      sizeRead: 10,
      sizeAdded: 5,
      sizeTotal: 10,
      trigger: 'schedule',
      end: '2026-11-20T01:01:00.000Z',
      durationSeconds: 60,
      parts: [
        { id: 'p1', server: 'srv1', tag: 'bm/pgsql', status: 'VALID', begin: '2026-11-20T01:00:00.000Z', end: '2026-11-20T01:01:00.000Z', sizeRead: 10, sizeAdded: 5, sizeTotal: 10, messages: [] },
      ],
    };
    const stub = (g: unknown): GenerationService => ({
      list: async () => [g as Generation],
      get: async () => g as Generation,
      forget: async () => { throw new Error('unused'); },
      sync: async () => { throw new Error('unused'); },
      protect: async () => { throw new Error('unused'); },
      unprotect: async () => { throw new Error('unused'); },
    });
    const good = await startTestApi({ generations: stub(gen) });
    const bad = await startTestApi({ generations: stub({ ...gen, status: 'GREAT', parts: 'none' }) });
    try {
      const ok = await good.app.inject({ method: 'GET', url: '/api/dataprotect/generations/_detailed', headers: { 'x-bm-apikey': KEYS.admin } });
      expect(ok.statusCode).toBe(200);
      expect(ok.json()[0].id).toBe('g-ok');
      const broken = await bad.app.inject({ method: 'GET', url: '/api/dataprotect/generations/_detailed', headers: { 'x-bm-apikey': KEYS.admin } });
      expect(broken.statusCode).toBe(500);
      expect(broken.json().status).toBe(500);
    } finally {
      await good.close();
      await bad.close();
    }
  });
});
