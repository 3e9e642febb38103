import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referenceHostServices, type StandaloneBackups } from '../../plugin/standalone/reference-host.js';
import { parseDatabaseUrl, withDatabase } from '../../server/pg/settings.js';
import { stopDovecot } from '../../server/host/reference/dovecot.js';
import { TaskRegistry } from '../../server/jobs/task-registry.js';
import { PG_BASE } from '../http/harness.js';
import { ACCOUNT, RESTORER, SCREENSHOTS, startConsoleUnderTest, type ConsoleUnderTest } from './console-harness.js';

// Code passed to page.evaluate runs in the page; the Node tsconfig has no DOM types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const document: any;

// Browser tests of the reference console in Debian's chromium: what an administrator does, click by click.

let env: ConsoleUnderTest;
let reference: StandaloneBackups;
let work: string;
beforeAll(async () => {
  // The console backs up a seeded reference host, as `npm start` does (its own database and files).
  work = await mkdtemp(path.join(tmpdir(), 'dp-console-host-'));
  reference = await referenceHostServices({
    databaseUrl: `${PG_BASE}/postgres`, hostRoot: path.join(work, 'host'), users: 4,
    hostDatabase: withDatabase(parseDatabaseUrl(`${PG_BASE}/postgres`), `dp_test_console_host_${randomBytes(4).toString('hex')}`),
  });
  env = await startConsoleUnderTest(reference.services);
});
afterAll(async () => {
  await env?.close();
  if (reference) await stopDovecot(reference.host.layout).catch(() => {}); // referenceHostServices started it
  await reference?.dropHostDatabase().catch(() => {});
  if (work) await rm(work, { recursive: true, force: true });
});

async function newPage(): Promise<Page> {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-GB' });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000); // generous: Chromium is slow to lay out on a busy machine
  return page;
}

async function signIn(page: Page): Promise<void> {
  await page.goto(env.console.url);
  await page.getByLabel('Login').fill(ACCOUNT.login);
  await page.getByLabel('Password').fill(ACCOUNT.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Console navigation' }).waitFor();
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

async function noHorizontalOverflow(page: Page): Promise<void> {
  const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  expect(widths.scroll).toBeLessThanOrEqual(widths.client);
}

describe('the reference console', () => {
  it('refuses a wrong password, then signs the administrator in and shows Backup and Restore', async () => {
    const page = await newPage();
    await page.goto(env.console.url);
    await shot(page, '01-sign-in');
    await page.getByLabel('Login').fill(ACCOUNT.login);
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('Wrong login or password');
    await page.getByLabel('Password').fill(ACCOUNT.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const nav = page.getByRole('navigation', { name: 'Console navigation' });
    await nav.waitFor();
    expect(await nav.textContent()).toContain('Backup and Restore');
    await expect(nav.getByRole('link', { name: 'Configuration' }).isVisible()).resolves.toBe(true);
    await expect(nav.getByRole('link', { name: 'DataProtect navigator' }).isVisible()).resolves.toBe(true);
    await page.context().close();
  });

  it('changes the settings, shows them saved, and they persist after a reload', async () => {
    const page = await newPage();
    await signIn(page);
    await page.getByRole('link', { name: 'Configuration' }).click();
    const retention = page.getByLabel('Retention (days)');
    await retention.waitFor();
    expect(await page.locator('[data-saved-state]').textContent()).toContain('default settings apply');
    await shot(page, '02-settings-defaults');

    await retention.fill('14');
    await page.getByLabel('Backup emails', { exact: true }).uncheck();
    await page.getByLabel('Backup archived emails').check();
    await page.getByLabel('Backup time').fill('03:15');
    await page.getByLabel('Repository location').fill('/srv/dp-console-test');
    await page.getByLabel('Skipped tags').fill('bm/es');
    expect(await page.locator('[data-saved-state]').textContent()).toContain('Unsaved changes');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('[data-saved-state="saved"]').waitFor();
    expect(await page.locator('[data-saved-state]').textContent()).toContain(ACCOUNT.login);
    await shot(page, '03-settings-saved');

    await page.reload();
    await page.getByLabel('Retention (days)').waitFor();
    await page.locator('[data-saved-state="saved"]').waitFor();
    expect(await page.getByLabel('Retention (days)').inputValue()).toBe('14');
    expect(await page.getByLabel('Backup emails', { exact: true }).isChecked()).toBe(false);
    expect(await page.getByLabel('Backup archived emails').isChecked()).toBe(true);
    expect(await page.getByLabel('Backup time').inputValue()).toBe('03:15');
    expect(await page.getByLabel('Repository location').inputValue()).toBe('/srv/dp-console-test');
    expect(await page.getByLabel('Skipped tags').inputValue()).toBe('bm/es');
    await noHorizontalOverflow(page);

    // And the API agrees: the console saved through the contract.
    const api = await fetch(`${env.console.url}/api/dataprotect/settings`, { headers: { 'X-BM-ApiKey': ACCOUNT.apiKey } });
    expect(await api.json()).toMatchObject({ retentionDays: 14, backupEmails: false, backupArchivedEmails: true, backupTime: '03:15' });
    await page.context().close();
  });

  it('shows validation messages beside the fields and does not save', async () => {
    const page = await newPage();
    await signIn(page);
    await page.getByRole('link', { name: 'Configuration' }).click();
    await page.getByLabel('Retention (days)').fill('0');
    await page.getByLabel('Repository location').fill('relative/path');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('A whole number of days between 1 and 3650.').waitFor();
    await page.getByText('An absolute directory (starting with /) or an s3:// URL.').waitFor();
    expect(await page.getByLabel('Retention (days)').getAttribute('aria-invalid')).toBe('true');
    await shot(page, '04-settings-invalid');
    const api = await fetch(`${env.console.url}/api/dataprotect/settings`, { headers: { 'X-BM-ApiKey': ACCOUNT.apiKey } });
    expect(((await api.json()) as { retentionDays: number }).retentionDays).not.toBe(0);
    await page.context().close();
  });

  it('is usable with the keyboard alone: sign in, reach the settings, save with Enter', async () => {
    const page = await newPage();
    await page.goto(env.console.url);
    await page.getByLabel('Login').focus();
    await page.keyboard.press('Tab');
    await page.keyboard.type(ACCOUNT.password);
    await page.keyboard.press('Enter');
    await page.getByRole('navigation', { name: 'Console navigation' }).waitFor();
    await page.getByRole('link', { name: 'Configuration' }).focus();
    await page.keyboard.press('Enter');
    await page.getByLabel('Retention (days)').waitFor();
    await page.getByLabel('Retention (days)').focus();
    await page.keyboard.press('Control+A');
    await page.keyboard.type('21');
    await page.keyboard.press('Enter');
    await page.locator('[data-saved-state="saved"]').waitFor();
    expect(await page.getByLabel('Retention (days)').inputValue()).toBe('21');
    await page.context().close();
  });

  it('speaks French when the console does', async () => {
    const page = await newPage();
    await signIn(page);
    await page.getByLabel('Language').selectOption('fr');
    await page.getByRole('link', { name: 'Configuration' }).click();
    await page.getByLabel('Rétention (jours)').waitFor();
    expect(await page.getByRole('navigation').textContent()).toContain('Sauvegarde et restauration');
    await page.getByRole('button', { name: 'Enregistrer' }).waitFor();
    await shot(page, '05-settings-fr');
    await page.getByRole('link', { name: 'Navigateur DataProtect' }).click();
    await page.getByRole('button', { name: 'Sauvegarder maintenant' }).waitFor();
    await page.getByText('Aucune génération pour le moment.').waitFor();
    await shot(page, '05b-generations-fr');
    await page.getByLabel('Langue').selectOption('en');
    await page.getByRole('button', { name: 'Backup now' }).waitFor();
    await page.context().close();
  });

  it('Backup now: follows a real backup of the reference host to its end, and the new generation is listed', async () => {
    // The settings test pointed the repository at /srv: back to a private directory for this run.
    const headers = { 'X-BM-ApiKey': ACCOUNT.apiKey, 'content-type': 'application/json' };
    const current = (await (await fetch(`${env.console.url}/api/dataprotect/settings`, { headers })).json()) as Record<string, unknown>;
    const { updatedAt: _u, updatedBy: _b, postBackupScript: _p, repositoryFilesystem: _f, timeZone: _z, ...settings } = current;
    const put = await fetch(`${env.console.url}/api/dataprotect/settings`, {
      method: 'PUT', headers, body: JSON.stringify({ ...settings, repositoryLocation: path.join(work, 'repository'), skippedTags: [] }),
    });
    expect(put.status).toBe(200);

    const page = await newPage();
    await signIn(page);
    await page.getByRole('link', { name: 'DataProtect navigator' }).click();
    await page.getByText('No generation yet.').waitFor();
    await page.getByRole('button', { name: 'Backup now' }).click();
    await page.locator('dp-task-progress [data-status]').waitFor();
    await page.locator('dp-task-progress [data-status="SUCCEEDED"]').waitFor({ timeout: 110_000 });
    const gens = (await (await fetch(`${env.console.url}/api/dataprotect/generations/_detailed`, { headers })).json()) as { id: string; status: string; runStatus: string; parts: { tag: string }[] }[];
    expect(gens).toHaveLength(1);
    expect(gens[0]).toMatchObject({ status: 'VALID', runStatus: 'OK' });
    // "Backup emails" was turned off by the settings test: no mail part.
    expect(gens[0].parts.map((p) => p.tag)).toEqual(['bm/pgsql', 'bm/conf', 'bm/conf', 'filehosting/data', 'mail/archive']);
    await page.locator(`tr[data-generation="${gens[0].id}"]`).waitFor();
    await shot(page, '06-generations-after-backup');
    await noHorizontalOverflow(page);
    await page.context().close();
  });

  it('a restore-only administrator sees only the pages and actions their role allows', async () => {
    const page = await newPage();
    await page.goto(env.console.url);
    await page.getByLabel('Login').fill(RESTORER.login);
    await page.getByLabel('Password').fill(RESTORER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const nav = page.getByRole('navigation', { name: 'Console navigation' });
    await nav.waitFor();
    await page.locator('tr[data-generation]').first().waitFor(); // landed on the navigator, with the generation made above
    expect(await nav.getByRole('link').allTextContents()).toEqual(['DataProtect navigator', 'Restore', 'Task history']);
    expect(await page.getByRole('button', { name: 'Backup now' }).count()).toBe(0);
    await page.goto(`${env.console.url}/#/backup/settings/configuration`);
    await page.getByText('You have no access to this page.').waitFor();
    const api = await page.evaluate(async () => {
      const key = (globalThis as unknown as { sessionStorage: { getItem(k: string): string } }).sessionStorage.getItem('dp.session');
      const r = await fetch('/api/dataprotect/settings', { headers: { 'X-BM-ApiKey': key } });
      return r.status;
    });
    expect(api).toBe(403);
    await shot(page, '13-restorer-navigator');
    await page.context().close();
  });

  it('the setup wizard step reports a location that holds no repository', async () => {
    const page = await newPage();
    await signIn(page);
    await page.getByRole('link', { name: 'Global restore' }).click();
    await page.getByLabel('Repository location').fill('/srv/old-backups');
    await page.getByRole('button', { name: 'Find generations' }).click();
    const problem = page.locator('[data-problem-status]');
    await problem.waitFor();
    expect(await problem.getAttribute('data-problem-status')).toBe('404');
    expect(await problem.textContent()).toContain('no repository at /srv/old-backups');
    await shot(page, '12-global-restore-no-repository');
    await page.context().close();
  });

  it('dp-task-progress offers the files a task made for download when it ends', async () => {
    const tasks = env.console.plugin.container.resolve(TaskRegistry);
    const ics = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n';
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const task = await tasks.start(
      { kind: 'restore', title: 'send.calendars.ics', actor: { login: ACCOUNT.login, uid: 'admin0_global.virt' } },
      async (ctx) => {
        await gate;
        await ctx.attach('calendar.ics', ics, 'text/calendar');
        ctx.info('calendar.ics ready');
      },
    );
    const page = await newPage();
    await signIn(page);
    await page.getByRole('link', { name: 'DataProtect navigator' }).click();
    await page.evaluate((id) => {
      const el = document.createElement('dp-task-progress');
      el.setAttribute('task-id', id);
      el.id = 'probe';
      document.querySelector('main .card')!.append(el);
    }, task.id);
    await page.locator('#probe [data-status="RUNNING"]').waitFor();
    release();
    const button = page.getByRole('button', { name: 'Download calendar.ics' });
    await button.waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
    expect(download.suggestedFilename()).toBe('calendar.ics');
    const saved = path.join(SCREENSHOTS, 'downloaded-calendar.ics');
    await download.saveAs(saved);
    expect((await import('node:fs')).readFileSync(saved, 'utf8')).toBe(ics);
    await shot(page, '14-task-files');
    await page.context().close();
  });

  it('dp-task-progress shows a task live (progress, log) and cancels it', async () => {
    const tasks = env.console.plugin.container.resolve(TaskRegistry);
    const task = await tasks.start(
      { kind: 'check', title: 'Check repository', actor: { login: ACCOUNT.login, uid: 'admin0_global.virt' } },
      async (ctx) => {
        ctx.progress({ done: 1, total: 3, unit: 'packs', message: 'reading pack 1' });
        ctx.info('reading pack 1');
        await new Promise((_, reject) => {
          if (ctx.signal.aborted) reject(ctx.signal.reason);
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
        });
      },
    );
    const page = await newPage();
    await signIn(page);
    await page.getByRole('link', { name: 'DataProtect navigator' }).click();
    await page.evaluate((id) => {
      const el = document.createElement('dp-task-progress');
      el.setAttribute('task-id', id);
      el.id = 'probe';
      document.querySelector('main .card')!.append(el);
    }, task.id);
    await page.locator('#probe [data-status="RUNNING"]').waitFor();
    await page.locator('#probe li', { hasText: 'reading pack 1' }).waitFor();
    expect(await page.locator('#probe [role="progressbar"]').getAttribute('aria-valuenow')).toBe('33');
    await shot(page, '07-task-running');
    await page.locator('#probe').getByRole('button', { name: 'Cancel task' }).click();
    await page.locator('#probe [data-status="CANCELLED"]').waitFor();
    await page.locator('#probe li', { hasText: 'cancel requested by' }).waitFor();
    await shot(page, '08-task-cancelled');
    expect((await tasks.get(task.id))?.status).toBe('CANCELLED');
    await page.context().close();
  });
});
