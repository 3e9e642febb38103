import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { hostLayout } from '../../server/host/reference/layout.js';
import { ACCOUNT, SCREENSHOTS, startConsoleUnderTest, type ConsoleUnderTest } from '../ui/console-harness.js';
import { fixture, mailboxOverImap, type Fixture } from './fixture.js';

// The restore browser in Debian's chromium against the seeded host: archived mail shown and restored with its
// mailbox, a user's data restored into another account, deleted mail restored by date.

interface User { uid: string; login: string; domain: string; displayname: string }

let f: Fixture;
let g1: GenerationView;
let env: ConsoleUnderTest;
let users: User[];

const archiveDir = (u: User) => path.join(hostLayout(f.sb.root).archive, 'user', u.domain, u.uid);
const imapLogin = (u: User) => `${u.login}@${u.domain}`;

beforeAll(async () => {
  f = await fixture('browsercov', 8);
  users = await f.sql(
    `SELECT e.entry_uid AS uid, u.login, c.uid AS domain, e.displayname FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
       JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY c.uid, e.entry_uid`,
  );
  g1 = await f.backup(new Date('2026-01-10T01:00:00Z'), { archivedEmails: true });
  env = await startConsoleUnderTest({ installation: { port: f.host, productVersion: 'test', mailer: null } });
  const r = await env.console.app.inject({
    method: 'PUT', url: '/api/dataprotect/settings', headers: { 'x-bm-apikey': ACCOUNT.apiKey, 'content-type': 'application/json' },
    payload: JSON.stringify({ retentionDays: 7, backupEmails: true, backupArchivedEmails: true, backupTime: '01:00', repositoryLocation: f.repoDir, skippedTags: [] }),
  });
  expect(r.statusCode, r.body).toBe(200);
}, 300_000);
afterAll(async () => {
  await env?.close();
  await f?.close();
});

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

async function openEntity(locale: string, u: User): Promise<{ page: Page; close: () => Promise<void> }> {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 1000 }, locale });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000); // generous: Chromium is slow to lay out on a busy machine
  await page.goto(env.console.url);
  await page.locator('#login').fill(ACCOUNT.login);
  await page.locator('#password').fill(ACCOUNT.password);
  await page.locator('button[type="submit"]').click();
  await page.locator('a[href="#/backup/protected-data/restore"]').click();
  await page.locator('tr[data-entity]').first().waitFor();
  await page.locator('#search').fill(u.login);
  const row = page.locator(`tr[data-entity="${u.uid}"]`);
  await row.waitFor();
  await row.locator('button').click();
  await page.locator('#entity-panel').waitFor();
  return { page, close: () => context.close() };
}

describe('restore browser: archive, another account, undelete by date', () => {
  it('shows the archived mail of a mailbox in a section of its own and restores it into the archive', async () => {
    const u = users.find((x) => existsSync(archiveDir(x)))!;
    const files = (await readdir(archiveDir(u))).sort();
    await rm(path.join(archiveDir(u), files[0]));
    const { page, close } = await openEntity('en-GB', u);
    const panel = page.locator('#entity-panel');
    await panel.locator('#archive-title').waitFor();
    expect(await panel.locator('#archive-title').textContent()).toBe('Archived mail');
    await panel.locator('button[data-folder="#archive"]').click();
    await panel.locator('tr[data-message]').first().waitFor();
    expect(await panel.locator('tr[data-message]').count()).toBe(files.length);
    await panel.getByText('Restoring them puts them back into the archive.').waitFor();
    await shot(page, 'restore-archive-01');
    await page.getByRole('button', { name: 'Restore the archived mail' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(`Restore a folder — Archived mail for ${u.displayname}. Are you sure?`);
    await dialog.getByRole('button', { name: 'Restore' }).click();
    await page.locator('dp-task-progress').getByText('Finished', { exact: true }).waitFor({ timeout: 60_000 });
    await close();
    expect((await readdir(archiveDir(u))).sort()).toEqual(files);
  });

  it("restores a user's data into another account chosen in the browser", async () => {
    const [source, target] = users.filter((x) => x.domain === users[0].domain && !existsSync(archiveDir(x))).slice(0, 2);
    const { page, close } = await openEntity('en-GB', source);
    const panel = page.locator('#entity-panel');
    await panel.getByText('Restore into another account').click();
    expect(await page.locator('#restore').isDisabled()).toBe(true);
    await page.locator('#target-search').fill(target.login);
    await page.locator('#target-search').press('Enter');
    await expect.poll(() => page.locator(`#target option[value="${target.uid}"]`).count()).toBe(1);
    expect(await page.locator(`#target option[value="${source.uid}"]`).count()).toBe(0);
    await page.locator('#target').selectOption(target.uid);
    await shot(page, 'restore-into-01');
    await page.locator('#restore').click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(`Restore into another account for ${source.displayname}, into the account of ${target.displayname}. Are you sure?`);
    await dialog.getByRole('button', { name: 'Restore' }).click();
    await page.locator('dp-task-progress').getByText('Finished', { exact: true }).waitFor({ timeout: 60_000 });
    await close();
    const c = await f.imap(imapLogin(target));
    const now = await mailboxOverImap(c);
    await c.logout();
    expect(now.get(`restored-2026-01-10-${source.login.replace(/\./g, '_')}`)!.length).toBeGreaterThan(0);
  });

  it('restores deleted messages by date, in French', async () => {
    const u = users.filter((x) => !existsSync(archiveDir(x))).at(-1)!;
    let c = await f.imap(imapLogin(u));
    let gone: string;
    const lock = await c.getMailboxLock('INBOX');
    try {
      const first = await c.fetchOne('1', { envelope: true });
      gone = (first && first.envelope?.messageId) || '';
      await c.messageDelete('1');
    } finally {
      lock.release();
    }
    await c.logout();
    expect(gone).not.toBe('');

    const { page, close } = await openEntity('fr-FR', u);
    const panel = page.locator('#entity-panel');
    await panel.getByText('Restaurer les messages supprimés (par date)').click();
    await page.locator('#period-from').fill('2026-01-10');
    await page.locator('#period-to').fill('2026-01-10');
    await shot(page, 'restore-undelete-01');
    await page.locator('#restore').click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(`pour ${u.displayname}, du 10 janvier 2026 au 10 janvier 2026. Êtes-vous sûr ?`);
    await dialog.locator('#confirm-restore').click();
    await page.locator('dp-task-progress').getByText('Terminée', { exact: true }).waitFor({ timeout: 60_000 });
    await close();
    c = await f.imap(imapLogin(u));
    const now = await mailboxOverImap(c);
    await c.logout();
    const restored = [...now.entries()].filter(([k]) => /^restored-\d{4}-\d{2}-\d{2}$/.test(k));
    expect(restored.flatMap(([, ms]) => ms.map((m) => m.messageId))).toEqual([gone]);
  });
});
