import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referenceHostServices, type StandaloneBackups } from '../../plugin/standalone/reference-host.js';
import { stopDovecot } from '../../server/host/reference/dovecot.js';
import { parseDatabaseUrl, withDatabase } from '../../server/pg/settings.js';
import { PG_BASE } from '../http/harness.js';
import { ACCOUNT, SCREENSHOTS, startConsoleUnderTest, type ConsoleUnderTest } from './console-harness.js';

// Code passed to page.evaluate runs in the page; the Node tsconfig has no DOM types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const getComputedStyle: any;

// What an administrator reads when a task fails: the location checked beside the field when saved, a real backup
// that fails (its location became a file after it was saved) explained with what to do, the bar red, and the task
// found again in the task history with its log; in English and in French.

let env: ConsoleUnderTest;
let reference: StandaloneBackups;
let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'dp-feedback-'));
  reference = await referenceHostServices({
    databaseUrl: `${PG_BASE}/postgres`, hostRoot: path.join(work, 'host'), users: 2,
    hostDatabase: withDatabase(parseDatabaseUrl(`${PG_BASE}/postgres`), `dp_test_feedback_host_${randomBytes(4).toString('hex')}`),
  });
  env = await startConsoleUnderTest(reference.services);
}, 300_000);
afterAll(async () => {
  await env?.close();
  if (reference) await stopDovecot(reference.host.layout).catch(() => {});
  await reference?.dropHostDatabase().catch(() => {});
  if (work) await rm(work, { recursive: true, force: true });
});

async function signedIn(locale: 'en' | 'fr', hash: string): Promise<Page> {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB' });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000); // generous: Chromium is slow to lay out on a busy machine
  await page.goto(env.console.url);
  await page.getByLabel('Login').fill(ACCOUNT.login);
  await page.getByLabel('Password').fill(ACCOUNT.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Console navigation' }).waitFor();
  if (locale === 'fr') {
    await page.evaluate(() => (globalThis as unknown as { localStorage: { setItem(k: string, v: string): void } }).localStorage.setItem('dp.locale', 'fr'));
  }
  await page.goto(`${env.console.url}/#/${hash}`);
  await page.reload();
  await page.getByRole('navigation').first().waitFor();
  return page;
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

describe('task feedback and settings', () => {
  let share: string;
  let location: string;

  it('settings: 1e3 days is refused beside the field; a location is checked when saved, the answer beside it (English)', async () => {
    share = path.join(work, 'share');
    location = path.join(share, 'repository');
    await mkdir(share, { recursive: true });
    const page = await signedIn('en', 'backup/settings/configuration');
    const retention = page.getByLabel('Retention (days)');
    await retention.fill('1e3');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#retentionDays-error').getByText('A whole number of days between 1 and 3650.').waitFor();
    await retention.fill('7');
    expect(await page.getByLabel('Post-backup script').getAttribute('readonly')).not.toBeNull();
    await page.getByText(/in the time zone of the server: \S+/).waitFor();
    await page.getByLabel('Repository location').fill(location);
    await page.getByRole('button', { name: 'Save' }).click();
    const check = page.locator('[data-location-check="ok"]');
    await check.waitFor();
    expect(await check.textContent()).toBe('Checked when saved: reachable, writable, and empty or a repository of ours.');
    // The answer sits in the location's field, not in a toast elsewhere.
    expect(await page.locator('.field', { has: page.locator('#repositoryLocation') }).locator('[data-location-check="ok"]').count()).toBe(1);
    await shot(page, '20-settings-location-checked');

    // A location that cannot be used: the server's reason, beside the field.
    await page.getByLabel('Repository location').fill('/etc/dp');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#repositoryLocation-error').getByText(/system folder \/etc/).waitFor();
    expect(await page.locator('[data-location-check="ok"]').count()).toBe(0);
    await page.context().close();
  });

  it('a backup that fails is explained with what to do, its bar red, its status announced (English)', async () => {
    // Saved while usable; then the share's folder becomes a file, as a share that went away and left a file behind.
    await rm(share, { recursive: true, force: true });
    await writeFile(share, 'not a folder\n');
    const page = await signedIn('en', 'backup/protected-data/navigator');
    await page.getByRole('button', { name: 'Backup now' }).click();
    const progress = page.locator('dp-task-progress');
    await progress.locator('[data-status="FAILED"]').waitFor({ timeout: 120_000 });
    expect(await progress.locator('[part="title"]').textContent()).toBe('Backup of the installation');
    const alert = progress.getByRole('alert');
    expect(await alert.textContent()).toMatch(/^A part of .*\/share\/repository.* is not a folder: check the repository location in the settings\.$/);
    expect(await alert.getAttribute('data-error-key')).toBe('error.path.notFolder');
    const bar = progress.locator('[part="bar-fill"]');
    const red = await bar.evaluate((el) => getComputedStyle(el).backgroundColor);
    const danger = await progress.locator('.status-FAILED').evaluate((el) => getComputedStyle(el).color);
    expect(red).toBe(danger);
    const announced = progress.locator('[aria-live="polite"][role="status"]');
    expect(await announced.textContent()).toBe('Backup of the installation: Failed');
    expect(await progress.locator('[part="log"]').textContent()).toContain('is not a folder: check the repository location');
    // The navigator reads the generations again: the same explanation (503), never "the server failed" (500).
    const listing = page.locator('dp-generations [data-problem-status]');
    await listing.waitFor();
    expect(await listing.getAttribute('data-problem-status')).toBe('503');
    expect(await listing.textContent()).toContain('is not a folder: check the repository location in the settings.');
    await shot(page, '21-backup-failed-explained');
    await page.context().close();
  });

  it('the task history lists the tasks, filters them, and shows a task with its log (English)', async () => {
    const page = await signedIn('en', 'backup/protected-data/tasks');
    await page.getByRole('heading', { name: 'Task history' }).waitFor();
    const failed = page.locator('tr[data-status="FAILED"]');
    await failed.first().waitFor();
    await page.getByLabel('Status').selectOption('SUCCEEDED');
    await page.getByText('No task matches.').waitFor();
    await page.getByLabel('Status').selectOption('FAILED');
    await page.getByLabel('Kind').selectOption('backup');
    await failed.first().waitFor();
    expect(await page.locator('tr[data-task]').count()).toBe(await failed.count());
    await page.getByRole('button', { name: 'Show the log of Backup of the installation' }).first().click();
    const shown = page.locator('dp-task-progress');
    await shown.locator('[data-status="FAILED"]').waitFor();
    await shown.locator('[part="log"]').getByText(/is not a folder/).first().waitFor();
    await shot(page, '22-task-history');
    await page.context().close();
  });

  it('the same in French: the title, the explained error and the history in the console language', async () => {
    const page = await signedIn('fr', 'backup/protected-data/tasks');
    await page.getByRole('heading', { name: 'Historique des tâches' }).waitFor();
    await page.getByLabel('État').selectOption('FAILED');
    await page.getByRole('button', { name: "Voir le journal de Sauvegarde de l'installation" }).first().click();
    const shown = page.locator('dp-task-progress');
    await shown.locator('[data-status="FAILED"]').waitFor();
    expect(await shown.locator('[part="title"]').textContent()).toBe("Sauvegarde de l'installation");
    expect(await shown.getByRole('alert').textContent()).toMatch(/^Une partie de .*\/share\/repository.* n'est pas un dossier : vérifiez l'emplacement du dépôt dans les paramètres\.$/);
    expect(await shown.locator('[aria-live="polite"][role="status"]').textContent()).toBe("Sauvegarde de l'installation : En échec");
    await shot(page, '23-task-history-fr');

    // The settings in French: the location check beside the field.
    await rm(share, { force: true });
    await mkdir(share, { recursive: true });
    await page.goto(`${env.console.url}/#/backup/settings/configuration`);
    await page.getByLabel('Emplacement du dépôt').fill(path.join(share, 'repository-fr'));
    await page.getByRole('button', { name: 'Enregistrer' }).click();
    const check = page.locator('[data-location-check="ok"]');
    await check.waitFor();
    expect(await check.textContent()).toBe("Vérifié à l'enregistrement : joignable, accessible en écriture, et vide ou déjà un de nos dépôts.");
    await page.getByLabel('Rétention (jours)').fill('1e3');
    await page.getByRole('button', { name: 'Enregistrer' }).click();
    await page.locator('#retentionDays-error').waitFor();
    expect(await page.locator('#retentionDays-error').textContent()).not.toBe('');
    await shot(page, '24-settings-fr');
    await page.context().close();
  });
});
