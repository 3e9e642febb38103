import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createClient, DataProtectApiError, type TaskEvent } from '../../openapi/client.js';
import { KEYS, PRINCIPALS, startTestApi, type TestApi } from './harness.js';

// The typed ky client (bm-dataprotect/client) from Node, against the real API.

let api: TestApi;
let base: string;
const repository = mkdtempSync(path.join(tmpdir(), 'dp-client-'));
beforeAll(async () => {
  api = await startTestApi({ settingsDefaults: { repositoryLocation: repository } });
  base = `${await api.app.listen({ port: 0, host: '127.0.0.1' })}/api/dataprotect`;
});
afterAll(async () => {
  await api?.close();
  rmSync(repository, { recursive: true, force: true });
});

it('reads and writes settings, and reports a 400 as a problem with field errors', async () => {
  const client = createClient({ baseUrl: base, apiKey: KEYS.dataprotect });
  const s = await client.getSettings();
  const saved = await client.updateSettings({ ...s, retentionDays: 30, skippedTags: ['bm/es'] } as never).catch((e) => e);
  // Settings carries updatedAt/updatedBy, which the update contract refuses: a script must send SettingsUpdate.
  expect(saved).toBeInstanceOf(DataProtectApiError);
  expect((saved as DataProtectApiError).status).toBe(400);
  expect((saved as DataProtectApiError).fieldErrors()).toHaveProperty('updatedAt');
  // The post-backup action and the repository's filesystem are read-only: shown, never sent back.
  const { updatedAt: _a, updatedBy: _b, postBackupScript: _p, repositoryFilesystem: _f, timeZone: _z, ...update } = s;
  const ok = await client.updateSettings({ ...update, retentionDays: 30 });
  expect(ok.retentionDays).toBe(30);
  expect((await client.getSettings()).updatedBy).toBe(PRINCIPALS[KEYS.dataprotect].login);
});

it('turns 401, 403 and 501 into DataProtectApiError with the problem', async () => {
  const anonymous = createClient({ baseUrl: base });
  await expect(anonymous.getSettings()).rejects.toMatchObject({ status: 401 });
  const restorer = createClient({ baseUrl: base, apiKey: () => KEYS.restore });
  await expect(restorer.getSettings()).rejects.toMatchObject({ status: 403 });
  const admin = createClient({ baseUrl: base, apiKey: KEYS.admin });
  const err = await admin.startBackup().catch((e) => e);
  expect(err).toBeInstanceOf(DataProtectApiError);
  expect(err.problem).toMatchObject({ status: 501, capability: 'backup-runner' });
  expect(err.message).toContain('no backup runner');
});

it('follows a task to its end through the event stream', async () => {
  const admin = createClient({ baseUrl: base, apiKey: KEYS.admin });
  const p = PRINCIPALS[KEYS.admin];
  const task = await api.deps.tasks.start({ kind: 'check', title: 'Check', actor: { login: p.login, uid: p.uid } }, async (ctx) => {
    for (let i = 1; i <= 3; i++) {
      await new Promise((r) => setTimeout(r, 30));
      ctx.progress({ done: i, total: 3 });
      ctx.info(`step ${i}`);
    }
    return { checked: 3 };
  });
  const events: TaskEvent[] = [];
  const final = await admin.waitForTask(task.id, (e) => events.push(e));
  expect(final).toMatchObject({ status: 'SUCCEEDED', result: { checked: 3 } });
  expect(events.filter((e) => e.type === 'log').map((e) => (e.type === 'log' ? e.entry.message : ''))).toEqual(['step 1', 'step 2', 'step 3']);
  expect((await admin.getTaskLog(task.id, 2)).map((e) => e.message)).toEqual(['step 3']);
  expect((await admin.listTasks({ kind: 'check' })).items[0].id).toBe(task.id);
});
