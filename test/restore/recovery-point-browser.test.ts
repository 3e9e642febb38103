import 'reflect-metadata';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { ACCOUNT, SCREENSHOTS, startConsoleUnderTest, type ConsoleUnderTest } from '../ui/console-harness.js';
import { fixture, mailboxOverImap, type Fixture, type ImapMessage } from './fixture.js';

// The restore browser's "Mail as of", in Debian's chromium against the seeded host: a message arrives after the
// nightly generation, a 15-minute recovery point (taken through the API, as the schedule does) saves it, the user
// deletes it; the administrator picks a time, gets the recovery point, and brings that one message back.

let f: Fixture;
let env: ConsoleUnderTest;
let nightly: GenerationView;
let earlier: GenerationView;
let point: { id: string; protectionTime: string };
let user: { uid: string; login: string; domain: string; displayname: string };
const MESSAGE_ID = '<between-two-recovery-points@acme.test>';
const SUBJECT = 'Invoice 4711 approved';

const api = (method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown) =>
  env.console.app.inject({
    method, url: `/api/dataprotect${url}`,
    headers: { 'x-bm-apikey': ACCOUNT.apiKey, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });

async function finished(id: string) {
  for (let i = 0; i < 1200; i++) {
    const t = (await api('GET', `/tasks/${id}`)).json();
    if (t.status !== 'RUNNING') return t;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`task ${id} did not finish`);
}

async function inbox(): Promise<ImapMessage[]> {
  const c = await f.imap(`${user.login}@${user.domain}`);
  try {
    return (await mailboxOverImap(c)).get('INBOX') ?? [];
  } finally {
    await c.logout();
  }
}

beforeAll(async () => {
  f = await fixture('rpbrowser', 6);
  [user] = await f.sql(
    `SELECT e.entry_uid AS uid, u.login, c.uid AS domain, e.displayname FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
       JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid LIMIT 1`,
  );
  nightly = await f.backup(new Date('2026-01-10T01:00:00Z'));
  // A quarter of an hour earlier than the message: a recovery point that does not hold it.
  earlier = await f.backup(new Date('2026-01-10T09:00:00Z'), { recoveryPoint: true });
  const c = await f.imap(`${user.login}@${user.domain}`);
  try {
    const raw = Buffer.from(`Message-ID: ${MESSAGE_ID}\r\nFrom: <accounts@acme.test>\r\nTo: <${user.login}@${user.domain}>\r\nSubject: ${SUBJECT}\r\nDate: Sat, 10 Jan 2026 09:05:00 +0000\r\n\r\nPaid.\r\n`);
    await c.append('INBOX', raw, ['\\Seen', '\\Flagged'], new Date('2026-01-10T09:05:00Z'));
  } finally {
    await c.logout();
  }
  env = await startConsoleUnderTest({ installation: { port: f.host, productVersion: 'test', mailer: null } });
  const r = await api('PUT', '/settings', {
    retentionDays: 7, backupEmails: true, backupArchivedEmails: false, backupTime: '01:00', repositoryLocation: f.repoDir, skippedTags: [],
    recoveryPointMinutes: 15,
  });
  expect(r.statusCode, r.body).toBe(200);
  // The next quarter-hour's recovery point, as the schedule starts it: a task of kind recovery-point.
  const started = await api('POST', '/recovery-points');
  expect(started.statusCode, started.body).toBe(202);
  const task = await finished(started.json().task.id);
  expect(task).toMatchObject({ kind: 'recovery-point', status: 'SUCCEEDED', title: 'Mail recovery point' });
  point = (await api('GET', `/generations/${task.result.generationId}`)).json();
  expect(point).toMatchObject({ trigger: 'recovery-point', status: 'VALID' });
  // The user deletes the message before the next nightly generation.
  const d = await f.imap(`${user.login}@${user.domain}`);
  try {
    const lock = await d.getMailboxLock('INBOX');
    try {
      const uids = (await d.search({ header: { 'message-id': MESSAGE_ID } }, { uid: true })) as number[];
      expect(uids).toHaveLength(1);
      await d.messageDelete(uids, { uid: true });
    } finally {
      lock.release();
    }
  } finally {
    await d.logout();
  }
}, 300_000);
afterAll(async () => {
  await env?.close();
  await f?.close();
});

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

/** A datetime-local value (the browser's own time zone) for an instant. */
function localInput(page: Page, iso: string): Promise<string> {
  return page.evaluate((t) => {
    const d = new Date(t);
    const p = (n: number) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }, iso);
}

describe('Mail as of', () => {
  it('the generations list the recovery points marked as such; the nightly stays the default', async () => {
    const gens = (await api('GET', '/generations/_detailed')).json() as { id: string; trigger: string }[];
    expect(gens.map((g) => [g.id, g.trigger])).toEqual([[point.id, 'recovery-point'], [earlier.id, 'recovery-point'], [nightly.id, 'cli']]);
    expect((await inbox()).some((m) => m.messageId === MESSAGE_ID)).toBe(false);
    // BlueMind's own generations form knows full generations only.
    const bm = (await api('GET', '/generations')).json() as { protectionTime: number }[];
    expect(bm.map((g) => g.protectionTime)).toEqual([Date.parse('2026-01-10T01:00:00Z')]);
  });

  it('restores one message from a 15-minute recovery point chosen by time', async () => {
    const context = await env.browser.newContext({ viewport: { width: 1280, height: 1000 }, locale: 'en-GB' });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    await page.goto(env.console.url);
    await page.getByLabel('Login').fill(ACCOUNT.login);
    await page.getByLabel('Password').fill(ACCOUNT.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const nav = page.getByRole('navigation', { name: 'Console navigation' });
    await nav.waitFor();
    await nav.getByRole('link', { name: 'Restore', exact: true }).click();

    const generation = page.locator('dp-restore-browser #generation');
    await generation.waitFor();
    await expect.poll(() => generation.inputValue()).toBe(nightly.id);
    expect(await generation.locator(`option[value="${point.id}"]`).textContent()).toContain('mail recovery point');

    // A time between the earlier recovery point and the message: that recovery point, which lacks the message.
    const asOf = page.getByLabel('Mail as of');
    await asOf.fill(await localInput(page, '2026-01-10T09:10:00Z'));
    await expect.poll(() => generation.inputValue()).toBe(earlier.id);
    // After the last recovery point: it is the one.
    await asOf.fill(await localInput(page, new Date(Date.parse(point.protectionTime) + 60_000).toISOString()));
    await expect.poll(() => generation.inputValue()).toBe(point.id);
    await expect.poll(() => page.locator('#mail-as-of-note').textContent()).toContain('Mail recovery point of');

    await page.getByLabel('Kind').selectOption('USER');
    await page.getByLabel('Search', { exact: true }).fill(user.login);
    const row = page.locator(`tr[data-entity="${user.uid}"]`);
    await row.waitFor();
    await row.getByRole('button', { name: `Restore ${user.displayname}…` }).click();
    const panel = page.locator('#entity-panel');
    // Mail operations only: the recovery point holds no calendars.
    await panel.getByText('Restore the mailbox into a folder').waitFor();
    expect(await panel.locator('fieldset[part="operations"]').textContent()).not.toContain('calendars');
    expect(await panel.locator('dp-container-browser').count()).toBe(0);
    await panel.locator('button[data-folder="INBOX"]').click();
    await panel.getByLabel('Search subject or sender').fill('Invoice 4711');
    await panel.getByLabel('Search subject or sender').press('Enter');
    await expect.poll(() => panel.locator('tr[data-message]').count()).toBe(1);
    await panel.getByLabel(`Select ${SUBJECT}`).check();
    await shot(page, 'restore-recovery-point-01-message');
    await panel.getByRole('button', { name: 'Restore the selected message' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Restore' }).click();
    const progress = page.locator('dp-task-progress');
    await progress.waitFor();
    await progress.getByText('Finished', { exact: true }).waitFor({ timeout: 60_000 });
    await shot(page, 'restore-recovery-point-02-done');
    await context.close();

    const back = (await inbox()).filter((m) => m.messageId === MESSAGE_ID);
    expect(back).toHaveLength(1);
    expect(back[0]).toMatchObject({ subject: SUBJECT, flags: ['\\Flagged', '\\Seen'], internalDate: Date.parse('2026-01-10T09:05:00Z') });
    const audit = (await api('GET', '/audit?action=restore.end')).json();
    expect(audit.items[0]).toMatchObject({ actor: ACCOUNT.login, generationId: point.id, result: 'ok' });
  });

  it('the settings form turns recovery points on, every N minutes, kept N days; 1e3 or out of bounds is refused beside the field', async () => {
    const context = await env.browser.newContext({ viewport: { width: 1280, height: 1000 }, locale: 'en-GB' });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    try {
      await page.goto(env.console.url);
      await page.getByLabel('Login').fill(ACCOUNT.login);
      await page.getByLabel('Password').fill(ACCOUNT.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('link', { name: 'Configuration' }).click();
      const minutes = page.getByLabel('Every (minutes)');
      await minutes.waitFor();
      expect(await minutes.isDisabled()).toBe(true);
      await page.getByLabel('Back up the mail between the nightly backups').check();
      await minutes.fill('1e3');
      await page.getByLabel('Keep recovery points (days)').fill('31');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByText('A whole number of minutes between 5 and 720.').waitFor();
      await page.getByText('A whole number of days between 1 and 30.').waitFor();
      expect(await minutes.getAttribute('aria-invalid')).toBe('true');
      expect((await api('GET', '/settings')).json()).toMatchObject({ recoveryPointsEnabled: false, recoveryPointMinutes: 15, recoveryPointRetentionDays: 2 });

      await minutes.fill('30');
      await page.getByLabel('Keep recovery points (days)').fill('3');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.locator('[data-saved-state="saved"]').waitFor();
      await expect.poll(async () => (await api('GET', '/settings')).json()).toMatchObject({ recoveryPointsEnabled: true, recoveryPointMinutes: 30, recoveryPointRetentionDays: 3 });
    } finally {
      await context.close();
      // Off again: no recovery point starts on its own while the suite runs.
      const s = (await api('GET', '/settings')).json();
      const { timeZone: _z, repositoryFilesystem: _f, updatedAt: _u, updatedBy: _b, postBackupScript: _p, ...update } = s;
      expect((await api('PUT', '/settings', { ...update, recoveryPointsEnabled: false })).statusCode).toBe(200);
    }
  });
});
