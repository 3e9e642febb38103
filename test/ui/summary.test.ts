import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referenceHostServices, type StandaloneBackups } from '../../plugin/standalone/reference-host.js';
import { stopDovecot } from '../../server/host/reference/dovecot.js';
import { BACKUP_RUNNER } from '../../server/dataprotect/services.js';
import { SettingsService } from '../../server/dataprotect/settings.js';
import { ClusterCoordinator } from '../../server/jobs/cluster.js';
import { BackupScheduler } from '../../server/jobs/scheduler.js';
import { TaskRegistry } from '../../server/jobs/task-registry.js';
import { parseDatabaseUrl, withDatabase } from '../../server/pg/settings.js';
import { PG_BASE } from '../http/harness.js';
import { ACCOUNT, SCREENSHOTS, startConsoleUnderTest, type ConsoleUnderTest } from './console-harness.js';

// The navigator's answer to "am I protected?" on the reference host, in English and French: the summary above
// the generations after a real backup, a restore rehearsal started from the navigator with its result per part
// and its duration, a repository check, and the rehearsal scheduled from the settings form.

// The page's own function, evaluated in the browser (this file is compiled without the DOM's types).
declare const getComputedStyle: (el: unknown) => { backgroundColor: string; color: string };

let env: ConsoleUnderTest;
let reference: StandaloneBackups;
let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'dp-summary-ui-'));
  reference = await referenceHostServices({
    databaseUrl: `${PG_BASE}/postgres`, hostRoot: path.join(work, 'host'), users: 2,
    hostDatabase: withDatabase(parseDatabaseUrl(`${PG_BASE}/postgres`), `dp_test_summary_host_${randomBytes(4).toString('hex')}`),
  });
  env = await startConsoleUnderTest(reference.services);
  // A real backup, so that there is something to be protected by.
  const r = await api('POST', 'backups');
  const done = await env.console.plugin.container.resolve(TaskRegistry).whenDone(((await r.json()) as { task: { id: string } }).task.id);
  if (done?.status !== 'SUCCEEDED') throw new Error(`the backup did not succeed: ${done?.error}`);
}, 300_000);
afterAll(async () => {
  await env?.close();
  if (reference) await stopDovecot(reference.host.layout).catch(() => {});
  await reference?.dropHostDatabase().catch(() => {});
  if (work) await rm(work, { recursive: true, force: true });
});

function api(method: string, p: string, body?: unknown): Promise<Response> {
  return fetch(`${env.console.url}/api/dataprotect/${p}`, {
    method,
    headers: { 'x-bm-apikey': ACCOUNT.apiKey, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
}

async function signedIn(locale: 'en' | 'fr', hash: string): Promise<Page> {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-GB' });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
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

/** The text of an element with its whitespace collapsed (templates break lines). */
async function text(l: ReturnType<Page['locator']>): Promise<string> {
  return ((await l.textContent()) ?? '').replace(/\s+/g, ' ').trim();
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

describe('the navigator answers "am I protected?"', () => {
  it('English: the summary after a backup; a rehearsal started from the navigator shows its result per part and its duration', async () => {
    const page = await signedIn('en', 'backup/protected-data/navigator');
    const summary = page.locator('dp-generations [part="summary"]');
    await summary.getByRole('heading', { name: 'Am I protected?' }).waitFor();
    await summary.locator('[data-summary="last-success"]').getByText(/(seconds?|minutes?) ago|now/).waitFor();
    expect(await summary.locator('[data-summary="next-run"]').textContent()).not.toContain('Not scheduled');
    expect(await text(summary.locator('[data-summary="repository"]'))).toMatch(/stored · .* free of .* \(\d+%\)/);
    expect(await summary.locator('[data-summary="protected"]').textContent()).toMatch(/deduplication ratio ×/);
    expect(await summary.locator('[data-summary="last-rehearsal"]').textContent()).toContain('None yet');
    expect(await summary.locator('[data-warning="no-success"]').count()).toBe(0);

    // The generation's row: trigger, duration, version, what each part protects beside what it added.
    const row = page.locator('tr[data-generation]').first();
    expect(await row.locator('[data-trigger]').textContent()).toContain('Manual');
    expect(await row.textContent()).toContain('Browse and restore');
    expect(await text(row.locator('[data-part-sizes]').first())).toMatch(/^protects \d.*, added \d/);

    await page.getByRole('button', { name: 'Rehearse a restore now' }).click();
    await page.locator('dp-generations dp-task-progress [data-status="SUCCEEDED"]').waitFor({ timeout: 240_000 });
    const rehearsal = summary.locator('[data-summary="last-rehearsal"]');
    await rehearsal.locator('[data-result="passed"]').waitFor();
    expect(await text(rehearsal.locator('[data-result="passed"]'))).toMatch(/^Passed, .* ago, in \d/);
    const parts = rehearsal.locator('[data-verdict]');
    expect(await parts.count()).toBeGreaterThanOrEqual(3);
    for (const text of await parts.allTextContents()) expect(text).toContain('same as the generation');
    await shot(page, '30-summary-rehearsal-en');

    // Check the repository, reading a sample of the data.
    await page.locator('#check-mode').selectOption('sample');
    await page.getByRole('button', { name: 'Check the repository' }).click();
    await summary.locator('[data-summary="last-check"] [data-result="passed"]').waitFor({ timeout: 120_000 });

    // Browse and restore: the restore page, opened on that generation.
    const id = await row.getAttribute('data-generation');
    await row.getByRole('button', { name: /^Browse and restore the generation of / }).click();
    await page.waitForURL(/#\/backup\/protected-data\/restore$/);
    await page.locator('dp-restore-browser tr').first().waitFor();
    expect(await page.locator('dp-restore-browser #generation').inputValue()).toBe(id);
    await page.context().close();
  }, 400_000);

  it('French: the same summary and the rehearsal\'s result, in French', async () => {
    const page = await signedIn('fr', 'backup/protected-data/navigator');
    const summary = page.locator('dp-generations [part="summary"]');
    await summary.getByRole('heading', { name: 'Suis-je protégé ?' }).waitFor();
    await summary.locator('[data-summary="last-success"]').getByText(/il y a|maintenant/).waitFor();
    expect(await text(summary.locator('[data-summary="repository"]'))).toMatch(/stockés · .* libres sur .* \(\d+\s%\)/);
    expect(await summary.locator('[data-summary="protected"]').textContent()).toContain('taux de déduplication');
    const rehearsal = summary.locator('[data-summary="last-rehearsal"]');
    expect(await text(rehearsal.locator('[data-result="passed"]'))).toMatch(/^Réussie, il y a .*, en \d/);
    for (const text of await rehearsal.locator('[data-verdict]').allTextContents()) expect(text).toContain('identique à la génération');
    expect(await page.locator('tr[data-generation] [data-trigger]').first().textContent()).toContain('Manuelle');
    expect(await page.getByRole('button', { name: 'Répéter une restauration maintenant' }).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Synchroniser avec le dépôt' }).count()).toBe(1);
    await shot(page, '31-summary-rehearsal-fr');
    await page.context().close();
  }, 300_000);

  it('the rehearsal is scheduled from the settings form: on, Wednesday at 05:30; the navigator shows the next one', async () => {
    const page = await signedIn('en', 'backup/settings/configuration');
    const enable = page.getByLabel('Rehearse a restore of the newest valid generation on a schedule');
    expect(await enable.isChecked()).toBe(false);
    expect(await page.locator('#rehearsalDay').isDisabled()).toBe(true);
    await enable.check();
    await page.locator('#rehearsalDay').selectOption('wednesday');
    await page.getByLabel('Rehearsal time').fill('05:30');
    await page.getByText(/At this time, in the server's zone \(\S+\)/).waitFor();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('[data-saved-state="saved"]').waitFor();
    const saved = await (await api('GET', 'settings')).json();
    expect(saved).toMatchObject({ rehearsalEnabled: true, rehearsalDay: 'wednesday', rehearsalTime: '05:30' });
    // The schedule was re-armed: the next rehearsal is a Wednesday at 05:30 in the server's time zone.
    const next = new Date(((await (await api('GET', 'summary')).json()) as { nextRehearsal: string }).nextRehearsal);
    expect([next.getDay(), next.getHours(), next.getMinutes()]).toEqual([3, 5, 30]);
    await shot(page, '32-settings-rehearsal');

    await page.goto(`${env.console.url}/#/backup/protected-data/navigator`);
    await page.locator('dp-generations [data-summary="next-rehearsal"]').getByText(/^next: /).waitFor();
    await page.context().close();
  }, 300_000);

  it('a rehearsal of a damaged repository fails: its bar red, the summary says Failed and why', async () => {
    const { repositoryLocation } = (await (await api('GET', 'settings')).json()) as { repositoryLocation: string };
    // The largest pack holds mail: 64 bytes flipped in its middle, put back afterwards.
    const packs: { file: string; size: number }[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else packs.push({ file: p, size: (await stat(p)).size });
      }
    };
    await walk(path.join(repositoryLocation, 'data'));
    const biggest = packs.sort((a, b) => b.size - a.size)[0];
    const original = await readFile(biggest.file);
    const damaged = Buffer.from(original);
    for (let i = 0; i < 64; i++) damaged[Math.floor(damaged.length / 2) + i] ^= 0xff;
    await writeFile(biggest.file, damaged);
    try {
      const page = await signedIn('en', 'backup/protected-data/navigator');
      await page.getByRole('button', { name: 'Rehearse a restore now' }).click();
      const progress = page.locator('dp-generations dp-task-progress');
      await progress.locator('[data-status="FAILED"]').waitFor({ timeout: 240_000 });
      const bar = await progress.locator('[part="bar-fill"]').evaluate((el) => getComputedStyle(el).backgroundColor);
      const danger = await progress.locator('.status-FAILED').evaluate((el) => getComputedStyle(el).color);
      expect(bar).toBe(danger);
      const rehearsal = page.locator('dp-generations [part="summary"] [data-summary="last-rehearsal"]');
      await rehearsal.locator('[data-result="failed"]').waitFor();
      expect(await text(rehearsal.locator('[data-result="failed"]'))).toMatch(/^Failed, .* ago, in \d/);
      expect(await text(rehearsal.locator('[data-outcome-error]'))).not.toBe('');
      await shot(page, '33-summary-rehearsal-failed');
      await page.context().close();
    } finally {
      await writeFile(biggest.file, original);
    }
  }, 400_000);

  it('the off-site copy is set on the settings form; after the nightly run the navigator shows the last copy, in English and French', async () => {
    const offsite = path.join(work, 'offsite');
    const page = await signedIn('en', 'backup/settings/configuration');
    const field = page.getByLabel('Off-site copy');
    expect(await field.inputValue()).toBe('');
    await field.fill('offsite/relative');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#offsiteCopyLocation-error').getByText('An absolute directory (starting with /) or an s3:// URL.').waitFor();
    await field.fill(offsite);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('[data-saved-state="saved"]').waitFor();
    expect(((await (await api('GET', 'settings')).json()) as { offsiteCopyLocation: string }).offsiteCopyLocation).toBe(offsite);

    // The night's run, as the schedule starts it; its copy follows.
    const c = env.console.plugin.container;
    const tasks = c.resolve(TaskRegistry);
    const scheduler = new BackupScheduler(c.resolve(SettingsService), c.resolve(BACKUP_RUNNER), c.resolve(ClusterCoordinator), { info: () => {}, error: () => {} });
    expect(await scheduler.runScheduled(new Date())).toBe('started');
    const backup = (await tasks.list({ kind: 'backup', offset: 0, limit: 1 })).items[0];
    const ran = await tasks.whenDone(backup.id);
    expect(ran?.status, ran?.error ?? '').toBe('SUCCEEDED');
    let copyId: string | undefined;
    for (const end = Date.now() + 240_000; !copyId && Date.now() < end; ) {
      copyId = (await tasks.list({ kind: 'copy', offset: 0, limit: 1 })).items[0]?.id;
      if (!copyId) await new Promise((r) => setTimeout(r, 100));
    }
    // Listed as soon as its row is written, perhaps before it runs here: waited for until it has ended.
    let copied = await tasks.whenDone(copyId!);
    for (const end = Date.now() + 240_000; copied?.status === 'RUNNING' && Date.now() < end; ) {
      await new Promise((r) => setTimeout(r, 100));
      copied = await tasks.whenDone(copyId!);
    }
    expect(copied?.status, copied?.error ?? '').toBe('SUCCEEDED');
    const generation = ran!.result!.generationId as string;

    await page.goto(`${env.console.url}/#/backup/protected-data/navigator`);
    const en = page.locator('dp-generations [data-summary="last-offsite-copy"]');
    await en.locator('[data-result="passed"]').waitFor();
    const line = await text(en);
    expect(line).toMatch(/^Passed, .* ago, in \d/);
    expect(line).toContain(` · ${generation} `);
    expect(line).toMatch(/\d.* written to /);
    expect(line.endsWith(`written to ${offsite}`)).toBe(true);
    expect(await page.locator('dp-generations dt', { hasText: 'Last off-site copy' }).count()).toBe(1);
    await shot(page, '35-summary-offsite-copy-en');
    await page.context().close();

    const fr = await signedIn('fr', 'backup/protected-data/navigator');
    const frCopy = fr.locator('dp-generations [data-summary="last-offsite-copy"]');
    await frCopy.locator('[data-result="passed"]').waitFor();
    expect(await text(frCopy)).toMatch(/^Réussie, il y a .*, en \d.* écrits dans /);
    expect(await fr.locator('dp-generations dt', { hasText: 'Dernière copie hors site' }).count()).toBe(1);
    await fr.goto(`${env.console.url}/#/backup/settings/configuration`);
    await fr.reload();
    expect(await fr.getByLabel('Copie hors site').inputValue()).toBe(offsite);
    await shot(fr, '36-summary-offsite-copy-fr');
    await fr.context().close();
  }, 300_000);
});
