import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referenceHostServices, type StandaloneBackups } from '../../plugin/standalone/reference-host.js';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { runGeneration } from '../../server/dataprotect/generation/run.js';
import { withClient } from '../../server/pg/client.js';
import { parseDatabaseUrl, withDatabase } from '../../server/pg/settings.js';
import { freePort, startDovecot, stopDovecot } from '../../server/host/reference/dovecot.js';
import { CORE_SERVER, hostLayout } from '../../server/host/reference/layout.js';
import { SCHEMA_VERSION } from '../../server/host/reference/schema.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { recordTables } from '../global-restore/helpers.js';
import { PG_BASE } from '../http/harness.js';
import { ACCOUNT, SCREENSHOTS, startConsoleUnderTest, type ConsoleUnderTest } from './console-harness.js';

// The setup wizard's global restore step in Debian's chromium, for real: the console's reference host is backed
// up, damaged, then rebuilt from the wizard (location, generation, checks, wipe, confirmation, progress, result).

let env: ConsoleUnderTest;
let reference: StandaloneBackups;
let work: string;
let repoDir: string;
let tables: Record<string, string[]>;
let confFile: { path: string; bytes: Buffer };

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'dp-wizard-host-'));
  const hostRoot = path.join(work, 'host');
  const hostDatabase = withDatabase(parseDatabaseUrl(`${PG_BASE}/postgres`), `dp_test_wizard_host_${randomBytes(4).toString('hex')}`);
  // Seeded and its Dovecot started on a free port first, so that the console takes them as they are and never
  // meets another Dovecot on the default port.
  await seedReference({ connection: hostDatabase, root: hostRoot, users: 3, force: false });
  await startDovecot(hostLayout(hostRoot), { port: await freePort() });
  reference = await referenceHostServices({ databaseUrl: `${PG_BASE}/postgres`, hostRoot, hostDatabase });
  repoDir = path.join(work, 'backups');
  const repo = await Repository.init(new LocalStorage(repoDir));
  try {
    const r = await runGeneration({
      repo, host: reference.host, trigger: 'cli', productVersion: SCHEMA_VERSION, backupEmails: true, backupArchivedEmails: true, skippedTags: [],
    });
    expect(r.generation.status).toBe('VALID');
  } finally {
    await repo.close();
  }
  tables = await recordTables(reference.host.database);
  const confDir = reference.host.layout.conf(CORE_SERVER);
  const name = (await fs.readdir(confDir, { recursive: true, withFileTypes: true })).find((e) => e.isFile())!;
  const p = path.join(name.parentPath, name.name);
  confFile = { path: p, bytes: await fs.readFile(p) };
  env = await startConsoleUnderTest(reference.services);
});
afterAll(async () => {
  await env?.close();
  if (reference) await stopDovecot(reference.host.layout).catch(() => {});
  await reference?.dropHostDatabase().catch(() => {});
  if (work) await rm(work, { recursive: true, force: true });
});

async function newPage(locale: string): Promise<Page> {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 }, locale });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000); // generous: Chromium is slow to lay out on a busy machine
  return page;
}

async function signIn(page: Page, labels = { login: 'Login', password: 'Password', submit: 'Sign in' }): Promise<void> {
  await page.goto(env.console.url);
  await page.getByLabel(labels.login).fill(ACCOUNT.login);
  await page.getByLabel(labels.password).fill(ACCOUNT.password);
  await page.getByRole('button', { name: labels.submit }).click();
  await page.getByRole('navigation').waitFor();
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

describe('the global restore step of the setup wizard', () => {
  it('rebuilds the damaged installation from location to result, wiping it after saying it is not blank', async () => {
    // The disaster, in small: rows and a configuration file lost after the backup.
    await withClient(reference.host.database, (c) => c.query('DELETE FROM t_calendar_vevent'));
    await fs.rm(confFile.path);
    expect(await recordTables(reference.host.database)).not.toEqual(tables);

    const page = await newPage('en-GB');
    await signIn(page);
    await page.getByRole('link', { name: 'Global restore' }).click();
    const steps = page.getByRole('list', { name: 'Steps of the global restore' });
    expect(await steps.locator('[aria-current="step"]').textContent()).toContain('Location');
    await page.getByLabel('Repository location').fill(repoDir);
    await page.getByRole('button', { name: 'Find generations' }).click();

    // Generations: date, status, product version, parts, sizes; the newest valid one chosen.
    const row = page.locator('tr[data-generation]');
    await row.waitFor();
    expect(await row.count()).toBe(1);
    const text = await row.textContent();
    for (const expected of ['Valid', SCHEMA_VERSION, 'format 1', 'bm/pgsql', 'mail/imap', 'bm/conf']) expect(text).toContain(expected);
    expect(await row.getByRole('radio').isChecked()).toBe(true);
    await shot(page, '20-global-restore-generations');
    await page.getByRole('button', { name: 'Check prerequisites' }).click();

    // Prerequisites: the running installation is not blank, plainly; the restore is refused until wipe is ticked.
    const notBlank = page.locator('[data-blank="false"]');
    await notBlank.waitFor();
    expect(await notBlank.textContent()).toContain('This installation is not blank.');
    expect(await notBlank.textContent()).toContain(reference.host.database.database);
    await page.locator('li[data-check="databases"][data-status="not-met"]').waitFor();
    expect(await page.locator('li[data-check="databases"]').textContent()).toContain('wipe');
    await page.locator('li[data-check="product"][data-status="met"]').waitFor();
    await page.locator('li[data-check="servers"][data-status="met"]').waitFor();
    const start = page.getByRole('button', { name: 'Restore the installation…' });
    expect(await start.isDisabled()).toBe(true);
    await shot(page, '21-global-restore-not-blank');

    await page.getByLabel("Wipe this installation's data first").check();
    await page.locator('li[data-check="databases"][data-status="warning"]').waitFor();
    await page.getByText('Every prerequisite is met: the restore can start.').waitFor();
    expect(await start.isEnabled()).toBe(true);
    await start.click();

    // The product's own dialog, not the browser's.
    const dialog = page.getByRole('dialog', { name: 'Rebuild this installation?' });
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain('Its current data will be removed first');
    await shot(page, '22-global-restore-confirm');
    await dialog.getByRole('button', { name: 'Rebuild the installation' }).click();

    // Progress per part, then the result with what to do next.
    await page.locator('dp-task-progress').waitFor();
    expect(await steps.locator('[aria-current="step"]').textContent()).toMatch(/Restore|Result/);
    const result = page.locator('[data-result]');
    await result.waitFor({ timeout: 150_000 });
    await shot(page, '23-global-restore-result');
    expect(await result.getAttribute('data-result'), (await result.textContent()) ?? '').toBe('SUCCEEDED');
    expect(await result.textContent()).toContain('The installation is restored.');
    for (const key of [`${CORE_SERVER} bm/pgsql`, `${CORE_SERVER} bm/conf`]) await result.locator(`li[data-part="${key}"]`).waitFor();
    const next = await page.locator('ol[part="next-steps"]').textContent();
    for (const word of ['certificate', 'subscription', 'plugins']) expect(next).toContain(word);
    expect(await page.locator('dp-task-progress [data-status="SUCCEEDED"]').count()).toBe(1);
    await shot(page, '23-global-restore-result');
    await page.context().close();

    // What was lost is back: every table row for row, the configuration file byte for byte.
    expect(await recordTables(reference.host.database)).toEqual(tables);
    expect(await fs.readFile(confFile.path)).toEqual(confFile.bytes);
  }, 300_000);

  it('speaks French: location, generations and prerequisites', async () => {
    const page = await newPage('fr-FR');
    await signIn(page, { login: 'Identifiant', password: 'Mot de passe', submit: 'Se connecter' });
    await page.getByRole('link', { name: 'Restauration globale' }).click();
    await page.getByRole('list', { name: 'Étapes de la restauration globale' }).waitFor();
    await page.getByLabel('Emplacement du dépôt').fill(repoDir);
    await page.getByRole('button', { name: 'Rechercher les générations' }).click();
    const row = page.locator('tr[data-generation]');
    await row.waitFor();
    expect(await row.textContent()).toContain('Valide');
    await page.getByRole('button', { name: 'Vérifier les prérequis' }).click();
    const notBlank = page.locator('[data-blank="false"]');
    await notBlank.waitFor();
    expect(await notBlank.textContent()).toContain("Cette installation n'est pas vierge.");
    expect(await page.locator('li[data-check="generation"]').textContent()).toContain('Rempli');
    await page.getByLabel("Effacer d'abord les données de cette installation").waitFor();
    await page.getByRole('button', { name: "Restaurer l'installation…" }).waitFor();
    await shot(page, '24-global-restore-fr');
    await page.context().close();
  });
});
