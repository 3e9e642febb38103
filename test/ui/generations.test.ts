import 'reflect-metadata';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NotFoundError } from '../../server/dataprotect/errors.js';
import type { Generation } from '../../server/dataprotect/model.js';
import type { GenerationService } from '../../server/dataprotect/services.js';
import { TaskRegistry } from '../../server/jobs/task-registry.js';
import { ACCOUNT, SCREENSHOTS, startConsoleUnderTest, type ConsoleUnderTest } from './console-harness.js';

// dp-generations rendering, protection and the delete flow, on a fixture list of generations (a component test: the list
// comes from a fixture GenerationService, not from backups).

const day = (d: number, h = 1) => new Date(Date.UTC(2026, 10, d, h, 0, 0)).toISOString();
const part = (id: string, tag: string, status: Generation['status'], d: number, seconds: number, size: number, messages: string[] = []) => ({
  id,
  server: 'bm-master',
  tag,
  status,
  begin: day(d),
  end: new Date(Date.parse(day(d)) + seconds * 1000).toISOString(),
  sizeRead: size,
  sizeAdded: Math.round(size / 10),
  sizeTotal: size,
  messages,
});

function fixture(): Generation[] {
  return [
    {
      id: 'g-24', protectionTime: day(24), status: 'INVALID', runStatus: 'ERROR', productVersion: '0.1.0', formatVersion: 1, protected: false,
      sizeRead: 3_400_000_000, sizeAdded: 120_000_000, sizeTotal: 3_400_000_000, trigger: 'schedule', end: day(24, 2), durationSeconds: 3600,
      parts: [
        part('p1', 'bm/pgsql', 'VALID', 24, 42, 900_000_000),
        part('p2', 'mail/imap', 'INVALID', 24, 300, 2_500_000_000, ['reading /var/spool/bm-mail/u42: permission denied']),
      ],
    },
    {
      id: 'g-23', protectionTime: day(23), status: 'VALID', runStatus: 'OK', productVersion: '0.1.0', formatVersion: 1, protected: false,
      sizeRead: 3_300_000_000, sizeAdded: 3_000_000_000, sizeTotal: 3_300_000_000, trigger: 'api', end: day(23, 2), durationSeconds: 3600,
      parts: [part('p3', 'bm/pgsql', 'VALID', 23, 40, 880_000_000), part('p4', 'mail/imap', 'VALID', 23, 290, 2_420_000_000)],
    },
  ];
}

let env: ConsoleUnderTest;
let generations: Generation[];
beforeAll(async () => {
  generations = fixture();
  env = await startConsoleUnderTest({
    generations: (c): GenerationService => ({
      list: async () => generations,
      get: async (id) => generations.find((g) => g.id === id) ?? Promise.reject(new NotFoundError(`no generation ${id}`)),
      forget: async (id, by) => {
        const task = await c.resolve(TaskRegistry).start({ kind: 'forget', title: `Forget ${id}`, actor: { login: by.login, uid: by.uid }, target: id }, async (ctx) => {
          await new Promise((r) => setTimeout(r, 300));
          generations = generations.filter((g) => g.id !== id);
          ctx.info(`generation ${id} forgotten`);
        });
        return { task, alreadyRunning: false };
      },
      sync: async () => Promise.reject(new Error('not in this test')),
      protect: async (id) => mark(id, true),
      unprotect: async (id) => mark(id, false),
    }),
  });
});
afterAll(async () => env?.close());

async function mark(id: string, value: boolean): Promise<Generation> {
  await new Promise((r) => setTimeout(r, 200)); // the button is disabled meanwhile
  const g = generations.find((x) => x.id === id);
  if (!g) throw new NotFoundError(`no generation ${id}`);
  g.protected = value;
  return g;
}

async function signedIn(): Promise<Page> {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-GB' });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000); // generous: Chromium is slow to lay out on a busy machine
  await page.goto(`${env.console.url}/#/backup/protected-data/navigator`);
  await page.getByLabel('Password').fill(ACCOUNT.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Console navigation' }).waitFor();
  return page;
}

it('lists generations with status, size and parts (per server and tag, with status, duration and messages)', async () => {
  const page = await signedIn();
  const rows = page.locator('tr[data-generation]');
  await rows.first().waitFor();
  expect(await rows.count()).toBe(2);
  const first = await rows.nth(0).textContent();
  expect(first).toContain('Invalid');
  expect(first).toContain('mail/imap');
  expect(first).toContain('bm-master');
  expect(first).toContain('permission denied');
  expect(first).toContain('5 min 0 s');
  expect(first).toContain('3.2 GB');
  expect(await rows.nth(1).textContent()).toContain('Valid');
  await page.screenshot({ path: path.join(SCREENSHOTS, '09-generations-list.png'), fullPage: true });
  const overflow = await page.evaluate(() => {
    const d = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document;
    return d.documentElement.scrollWidth - d.documentElement.clientWidth;
  });
  expect(overflow).toBeLessThanOrEqual(0);
  await page.context().close();
});

it('protects a generation: the lock shows on its row, and unprotect removes it', async () => {
  const page = await signedIn();
  const row = page.locator('tr[data-generation="g-23"]');
  await row.waitFor();
  expect(await page.locator('[part="lock"]').count()).toBe(0);
  const protect = page.getByRole('button', { name: /Protect the generation of 23/ });
  await protect.click();
  const lock = row.getByRole('img', { name: 'Protected: kept whatever the retention policy' });
  await lock.waitFor();
  expect(generations.find((g) => g.id === 'g-23')?.protected).toBe(true);
  expect(await page.locator('tr[data-generation="g-24"] [part="lock"]').count()).toBe(0);
  await page.screenshot({ path: path.join(SCREENSHOTS, '10a-generations-protected.png'), fullPage: true });

  // Unprotect, with the keyboard.
  const unprotect = page.getByRole('button', { name: /Give the generation of 23 .* back to retention/ });
  await unprotect.focus();
  await page.keyboard.press('Enter');
  await lock.waitFor({ state: 'detached' });
  expect(generations.find((g) => g.id === 'g-23')?.protected).toBe(false);
  await page.getByRole('button', { name: /Protect the generation of 23/ }).waitFor();
  await page.context().close();
});

it('deletes a generation after confirmation, with the keyboard, and follows the task', async () => {
  const page = await signedIn();
  const del = page.getByRole('button', { name: /Delete the generation of 23/ });
  await del.waitFor();
  await del.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Delete this generation?' });
  await dialog.waitFor();
  expect(await dialog.textContent()).toContain('Forgetting protected data is permanent');
  await page.screenshot({ path: path.join(SCREENSHOTS, '10-generations-confirm.png') });
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  expect(generations.map((g) => g.id)).toEqual(['g-24', 'g-23']);

  await del.focus();
  await page.keyboard.press('Enter');
  await dialog.waitFor();
  await page.keyboard.press('Tab'); // from Cancel to Delete
  await page.keyboard.press('Enter');
  await page.locator('dp-task-progress [data-status="SUCCEEDED"]').waitFor();
  await page.locator('dp-task-progress li', { hasText: 'generation g-23 forgotten' }).waitFor();
  await page.locator('tr[data-generation="g-23"]').waitFor({ state: 'detached' });
  // The list is fetched again once the task ends: polled, as a row may be redrawn meanwhile.
  await expect.poll(() => page.locator('tr[data-generation]').count(), { timeout: 60_000 }).toBe(1);
  await page.locator('tr[data-generation="g-24"]').waitFor();
  await page.screenshot({ path: path.join(SCREENSHOTS, '11-generations-after-delete.png'), fullPage: true });
  await page.context().close();
});
