import 'reflect-metadata';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { entityInRestoreScope, holdsRole, managesInstallation } from '../../server/dataprotect/principal.js';
import { dataProtectApi } from '../../server/http/api.js';
import { TaskRegistry, type TaskContext } from '../../server/jobs/task-registry.js';
import { migrate } from '../../server/store/migrations.js';
import { TaskStore } from '../../server/store/task-store.js';
import { KEYS, PRINCIPALS, startTestApi, type TestApi } from './harness.js';

// Two nodes on one database: a task runs on node A; node B's API reads it, follows it and cancels it.

let a: TestApi;
let nodeB: TaskRegistry;
let appB: FastifyInstance;
beforeAll(async () => {
  a = await startTestApi();
  nodeB = new TaskRegistry(new TaskStore(a.pool), 'node-b', mkdtempSync(path.join(tmpdir(), 'dp-node-b-')));
  await nodeB.open();
  appB = Fastify();
  await appB.register(dataProtectApi, { prefix: '/api/dataprotect', deps: { ...a.deps, tasks: nodeB }, validateResponses: true });
  await appB.ready();
});
afterAll(async () => {
  await appB?.close();
  await nodeB?.close();
  await a?.close();
});

const admin = PRINCIPALS[KEYS.admin];

function waitForCancel(ctx: TaskContext): Promise<never> {
  return new Promise((_, reject) => {
    if (ctx.signal.aborted) reject(ctx.signal.reason);
    ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
  });
}

it('a task running on node A is cancelled through node B (at A’s next heartbeat)', async () => {
  const task = await a.deps.tasks.start({ kind: 'backup', title: 'Backup', actor: { login: admin.login, uid: admin.uid } }, async (ctx) => {
    ctx.progress({ done: 1, total: 5, unit: 'parts' });
    ctx.info('started on node A');
    await waitForCancel(ctx);
  });
  // A writes its progress to the database within a moment: wait for it, however busy the machine.
  let seen = await appB.inject({ method: 'GET', url: `/api/dataprotect/tasks/${task.id}`, headers: { 'x-bm-apikey': KEYS.admin } });
  for (const end = Date.now() + 60_000; seen.json().progress?.done !== 1 && Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 50));
    seen = await appB.inject({ method: 'GET', url: `/api/dataprotect/tasks/${task.id}`, headers: { 'x-bm-apikey': KEYS.admin } });
  }
  expect(seen.json()).toMatchObject({ status: 'RUNNING', progress: { done: 1, total: 5 } });
  const cancel = await appB.inject({ method: 'POST', url: `/api/dataprotect/tasks/${task.id}/cancel`, headers: { 'x-bm-apikey': KEYS.admin } });
  expect(cancel.statusCode).toBe(202);
  const final = await a.deps.tasks.whenDone(task.id);
  expect(final?.status).toBe('CANCELLED');
  expect(final?.error).toContain('cancelled from another node');
}, 300_000);

it('node B streams the events of a task running on node A until it ends', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const task = await a.deps.tasks.start({ kind: 'backup', title: 'Backup', actor: { login: admin.login, uid: admin.uid } }, async (ctx) => {
    ctx.info('part bm/pgsql');
    await gate;
    ctx.info('part mail/imap');
    return { parts: 2 };
  });
  const address = await appB.listen({ port: 0, host: '127.0.0.1' });
  setTimeout(release, 1500);
  const res = await fetch(`${address}/api/dataprotect/tasks/${task.id}/events`, { headers: { 'x-bm-apikey': KEYS.admin } });
  const text = await res.text(); // ends when the task ends
  expect(text).toContain('part bm/pgsql');
  expect(text).toContain('part mail/imap');
  expect(text.trim().split('\n\n').at(-1)).toMatch(/^event: end\ndata: .*"status":"SUCCEEDED"/);
}, 300_000);

it('migrations are safe when several nodes start at once', async () => {
  const applied = await Promise.all([migrate(a.pool), migrate(a.pool), migrate(a.pool)]);
  expect(applied.flat()).toEqual([]);
});

it('manageRestore limited to organisational units reaches only entities of those units, in its own domain', () => {
  const ou = PRINCIPALS[KEYS.ouRestore];
  expect(holdsRole(ou, 'manageRestore')).toBe(true);
  expect(holdsRole(ou, 'manageDataProtect')).toBe(false);
  expect(entityInRestoreScope(ou, { domainUid: ou.domainUid, orgUnitPath: ['ou-root', 'ou-sales'] })).toBe(true);
  expect(entityInRestoreScope(ou, { domainUid: ou.domainUid, orgUnitPath: ['ou-root', 'ou-hr'] })).toBe(false);
  expect(entityInRestoreScope(ou, { domainUid: 'other.test', orgUnitPath: ['ou-sales'] })).toBe(false);
  expect(entityInRestoreScope(ou, { domainUid: ou.domainUid })).toBe(false);
  expect(holdsRole(PRINCIPALS[KEYS.noRole], 'manageRestore')).toBe(false);
});

it('roles are held for a domain: only the global domain reaches every domain and manages the installation', () => {
  const restorer = PRINCIPALS[KEYS.restore];
  expect(entityInRestoreScope(restorer, { domainUid: restorer.domainUid })).toBe(true);
  expect(entityInRestoreScope(restorer, { domainUid: 'other.test' })).toBe(false);
  const acme = PRINCIPALS[KEYS.acmeRestore];
  expect(entityInRestoreScope(acme, { domainUid: 'acme.lan', orgUnitPath: [] })).toBe(true);
  expect(entityInRestoreScope(acme, { domainUid: 'globex.lan' })).toBe(false);
  const globex = PRINCIPALS[KEYS.globexDataProtect];
  expect(entityInRestoreScope(globex, { domainUid: 'globex.lan' })).toBe(true);
  expect(entityInRestoreScope(globex, { domainUid: 'acme.lan' })).toBe(false);
  expect(managesInstallation(globex)).toBe(false);
  expect(managesInstallation(PRINCIPALS[KEYS.dataprotect])).toBe(true);
  expect(managesInstallation(PRINCIPALS[KEYS.admin])).toBe(true);
  expect(entityInRestoreScope(PRINCIPALS[KEYS.dataprotect], { domainUid: 'acme.lan' })).toBe(true);
  expect(entityInRestoreScope(PRINCIPALS[KEYS.admin], { domainUid: 'globex.lan' })).toBe(true);
});
