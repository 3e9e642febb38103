import 'reflect-metadata';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { ACCOUNT, SCREENSHOTS, startConsoleUnderTest, type ConsoleUnderTest } from '../ui/console-harness.js';
import { fixture, mailboxOverImap, type Fixture, type ImapMessage } from './fixture.js';

// The restore browser in the reference console, in Debian's chromium, against the seeded host: an administrator
// finds a user, opens their saved mailbox and restores a folder the user deleted; then opens their saved calendar
// and brings back one event the user deleted.

let f: Fixture;
let g1: GenerationView;
let env: ConsoleUnderTest;
let user: { uid: string; login: string; domain: string; displayname: string };
let saved: Map<string, ImapMessage[]>;

beforeAll(async () => {
  f = await fixture('browser', 8);
  [user] = await f.sql(
    `SELECT e.entry_uid AS uid, u.login, c.uid AS domain, e.displayname FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
       JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid LIMIT 1`,
  );
  g1 = await f.backup(new Date('2026-01-10T01:00:00Z'));
  env = await startConsoleUnderTest({ installation: { port: f.host, productVersion: 'test', mailer: null } });
  const r = await env.console.app.inject({
    method: 'PUT', url: '/api/dataprotect/settings', headers: { 'x-bm-apikey': ACCOUNT.apiKey, 'content-type': 'application/json' },
    payload: JSON.stringify({ retentionDays: 7, backupEmails: true, backupArchivedEmails: false, backupTime: '01:00', repositoryLocation: f.repoDir, skippedTags: [] }),
  });
  expect(r.statusCode, r.body).toBe(200);
  const c = await f.imap(`${user.login}@${user.domain}`);
  saved = await mailboxOverImap(c);
  await c.mailboxDelete('Projects/2026');
  await c.logout();
});
afterAll(async () => {
  await env?.close();
  await f?.close();
});

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

async function signIn(): Promise<{ page: Page; close: () => Promise<void> }> {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB' });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000); // generous: Chromium is slow to lay out on a busy machine
  await page.goto(env.console.url);
  await page.getByLabel('Login').fill(ACCOUNT.login);
  await page.getByLabel('Password').fill(ACCOUNT.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const nav = page.getByRole('navigation', { name: 'Console navigation' });
  await nav.waitFor();
  await nav.getByRole('link', { name: 'Restore', exact: true }).click();
  return { page, close: () => context.close() };
}

/** A calendar's events with their rows, database ids left out. */
async function calendarState(uid: string) {
  return f.sql(
    `SELECT i.uid, i.version, i.displayname, i.created, i.updated,
            (SELECT json_agg(to_jsonb(r) - 'item_id' ORDER BY r.recurid_timestamp NULLS FIRST, r.dtstart_timestamp) FROM t_calendar_vevent r WHERE r.item_id = i.id)::text AS ev,
            (SELECT to_jsonb(s) - 'item_id' FROM t_calendar_series s WHERE s.item_id = i.id)::text AS series
       FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1 ORDER BY i.uid`,
    [uid],
  );
}

describe('dp-restore-browser', () => {
  it('restores a deleted folder from the console: generation, search, entity, folder, confirm, progress', async () => {
    const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB' });
    const page = await context.newPage();
    page.setDefaultTimeout(60_000); // generous: Chromium is slow to lay out on a busy machine
    await page.goto(env.console.url);
    await page.getByLabel('Login').fill(ACCOUNT.login);
    await page.getByLabel('Password').fill(ACCOUNT.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const nav = page.getByRole('navigation', { name: 'Console navigation' });
    await nav.waitFor();
    await nav.getByRole('link', { name: 'Restore', exact: true }).click();

    // The generation is offered by date with its status; the entity list is paged on the server.
    const generation = page.locator('dp-restore-browser #generation');
    await generation.waitFor();
    expect(await generation.locator('option').count()).toBe(1);
    expect(await generation.locator('option').first().textContent()).toContain('Valid');
    await page.locator('tr[data-entity]').first().waitFor();
    expect(await page.getByText(/^1–25 of \d+$/).count()).toBe(1);

    await page.getByLabel('Kind').selectOption('USER');
    await page.getByLabel('Search', { exact: true }).fill(user.login);
    const row = page.locator(`tr[data-entity="${user.uid}"]`);
    await row.waitFor();
    await expect.poll(() => page.locator('tr[data-entity]').count()).toBe(1);
    await shot(page, 'restore-01-search');
    await row.getByRole('button', { name: `Restore ${user.displayname}…` }).click();

    // The operations that apply, with a sentence each; the saved mailbox's folders.
    const panel = page.locator('#entity-panel');
    await panel.getByText('Restore the mailbox into a folder').waitFor();
    expect(await panel.textContent()).toContain('restored-<date>');
    expect(await panel.textContent()).not.toContain('Restore the deleted user');
    await panel.locator('button[data-folder="Projects/2026"]').click();
    await panel.locator('tr[data-message]').first().waitFor();
    expect(await panel.locator('tr[data-message]').count()).toBe(saved.get('Projects/2026')!.length);
    await shot(page, 'restore-02-mailbox');

    await page.getByRole('button', { name: 'Restore the folder Projects/2026' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(`Restore a folder — Projects/2026 for ${user.displayname}. Are you sure?`);
    await dialog.getByRole('button', { name: 'Restore' }).click();

    // The task's progress, to the end.
    const progress = page.locator('dp-task-progress');
    await progress.waitFor();
    await progress.getByText('Finished', { exact: true }).waitFor({ timeout: 60_000 });
    await shot(page, 'restore-03-done');
    await context.close();

    const c = await f.imap(`${user.login}@${user.domain}`);
    const now = await mailboxOverImap(c);
    await c.logout();
    expect(now.get('Projects/2026')).toEqual(saved.get('Projects/2026'));
    const audit = (await env.console.app.inject({ method: 'GET', url: '/api/dataprotect/audit?action=restore.end', headers: { 'x-bm-apikey': ACCOUNT.apiKey } })).json();
    expect(audit.items[0]).toMatchObject({ actor: ACCOUNT.login, generationId: g1.id, result: 'ok' });
  });

  it('brings back one deleted event from the console: the user\'s saved calendar, the event flagged deleted, confirm, progress', async () => {
    const cal = `calendar:Default:${user.uid}`;
    const before = await calendarState(cal);
    const gone = before[1];
    const summary = (JSON.parse(gone.ev as string) as { summary: string; recurid_timestamp: string | null }[]).find((r) => !r.recurid_timestamp)!.summary;
    await f.sql(`DELETE FROM t_container_item WHERE container_id = (SELECT id FROM t_container WHERE uid = $1) AND uid = $2`, [cal, gone.uid]);

    const { page, close } = await signIn();
    await page.getByLabel('Kind').selectOption('USER');
    await page.getByLabel('Search', { exact: true }).fill(user.login);
    const row = page.locator(`tr[data-entity="${user.uid}"]`);
    await row.waitFor();
    await expect.poll(() => page.locator('tr[data-entity]').count()).toBe(1);
    await row.getByRole('button', { name: `Restore ${user.displayname}…` }).click();

    // The saved containers, then the calendar's events with their summary, date and whether they still exist.
    const panel = page.locator('#entity-panel');
    const containers = panel.locator('dp-container-browser');
    await containers.locator(`button[data-container="${cal}"]`).click();
    const item = containers.locator(`tr[data-item="${gone.uid}"]`);
    await item.waitFor();
    expect(await item.getAttribute('data-exists')).toBe('false');
    expect(await item.textContent()).toContain(summary);
    expect(await item.textContent()).toContain('Deleted since');
    expect(await containers.locator('tr[data-item][data-exists="true"]').count()).toBe(before.length - 1);
    await containers.getByLabel('Only what no longer exists').check();
    await expect.poll(() => containers.locator('tr[data-item]').count()).toBe(1);
    await item.getByRole('checkbox').check();
    await shot(page, 'restore-04-calendar');
    await containers.getByRole('button', { name: 'Bring back the selected item if missing' }).click();

    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(`Bring back chosen items: ${user.displayname}, 1 item for ${user.displayname}. Are you sure?`);
    await dialog.getByRole('button', { name: 'Restore' }).click();
    const progress = page.locator('dp-task-progress');
    await progress.waitFor();
    await progress.getByText('Finished', { exact: true }).waitFor({ timeout: 60_000 });
    await shot(page, 'restore-05-event-done');
    await close();

    expect(await calendarState(cal)).toEqual(before);
    const audit = (await env.console.app.inject({ method: 'GET', url: '/api/dataprotect/audit?action=restore.end', headers: { 'x-bm-apikey': ACCOUNT.apiKey } })).json();
    expect(audit.items[0]).toMatchObject({ actor: ACCOUNT.login, generationId: g1.id, result: 'ok' });
    expect(audit.items[0].detail).toMatchObject({ operation: 'addmissing.items', container: cal, items: 1 });
  });
});
