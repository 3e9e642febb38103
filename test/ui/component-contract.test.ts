import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, CHROMIUM_ARGS } from './console-harness.js';

// Code passed to page.evaluate runs in the page; the Node tsconfig has no DOM types.
declare const window: { components?: string[] };
declare const customElements: { get(tag: string): unknown };
declare const getComputedStyle: (el: unknown) => { backgroundColor: string; textTransform: string };

// What a host console relies on: every dp-* tag and event typed, every theme property and part documented in
// ui-components/README.md and true to the source, and a host's custom property really changing a rendered colour.

const SRC = path.resolve('ui-components/src');
const read = (file: string) => readFileSync(path.join(SRC, file), 'utf8');
const readme = readFileSync(path.resolve('ui-components/README.md'), 'utf8');

/** The tags and their class files, as define.ts registers them. */
const define = read('define.ts');
const componentsBlock = define.slice(define.indexOf('export const COMPONENTS'), define.indexOf('} as const'));
const TAGS = [...componentsBlock.matchAll(/'(dp-[a-z-]+)':/g)].map((m) => m[1]);
const fileOf = (tag: string) => `${tag}.ts`;

/** The README's section for one tag. */
function section(tag: string): string {
  const start = readme.indexOf(`### \`${tag}\``);
  expect(start, `README has a section for ${tag}`).toBeGreaterThan(-1);
  const next = readme.indexOf('\n### ', start + 1);
  return readme.slice(start, next === -1 ? undefined : next);
}

const documentedEvents = (tag: string) => [...section(tag).matchAll(/^\| `(dp-[a-z-]+)` \| `([^`]+)` \|/gm)].map((m) => ({ type: m[1], detail: m[2] }));
const documentedParts = (tag: string) => {
  const text = section(tag);
  const parts = text.slice(text.indexOf('Parts:'));
  return [...parts.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]).sort();
};

/** The part names a component's template gives (its own, exported ones, and the base's alert when it uses it). */
function sourceParts(tag: string): string[] {
  const src = read(fileOf(tag));
  const own = [...src.matchAll(/\bpart="([a-z-]+)"/g)].map((m) => m[1]);
  const exported = [...src.matchAll(/exportparts="([^"]+)"/g)].flatMap((m) => m[1].split(',').map((p) => p.split(':')[1].trim()));
  const alert = /this\.(problemBox|errorBox)\(/.test(src) ? ['alert'] : [];
  return [...new Set([...own, ...exported, ...alert])].sort();
}

describe('the components as a host sees them (source and README)', () => {
  it('registers eight components, each with a README section', () => {
    expect(TAGS).toEqual(['dp-settings', 'dp-generations', 'dp-task-progress', 'dp-global-restore', 'dp-restore-browser', 'dp-mailbox-browser', 'dp-container-browser', 'dp-task-history']);
    for (const tag of TAGS) expect(section(tag)).toContain(`${tag}`);
  });

  it('every tag is in HTMLElementTagNameMap as its class, and every documented event in HTMLElementEventMap with its detail', () => {
    const checks = TAGS.map(
      (tag, i) => `const tag${i}: Same<HTMLElementTagNameMap['${tag}'], InstanceType<(typeof COMPONENTS)['${tag}']>> = true;`,
    );
    const events = TAGS.flatMap((tag) => documentedEvents(tag)).map(
      (e, i) => `const event${i}: Same<HTMLElementEventMap['${e.type}'], CustomEvent<${e.detail}>> = true;`,
    );
    expect(events.length).toBe(9);
    const work = mkdtempSync(path.join(tmpdir(), 'dp-types-'));
    const probe = path.join(work, 'probe.ts');
    writeFileSync(
      probe,
      [
        `import type { COMPONENTS } from ${JSON.stringify(path.join(SRC, 'define.js'))};`,
        `import type { Settings, Task } from ${JSON.stringify(path.resolve('openapi/client.js'))};`,
        `import type { MailRestoreRequest } from ${JSON.stringify(path.join(SRC, 'dp-mailbox-browser.js'))};`,
        `import type { ContainerRestoreRequest } from ${JSON.stringify(path.join(SRC, 'dp-container-browser.js'))};`,
        'type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;',
        ...checks,
        ...events,
        `export const all = [${[...checks.keys()].map((i) => `tag${i}`).join(', ')}, ${[...events.keys()].map((i) => `event${i}`).join(', ')}];`,
      ].join('\n'),
    );
    try {
      const config = ts.getParsedCommandLineOfConfigFile(path.resolve('ui-components/tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
      const program = ts.createProgram([probe], { ...config.options, noEmit: true });
      const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      expect(diagnostics).toEqual([]);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('components dispatch only through the typed emit, and the README lists the events each one emits', () => {
    for (const tag of TAGS) {
      const src = read(fileOf(tag));
      expect(src, tag).not.toContain('new CustomEvent');
      const emitted = [...src.matchAll(/this\.emit\('(dp-[a-z-]+)'/g)].map((m) => m[1]);
      expect(documentedEvents(tag).map((e) => e.type), tag).toEqual([...new Set(emitted)]);
    }
  });

  it('the README documents every theme property with its default, and no component style holds a literal colour', async () => {
    const { THEME } = await import('../../ui-components/src/theme.js');
    const rows = new Map([...readme.matchAll(/^\| `(--dp-[a-z0-9-]+)` \| `([^`]+)` \|/gm)].map((m) => [m[1], m[2]]));
    expect(Object.fromEntries(rows)).toEqual(THEME);
    for (const file of [...TAGS.map(fileOf), 'base.ts']) {
      const styles = [...read(file).matchAll(/css`([^`]*)`/g)].map((m) => m[1]).join('\n');
      expect(styles, file).not.toMatch(/#[0-9a-f]{3,8}\b|rgba?\(/i);
      for (const [, name] of styles.matchAll(/var\((--_dp-[a-z0-9-]+)\)/g)) expect(Object.keys(THEME), `${file}: ${name}`).toContain(`--${name.slice(3)}`);
    }
  });

  it('the README lists exactly the parts each component renders', () => {
    for (const tag of TAGS) expect(documentedParts(tag), tag).toEqual(sourceParts(tag));
  });
});

describe('theming in Chromium', () => {
  let work: string;
  let browser: Browser;
  let page: Page;
  const requestsWritten: string[] = [];

  // The plugin's UI entry, freshly built, loaded by a bare host page that provides no API (every call fails).
  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'dp-theme-'));
    execFileSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--config', 'vite.plugin-ui.config.ts', '--outDir', work, '--emptyOutDir'], { stdio: 'pipe' });
    const bundle = readFileSync(path.join(work, 'plugin-ui.js'), 'utf8');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    page = await browser.newPage();
    await page.route('http://host.test/**', async (route) => {
      const url = new URL(route.request().url());
      if (url.pathname === '/plugin-ui.js') return route.fulfill({ contentType: 'text/javascript', body: bundle });
      if (url.pathname === '/') {
        return route.fulfill({
          contentType: 'text/html',
          body: `<!doctype html><html><head><style id="host"></style></head><body><main id="root"></main>
            <script type="module">
              import { registerUi } from '/plugin-ui.js';
              const root = document.getElementById('root');
              const ui = registerUi({ root, apiBase: '/api/dataprotect', apiKey: () => null, locale: 'en', registerSection() {}, registerPage() {} });
              root.innerHTML = '<dp-generations></dp-generations>';
              window.components = ui.components;
            </script></body></html>`,
        });
      }
      if (url.pathname === '/api/dataprotect/generations/g1/entities/u1/mail/folders') {
        return route.fulfill({ contentType: 'application/json', body: JSON.stringify([{ path: 'INBOX', messages: 2, size: 2048 }]) });
      }
      if (url.pathname === '/api/dataprotect/generations/g1/entities/u1/mail/messages') {
        const items = ['m1', 'm2'].map((id) => ({ id, subject: `Subject ${id}`, from: 'a@example.test', date: '2026-01-10T01:00:00Z', size: 1024, flags: [] }));
        return route.fulfill({ contentType: 'application/json', body: JSON.stringify({ total: 2, offset: 0, items }) });
      }
      if (url.pathname === '/api/dataprotect/generations/g1/entities/u1/containers') {
        return route.fulfill({
          contentType: 'application/json',
          body: JSON.stringify([
            { uid: 'calendar:Default:u1', type: 'calendar', name: 'Ann', items: 2, exists: true },
            { uid: 'webappdata:u1', type: 'webappdata', name: 'webappdata of Ann', items: 3, exists: true },
          ]),
        });
      }
      if (url.pathname === '/api/dataprotect/generations/g1/entities/u1/containers/calendar%3ADefault%3Au1/items') {
        const items = [
          { uid: 'e1', summary: 'Lunch', date: '2026-01-12T12:30:00', timeZone: 'Europe/Paris', exists: true },
          { uid: 'e2', summary: 'Review', date: '2026-01-13', timeZone: null, exists: false },
        ];
        return route.fulfill({ contentType: 'application/json', body: JSON.stringify({ total: 2, offset: 0, items }) });
      }
      if (route.request().method() !== 'GET') requestsWritten.push(url.pathname);
      return route.fulfill({ status: 404, contentType: 'application/problem+json', body: JSON.stringify({ status: 404, title: 'Not Found' }) });
    });
    await page.goto('http://host.test/');
    await page.waitForFunction(() => window.components !== undefined);
  });
  afterAll(async () => {
    await browser?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const backgroundOf = (selector: string) => page.locator(selector).evaluate((el) => getComputedStyle(el).backgroundColor);

  it('defines every tag, each its own class', async () => {
    const defined = await page.evaluate(() => window.components!.map((t) => [t, typeof customElements.get(t)]));
    expect(defined).toEqual(TAGS.map((t) => [t, 'function']));
  });

  it("a host's --dp-color-primary recolours the buttons; unset, the default applies", async () => {
    const button = 'dp-generations #backup-now';
    await page.locator(button).waitFor();
    expect(await backgroundOf(button)).toBe('rgb(29, 111, 165)');
    await page.locator('#host').evaluate((el) => (el.textContent = ':root { --dp-color-primary: rgb(200, 30, 40); }'));
    expect(await backgroundOf(button)).toBe('rgb(200, 30, 40)');
    await page.locator('#host').evaluate((el) => (el.textContent = 'dp-generations { --dp-color-primary: rgb(10, 120, 60); }'));
    expect(await backgroundOf(button)).toBe('rgb(10, 120, 60)');
    await page.locator('#host').evaluate((el) => (el.textContent = ''));
    expect(await backgroundOf(button)).toBe('rgb(29, 111, 165)');
  });

  it('::part() reaches the documented parts', async () => {
    await page.locator('#host').evaluate((el) => (el.textContent = 'dp-generations::part(title) { text-transform: uppercase; } dp-generations::part(alert) { background-color: rgb(1, 2, 3); }'));
    expect(await page.locator('dp-generations h2').evaluate((el) => getComputedStyle(el).textTransform)).toBe('uppercase');
    // Without an API the generations cannot load: the failure is shown in the alert part.
    await page.locator('dp-generations [role="alert"]').waitFor();
    expect(await backgroundOf('dp-generations [role="alert"]')).toBe('rgb(1, 2, 3)');
  });

  it('dp-mailbox-browser asks for a restore with a typed detail, starts none, and gives the focus back', async () => {
    await page.evaluate(() => {
      const root = (globalThis as unknown as { document: { getElementById(id: string): { innerHTML: string } } }).document.getElementById('root');
      root.innerHTML = '<dp-mailbox-browser generation-id="g1" mailbox-uid="u1"></dp-mailbox-browser>';
      const el = (globalThis as unknown as { document: { querySelector(s: string): { addEventListener(t: string, f: (e: { detail: unknown }) => void): void } } }).document.querySelector('dp-mailbox-browser');
      el.addEventListener('dp-mail-restore-request', (e) => ((window as unknown as { requests: unknown[] }).requests ??= []).push(e.detail));
    });
    const mailbox = page.locator('dp-mailbox-browser');
    await mailbox.locator('button[data-folder="INBOX"]').click();
    await mailbox.locator('tr[data-message="m2"] input[type="checkbox"]').check();
    await mailbox.getByRole('button', { name: 'Restore the selected message' }).click();
    await mailbox.getByRole('button', { name: 'Restore the folder INBOX' }).click();
    const requests = await page.evaluate(() => (window as unknown as { requests: unknown[] }).requests);
    expect(requests).toEqual([
      { operation: 'restore.mail.messages', folder: 'INBOX', messageIds: ['m2'] },
      { operation: 'restore.mail.folder', folder: 'INBOX' },
    ]);
    expect(requestsWritten).toEqual([]);
    await mailbox.locator('tr[data-message="m1"] input[type="checkbox"]').focus();
    expect(await mailbox.locator('#restore-folder').evaluate((el) => (el as unknown as { matches(s: string): boolean }).matches(':focus'))).toBe(false);
    await mailbox.evaluate((el) => (el as unknown as { focus(): void }).focus());
    expect(await mailbox.locator('#restore-folder').evaluate((el) => (el as unknown as { matches(s: string): boolean }).matches(':focus'))).toBe(true);
  });

  it('dp-container-browser lists containers (not web-app data) and items, asks for a restore with a typed detail, starts none, and gives the focus back', async () => {
    await page.evaluate(() => {
      const root = (globalThis as unknown as { document: { getElementById(id: string): { innerHTML: string } } }).document.getElementById('root');
      root.innerHTML = '<dp-container-browser generation-id="g1" entity-uid="u1"></dp-container-browser>';
      const el = (globalThis as unknown as { document: { querySelector(s: string): { addEventListener(t: string, f: (e: { detail: unknown }) => void): void } } }).document.querySelector('dp-container-browser');
      el.addEventListener('dp-container-restore-request', (e) => ((window as unknown as { containerRequests: unknown[] }).containerRequests ??= []).push(e.detail));
    });
    const browser = page.locator('dp-container-browser');
    await browser.locator('button[data-container="calendar:Default:u1"]').click();
    expect(await browser.locator('button[data-container]').count()).toBe(1);
    await browser.locator('tr[data-item="e2"]').waitFor();
    expect(await browser.locator('tr[data-item="e2"]').textContent()).toContain('Deleted since');
    expect(await browser.locator('tr[data-item="e1"]').textContent()).toContain('(Europe/Paris)');
    await browser.locator('tr[data-item="e2"] input[type="checkbox"]').check();
    await browser.getByRole('button', { name: 'Bring back the selected item if missing' }).click();
    await browser.getByRole('button', { name: 'Replace this calendar by its saved state' }).click();
    const requests = await page.evaluate(() => (window as unknown as { containerRequests: unknown[] }).containerRequests);
    expect(requests).toEqual([
      { operation: 'addmissing.items', container: 'calendar:Default:u1', containerName: 'Ann', itemUids: ['e2'] },
      { operation: 'replace.container', container: 'calendar:Default:u1', containerName: 'Ann' },
    ]);
    expect(requestsWritten).toEqual([]);
    await browser.locator('tr[data-item="e1"] input[type="checkbox"]').focus();
    await browser.evaluate((el) => (el as unknown as { focus(): void }).focus());
    expect(await browser.locator('#replace-container').evaluate((el) => (el as unknown as { matches(s: string): boolean }).matches(':focus'))).toBe(true);
  });
});
