import 'reflect-metadata';
import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertMonitor } from '../../server/dataprotect/alerts/monitor.js';
import { GenerationCache } from '../../server/dataprotect/generation/cache.js';
import { Rehearsals } from '../../server/dataprotect/global-restore/rehearsals.js';
import { ProtectionStatus } from '../../server/dataprotect/protection-status.js';
import { ProtectionSummaries } from '../../server/dataprotect/summary.js';
import { TaskOutcomes } from '../../server/dataprotect/task-outcomes.js';
import { AlertStore } from '../../server/store/alert-store.js';
import { globalFixture, referenceInstallation, type GlobalFixture } from '../global-restore/helpers.js';
import { KEYS, PRINCIPALS, startTestApi, type TestApi } from './harness.js';

// GET /summary, POST /rehearsals and POST /repository/_check against a seeded, backed-up reference host and the
// real PostgreSQL: what the navigator answers to "am I protected?", a rehearsal and a check as tasks with their
// results, a damaged repository's rehearsal and check failing with what they found, and the alert it opens.

let f: GlobalFixture;
let api: TestApi;
let work: string;
beforeAll(async () => {
  f = await globalFixture('summary', 3);
  work = await mkdtemp(path.join(tmpdir(), 'dp-summary-'));
  api = await startTestApi({ settingsDefaults: { repositoryLocation: f.repoDir } });
  api.deps.rehearsals = new Rehearsals(api.deps.tasks, api.deps.settings, api.deps.audit, referenceInstallation(f.host), path.join(work, 'sandboxes'));
}, 240_000);
afterAll(async () => {
  await api?.close();
  await f?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

function call(method: 'GET' | 'POST', url: string, key: string = KEYS.dataprotect, payload?: object) {
  return api.app.inject({ method, url: `/api/dataprotect${url}`, headers: { 'x-bm-apikey': key }, ...(payload ? { payload } : {}) });
}

async function taskEnd(id: string): Promise<{ kind: string; status: string; error: string | null; result: Record<string, unknown> | null }> {
  const t = await api.deps.tasks.whenDone(id);
  return (await call('GET', `/tasks/${t!.id}`)).json();
}

async function useLocation(location: string): Promise<void> {
  const s = await api.deps.settings.get();
  await api.deps.settings.update({ ...s, repositoryLocation: location }, PRINCIPALS[KEYS.admin]);
}

describe('the protection summary', () => {
  it('answers the last success, the last run, sizes, the deduplication ratio and the room on the disk; no warning of silence', async () => {
    const r = await call('GET', '/summary');
    expect(r.statusCode).toBe(200);
    const s = r.json();
    expect(s.scope).toBe('installation');
    expect(s.lastSuccess).toMatchObject({ generationId: f.generation });
    expect(s.lastRun).toMatchObject({ generationId: f.generation, status: 'VALID', runStatus: 'OK', trigger: 'cli' });
    expect(s.lastRun.durationSeconds).toBeGreaterThanOrEqual(0);
    expect(s.protectedBytes).toBeGreaterThan(0);
    expect(s.keptBytes).toBe(s.protectedBytes); // one generation
    expect(s.repository.location).toBe(f.repoDir);
    expect(s.repository.storedBytes).toBeGreaterThan(0);
    expect(s.deduplicationRatio).toBeCloseTo(s.keptBytes / s.repository.storedBytes, 6);
    expect(s.repository.freeBytes).toBeGreaterThan(0);
    expect(s.repository.filesystemBytes).toBeGreaterThanOrEqual(s.repository.freeBytes);
    expect(s.warnings.map((w: { code: string }) => w.code)).not.toContain('no-success');
    expect(s.lastCheck).toBeNull();
    expect(s.lastRehearsal).toBeNull();
    expect(s.nextRun).toBeNull(); // no scheduler in this test API
  });

  it('each part of a generation read from the repository carries its full size (what it protects)', async () => {
    const status = await new ProtectionStatus(api.deps.settings).read();
    const stored = status.generations!.find((x) => x.record.id === f.generation)!;
    for (const p of stored.record.parts) expect(p.sizeTotal, `${p.server} ${p.tag}`).toBeGreaterThan(0);
  });

  it('warns when no backup succeeded for over 26 hours, with the hours', async () => {
    const summaries = new ProtectionSummaries(new ProtectionStatus(api.deps.settings), api.deps.settings, api.deps.tasks, new TaskOutcomes(api.deps.tasks));
    const later = new Date(Date.now() + 27 * 3600_000 + 60_000);
    const s = await summaries.get(PRINCIPALS[KEYS.admin], later);
    expect(s.warnings).toContainEqual(expect.objectContaining({ code: 'no-success', params: { hours: 27 } }));
    const now = await summaries.get(PRINCIPALS[KEYS.admin]);
    expect(now.warnings.map((w) => w.code)).not.toContain('no-success');
  });

  it("a domain's administrator sees the generations' side only; a user without a role gets 403", async () => {
    for (const key of [KEYS.globexDataProtect, KEYS.restore]) {
      const s = (await call('GET', '/summary', key)).json();
      expect(s.scope).toBe('domain');
      expect(s.lastSuccess.generationId).toBe(f.generation);
      expect(s.repository).toBeNull();
      expect(s.deduplicationRatio).toBeNull();
      expect(s.lastCheck).toBeNull();
      expect(s.lastRehearsal).toBeNull();
    }
    expect((await call('GET', '/summary', KEYS.noRole)).statusCode).toBe(403);
    expect((await call('GET', '/summary', 'no-such-key')).statusCode).toBe(401);
  });
});

describe('rehearsals and checks as tasks', () => {
  it('POST /rehearsals rehearses the newest valid generation: every part the same, with its duration; the summary shows it', async () => {
    expect((await call('POST', '/rehearsals', KEYS.globexDataProtect)).statusCode).toBe(403);
    const r = await call('POST', '/rehearsals');
    expect(r.statusCode).toBe(202);
    expect(r.json().task).toMatchObject({ kind: 'rehearsal', status: 'RUNNING', titlePhrase: { key: 'task.title.rehearsal', params: { generation: f.generation } } });
    const t = await taskEnd(r.json().task.id);
    expect(t.status, t.error ?? '').toBe('SUCCEEDED');
    expect(t.result).toMatchObject({ generationId: f.generation, ok: true, failure: null, removed: true });
    const parts = t.result!.parts as { tag: string; verdict: string; compared: number }[];
    expect(parts.map((p) => p.tag)).toEqual(expect.arrayContaining(['bm/pgsql', 'mail/imap', 'bm/conf']));
    for (const p of parts) {
      expect(p.verdict).toBe('same');
      expect(p.compared).toBeGreaterThan(0);
    }
    expect(await readdir(path.join(work, 'sandboxes'))).toEqual([]); // the sandbox is gone

    const s = (await call('GET', '/summary')).json();
    expect(s.lastRehearsal).toMatchObject({ taskId: r.json().task.id, status: 'SUCCEEDED', generationId: f.generation, ok: true });
    expect(s.lastRehearsal.durationSeconds).toBeGreaterThan(0);
    expect(s.lastRehearsal.parts.length).toBe(parts.length);
  }, 240_000);

  it('POST /repository/_check reads all the data as a task of kind check; the summary shows the result', async () => {
    expect((await call('POST', '/repository/_check', KEYS.dataprotect, { mode: 'everything' })).statusCode).toBe(400);
    expect((await call('POST', '/repository/_check', KEYS.dataprotect, { mode: 'sample', samplePercent: 0 })).statusCode).toBe(400);
    const r = await call('POST', '/repository/_check', KEYS.dataprotect, { mode: 'full' });
    expect(r.statusCode).toBe(202);
    const t = await taskEnd(r.json().task.id);
    expect(t).toMatchObject({ kind: 'check', status: 'SUCCEEDED' });
    expect(t.result).toMatchObject({ mode: 'full', ok: true, errors: 0 });
    expect(t.result!.packsRead).toBeGreaterThan(0);
    const s = (await call('GET', '/summary')).json();
    expect(s.lastCheck).toMatchObject({ taskId: r.json().task.id, status: 'SUCCEEDED', mode: 'full', errors: 0 });
  }, 120_000);

  it('a damaged repository: the rehearsal and the check fail with what they found, and the rehearsal opens an alert', async () => {
    const damaged = path.join(work, 'damaged');
    await cp(f.repoDir, damaged, { recursive: true });
    // Truncate every pack: nothing can be restored from them.
    const packs = path.join(damaged, 'data');
    for (const dir of await readdir(packs)) {
      for (const name of await readdir(path.join(packs, dir))) await writeFile(path.join(packs, dir, name), Buffer.alloc(10));
    }
    await useLocation(damaged);
    try {
      const r = await call('POST', '/rehearsals');
      expect(r.statusCode).toBe(202);
      const t = await taskEnd(r.json().task.id);
      expect(t.status).toBe('FAILED');
      expect(t.error).toContain(`The rehearsal of generation ${f.generation}`);
      expect(t.result).toMatchObject({ generationId: f.generation, ok: false });
      const s = (await call('GET', '/summary')).json();
      expect(s.lastRehearsal).toMatchObject({ status: 'FAILED', ok: false });

      const alerts = new AlertMonitor(api.deps.tasks, new AlertStore(api.pool), api.deps.settings, new GenerationCache(api.pool), { mailer: null, recipients: [], from: 'dp@test' });
      await alerts.evaluate();
      const incident = await new AlertStore(api.pool).current('rehearsal');
      expect(incident?.subject).toBe('The restore rehearsal failed');
      expect(incident?.body).toContain(r.json().task.id);

      const c = await call('POST', '/repository/_check', KEYS.dataprotect, { mode: 'structure' });
      const ct = await taskEnd(c.json().task.id);
      expect(ct.status).toBe('FAILED');
      expect(ct.error).toContain('the repository is damaged');
      expect(ct.result).toMatchObject({ mode: 'structure', ok: false });
      expect(ct.result!.errors).toBeGreaterThan(0);
      expect((await call('GET', '/summary')).json().lastCheck).toMatchObject({ status: 'FAILED', mode: 'structure' });
    } finally {
      await useLocation(f.repoDir);
    }
  }, 240_000);

  it('refuses a rehearsal where there is no repository yet (409 saying to back up first)', async () => {
    const empty = path.join(work, 'empty');
    await useLocation(empty);
    try {
      const r = await call('POST', '/rehearsals');
      expect(r.statusCode).toBe(409);
      expect(r.json().detail).toMatch(/run a backup first/);
    } finally {
      await useLocation(f.repoDir);
    }
  });
});
