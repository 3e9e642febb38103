import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { readManifest, registerServer, type ServerRegistration } from '../../plugin/server.js';
import { COMPONENT_TAGS, CONTEXT_KEYS, PAGES, SECTION, WIZARD_STEPS } from '../../plugin/ui/registrations.js';
import { SPEC_PATH } from '../../server/http/api.js';
import { dropDatabase } from '../../server/pg/databases.js';

// The manifest says what the plugin provides; the entries register it at run time. They must agree.

const manifest = readManifest();
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string; exports: Record<string, unknown> };
const spec = parse(readFileSync(SPEC_PATH, 'utf8')) as { servers: { url: string }[]; paths: Record<string, Record<string, { operationId?: string }>> };
const specOperations = Object.values(spec.paths)
  .flatMap((item) => Object.values(item))
  .map((op) => op.operationId)
  .filter((x): x is string => typeof x === 'string')
  .sort();

const databaseUrl = `postgres://postgres@127.0.0.1:5432/dp_test_${randomBytes(6).toString('hex')}`;
const app = Fastify();
let registration: ServerRegistration;

beforeAll(async () => {
  registration = await registerServer({
    fastify: app,
    databaseUrl,
    auth: { authenticate: async () => null },
    defaultRepositoryLocation: '/var/backups/bluemind/dp',
    taskFilesDir: path.join(tmpdir(), `dp-manifest-test-files-${randomBytes(6).toString('hex')}`),
  });
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await registration?.close();
  await dropDatabase(databaseUrl).catch((err: Error) => console.warn(`could not drop ${databaseUrl}: ${err.message}`));
});

describe('plugin manifest', () => {
  it('has the package version and the contract mount', () => {
    expect(manifest.version).toBe(pkg.version);
    expect(manifest.server.api.mount).toBe(spec.servers[0].url);
    expect(manifest.server.api.specification).toBe('openapi/dataprotect.yaml');
  });

  it('declares the two BlueMind roles, manageRestore limited to organisational units', () => {
    expect(manifest.roles).toEqual([
      expect.objectContaining({ id: 'manageDataProtect', ouScoped: false }),
      expect.objectContaining({ id: 'manageRestore', ouScoped: true }),
    ]);
  });

  it('the server entry registers every operation of the contract under the manifest mount', () => {
    expect(registration.apiMount).toBe(manifest.server.api.mount);
    expect([...registration.operations].sort()).toEqual(specOperations);
    expect(app.hasRoute({ method: 'PUT', url: '/api/dataprotect/settings' })).toBe(true);
    expect(app.hasRoute({ method: 'GET', url: '/api/dataprotect/tasks/:taskId/events' })).toBe(true);
    // BlueMind's task API where BlueMind has it, as the contract's path-level servers say.
    expect(app.hasRoute({ method: 'GET', url: '/api/tasks/:taskId/_currentLogs' })).toBe(true);
    expect(app.hasRoute({ method: 'GET', url: '/api/dataprotect/:taskId' })).toBe(false);
  });

  it('the scheduler is only started with a backup runner (none in this build)', () => {
    expect(registration.scheduler).toBe('not started: no installation to back up');
  });

  it('the UI entry registers the pages, components and context the manifest lists', () => {
    expect((manifest.ui as unknown as { section: unknown }).section).toEqual(SECTION);
    expect(manifest.ui.pages).toEqual(PAGES);
    expect((manifest.ui as unknown as { wizardSteps: unknown }).wizardSteps).toEqual(WIZARD_STEPS);
    for (const step of WIZARD_STEPS) expect(manifest.ui.components).toContain(step.tag);
    expect(manifest.ui.components).toEqual([...COMPONENT_TAGS]);
    expect(manifest.ui.context).toEqual([...CONTEXT_KEYS]);
    for (const page of manifest.ui.pages) expect(manifest.ui.components).toContain(page.tag);
    for (const page of manifest.ui.pages) for (const role of page.roles) expect(manifest.roles.map((r) => r.id)).toContain(role);
  });

  it('the UI entry defines exactly the manifest components and uses the manifest context keys (source check)', () => {
    const source = readFileSync('ui-components/src/define.ts', 'utf8');
    const define = source.slice(source.indexOf('export const COMPONENTS'), source.indexOf('} as const'));
    const tags = [...define.matchAll(/'(dp-[a-z-]+)':/g)].map((m) => m[1]);
    expect(tags).toEqual(manifest.ui.components);
    const context = readFileSync('ui-components/src/context.ts', 'utf8');
    for (const key of manifest.ui.context) expect(context).toContain(`Symbol.for('${key}')`);
  });

  it('the package exports the client and the server entry', () => {
    expect(pkg.exports['./client']).toBeDefined();
    expect(pkg.exports['./plugin']).toBeDefined();
  });
});
