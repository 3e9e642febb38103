import 'reflect-metadata';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GlobalRestores } from '../../server/dataprotect/global-restore/service.js';
import { withClient } from '../../server/pg/client.js';
import { CORE_SERVER, MAIL_SERVER } from '../../server/host/reference/layout.js';
import { globalFixture, recordFiles, recordTables, referenceInstallation, type GlobalFixture } from '../global-restore/helpers.js';
import { KEYS, startTestApi, type TestApi } from './harness.js';

// The three global restore operations of the contract against a seeded, backed-up reference host: discover from
// the repository alone, check with each prerequisite's status and advice, start refused over a non-blank
// installation unless told to wipe it, then the installation back as the generation recorded it.

let f: GlobalFixture;
let api: TestApi;
beforeAll(async () => {
  f = await globalFixture('http', 3);
  api = await startTestApi({});
  api.deps.globalRestore = new GlobalRestores(api.deps.tasks, api.deps.audit, referenceInstallation(f.host));
}, 300_000);
afterAll(async () => {
  await api?.close();
  await f?.close();
});

function post(url: string, payload: object, key: string = KEYS.dataprotect) {
  return api.app.inject({ method: 'POST', url: `/api/dataprotect${url}`, headers: { 'x-bm-apikey': key }, payload });
}

async function taskEnd(id: string): Promise<{ status: string; error: string | null; result: unknown }> {
  for (;;) {
    const r = await api.app.inject({ method: 'GET', url: `/api/dataprotect/tasks/${id}`, headers: { 'x-bm-apikey': KEYS.dataprotect } });
    const t = r.json();
    if (t.status !== 'RUNNING') return t;
    await new Promise((res) => setTimeout(res, 200));
  }
}

describe('global restore over HTTP, against the reference host', () => {
  it('discover lists the generation with its product version, format and parts; a location without a repository is a 404', async () => {
    const r = await post('/global-restore/discover', { repositoryLocation: f.repoDir });
    expect(r.statusCode).toBe(200);
    const [g] = r.json();
    expect(g).toMatchObject({ id: f.generation, status: 'VALID', productVersion: '5.1.0-reference', formatVersion: 1 });
    expect(g.parts.map((p: { tag: string }) => p.tag)).toEqual(expect.arrayContaining(['bm/pgsql', 'mail/imap', 'bm/conf']));
    const none = await post('/global-restore/discover', { repositoryLocation: path.join(f.repoDir, 'nothing-here') });
    expect(none.statusCode).toBe(404);
  });

  it('check says the running installation is not blank, each prerequisite with status and advice; wipe turns it into a warning', async () => {
    const r = await post('/global-restore/check', { repositoryLocation: f.repoDir, generationId: 'latest' });
    expect(r.statusCode).toBe(200);
    const report = r.json();
    expect(report.generationId).toBe(f.generation);
    expect(report.ok).toBe(false);
    expect(report.installation.blank).toBe(false);
    expect(report.installation.content.join(' ')).toContain(f.sb.db.database);
    const byId = Object.fromEntries(report.checks.map((c: { id: string }) => [c.id, c]));
    expect(byId.generation).toMatchObject({ status: 'met', ok: true, advice: null });
    expect(byId.product).toMatchObject({ status: 'met', ok: true });
    expect(byId.databases).toMatchObject({ status: 'not-met', ok: false, advice: expect.stringContaining('wipe') });
    expect(byId.directories.status).toBe('not-met');
    expect(report.servers.map((s: { from: { uid: string }; to: { uid: string } | null }) => [s.from.uid, s.to?.uid])).toEqual(
      expect.arrayContaining([[CORE_SERVER, CORE_SERVER], [MAIL_SERVER, MAIL_SERVER]]),
    );
    expect(report.targetServers.map((s: { uid: string }) => s.uid).sort()).toEqual([CORE_SERVER, MAIL_SERVER].sort());

    const wiped = (await post('/global-restore/check', { repositoryLocation: f.repoDir, generationId: f.generation, wipe: true })).json();
    expect(wiped.ok).toBe(true);
    expect(wiped.installation.blank).toBe(false);
    expect(wiped.checks.find((c: { id: string }) => c.id === 'databases')).toMatchObject({ status: 'warning', ok: true });
  });

  it('check follows a server map: an explicit mapping is marked so, an unknown target leaves the server unmapped with why', async () => {
    const mail = (await f.host.servers()).find((s) => s.uid === MAIL_SERVER)!;
    const explicit = (await post('/global-restore/check', {
      repositoryLocation: f.repoDir, generationId: f.generation, wipe: true, serverMap: [{ from: mail.address, to: MAIL_SERVER }],
    })).json();
    expect(explicit.ok).toBe(true);
    expect(explicit.servers.find((s: { from: { uid: string } }) => s.from.uid === MAIL_SERVER)).toMatchObject({ explicit: true, to: { uid: MAIL_SERVER }, problem: null });

    const unknown = (await post('/global-restore/check', {
      repositoryLocation: f.repoDir, generationId: f.generation, wipe: true, serverMap: [{ from: MAIL_SERVER, to: '10.9.9.9' }],
    })).json();
    expect(unknown.ok).toBe(false);
    expect(unknown.checks.find((c: { id: string }) => c.id === 'servers')).toMatchObject({ status: 'not-met', advice: expect.any(String) });
    const placed = unknown.servers.find((s: { from: { uid: string } }) => s.from.uid === MAIL_SERVER);
    expect(placed.to).toBeNull();
    expect(placed.problem).toContain('10.9.9.9');
  });

  it('refuses a malformed or twice-given server map (400 naming serverMap) and an unknown generation (404)', async () => {
    const twice = await post('/global-restore/check', {
      repositoryLocation: f.repoDir, generationId: f.generation, serverMap: [{ from: MAIL_SERVER, to: MAIL_SERVER }, { from: MAIL_SERVER, to: CORE_SERVER }],
    });
    expect(twice.statusCode).toBe(400);
    expect(JSON.stringify(twice.json())).toContain('serverMap');
    const malformed = await post('/global-restore/check', { repositoryLocation: f.repoDir, generationId: f.generation, serverMap: [{ from: 'a=b', to: MAIL_SERVER }] });
    expect(malformed.statusCode).toBe(400);
    expect(JSON.stringify(malformed.json())).toContain('serverMap');
    const wipeNotBool = await post('/global-restore/check', { repositoryLocation: f.repoDir, generationId: f.generation, wipe: 'yes' });
    expect(wipeNotBool.statusCode).toBe(400);
    const missing = await post('/global-restore/check', { repositoryLocation: f.repoDir, generationId: 'no-such-generation' });
    expect(missing.statusCode).toBe(404);
  });

  it('start refuses a non-blank installation without wipe (409, nothing touched); with wipe it rebuilds it exactly as one task', async () => {
    const refused = await post('/global-restore', { repositoryLocation: f.repoDir, generationId: f.generation });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().detail).toContain('not blank');
    expect(await recordTables(f.sb.db)).toEqual(f.tables);

    // Damage the installation after the backup: the restore must put back what the generation holds.
    await withClient(f.sb.db, (c) => c.query('DELETE FROM t_calendar_vevent'));
    const conf = f.files.find((e) => e.type === 'file' && e.path.includes('conf'))!;
    await fs.rm(path.join(f.host.layout.root, conf.path));

    const r = await post('/global-restore', { repositoryLocation: f.repoDir, generationId: f.generation, wipe: true }, KEYS.admin);
    expect(r.statusCode).toBe(202);
    expect(r.json().task).toMatchObject({ kind: 'global-restore', status: 'RUNNING' });
    const end = await taskEnd(r.json().task.id);
    expect(end.error).toBeNull();
    expect(end.status).toBe('SUCCEEDED');
    expect(end.result).toMatchObject({ generation: f.generation, resumed: false, alreadyRestored: false });
    expect(await recordTables(f.sb.db)).toEqual(f.tables);
    expect(await recordFiles(f.host.layout)).toEqual(f.files);

    // Started again without wipe once it finished: the generation is already restored, nothing is touched.
    const again = await post('/global-restore', { repositoryLocation: f.repoDir, generationId: f.generation }, KEYS.admin);
    expect(again.statusCode).toBe(202);
    const second = await taskEnd(again.json().task.id);
    expect(second.status).toBe('SUCCEEDED');
    expect(second.result).toMatchObject({ generation: f.generation, alreadyRestored: true });
    expect(await recordTables(f.sb.db)).toEqual(f.tables);

    // The audit log says who rebuilt it, from which generation.
    const audit = await api.app.inject({ method: 'GET', url: '/api/dataprotect/audit?action=global-restore.end', headers: { 'x-bm-apikey': KEYS.admin } });
    expect(audit.json().items[0]).toMatchObject({ actor: 'admin0@global.virt', result: 'ok', generationId: f.generation });
  }, 300_000);
});
