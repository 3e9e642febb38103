import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerServer, type ServerRegistration } from '../../plugin/server.js';
import { AlertMonitor } from '../../server/dataprotect/alerts/monitor.js';
import { DataProtectMetrics } from '../../server/dataprotect/metrics.js';
import { registerMetrics } from '../../server/http/metrics.js';
import { TaskRegistry } from '../../server/jobs/task-registry.js';
import { withClient } from '../../server/pg/client.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { parseDatabaseUrl } from '../../server/pg/settings.js';
import { KEYS, PG_BASE, testAuth } from '../http/harness.js';
import { seededHost, type BackupFixture } from './helpers.js';

// Operations through the plugin as a host registers it: /metrics scraped after real runs, and the alert mail
// of a failing run received by an SMTP server on loopback, once per incident.

let f: BackupFixture;
let work: string;
let app: FastifyInstance;
let reg: ServerRegistration;
let smtp: SMTPServer;
const received: ParsedMail[] = [];
let breakDatabase = false;
const databaseUrl = `${PG_BASE}/dp_test_ops_${randomBytes(5).toString('hex')}`;
const ENV = ['DP_SMTP_URL', 'DP_ALERT_RECIPIENTS', 'DP_ALERT_INTERVAL_SECONDS'];

beforeAll(async () => {
  f = await seededHost('ops', 2);
  work = await mkdtemp(path.join(tmpdir(), 'dp-ops-'));
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, _session, cb) {
      simpleParser(stream).then((m) => (received.push(m), cb()), cb);
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
  process.env.DP_SMTP_URL = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;
  process.env.DP_ALERT_RECIPIENTS = 'admin@acme.lan, ops@acme.lan';
  process.env.DP_ALERT_INTERVAL_SECONDS = '3600'; // the test evaluates when it wants
  // The database part fails while breakDatabase is set: a role that does not exist.
  const host = Object.create(f.host) as typeof f.host;
  host.databases = async () => (breakDatabase ? [{ server: 'bm-master', tag: 'bm/pgsql', connection: { ...f.sb.db, user: 'dp_no_such_role', password: 'pw-123456' } }] : f.host.databases());
  app = Fastify();
  reg = await registerServer(
    { fastify: app, databaseUrl, auth: testAuth, defaultRepositoryLocation: path.join(work, 'repository'), taskFilesDir: path.join(work, 'files'), nodeId: 'ops', log: { info: () => {}, error: () => {} } },
    { installation: { port: host, productVersion: 'test-5.1', mailer: null } },
  );
  await app.ready();
});
afterAll(async () => {
  for (const k of ENV) delete process.env[k];
  await app?.close();
  await reg?.close();
  await new Promise<void>((r) => (smtp ? smtp.close(() => r()) : r()));
  await dropDatabase(databaseUrl).catch(() => {});
  await f?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

async function backup(): Promise<{ status: string; error: string | null }> {
  const r = await app.inject({ method: 'POST', url: '/api/dataprotect/backups', headers: { 'x-bm-apikey': KEYS.admin } });
  expect(r.statusCode, r.body).toBe(202);
  const done = await reg.container.resolve(TaskRegistry).whenDone(r.json().task.id);
  return { status: done!.status, error: done!.error };
}

/** `name{labels}` -> value, from the Prometheus text format. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

async function mails(n: number): Promise<ParsedMail[]> {
  for (let i = 0; i < 50 && received.length < n; i++) await new Promise((r) => setTimeout(r, 100));
  return received;
}

const alerts = () => reg.container.resolve(AlertMonitor);
const incidents = () => withClient(parseDatabaseUrl(databaseUrl), async (c) => (await c.query('SELECT kind, closed_at, occurrences, mailed_at FROM dp_alert ORDER BY id')).rows);

describe('metrics', () => {
  it('GET /metrics after a run: last success within the minute, bytes protected and stored, free space, task counts; 401 without the key', async () => {
    expect((await backup()).status).toBe('SUCCEEDED');
    const none = await app.inject({ method: 'GET', url: '/metrics' });
    expect(none.statusCode).toBe(401);
    expect(none.json().detail).toMatch(/X-BM-ApiKey/);
    expect((await app.inject({ method: 'GET', url: '/metrics', headers: { 'x-bm-apikey': 'nonsense' } })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/metrics', headers: { 'x-bm-apikey': KEYS.restore } })).statusCode).toBe(403);

    const r = await app.inject({ method: 'GET', url: '/metrics', headers: { 'x-bm-apikey': KEYS.dataprotect } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parse(r.body);
    const now = Date.now() / 1000;
    expect(m.get('bm_dataprotect_last_success_timestamp_seconds')).toBeGreaterThan(now - 60);
    expect(m.get('bm_dataprotect_last_success_timestamp_seconds')).toBeLessThanOrEqual(now);
    expect(m.get('bm_dataprotect_last_run_status{status="OK"}')).toBe(1);
    expect(m.get('bm_dataprotect_last_run_status{status="ERROR"}')).toBe(0);
    expect(m.get('bm_dataprotect_last_run_duration_seconds')).toBeGreaterThan(0);
    expect(m.get('bm_dataprotect_part_last_run_status{server="bm-mail",tag="mail/imap",status="VALID"}')).toBe(1);
    expect(m.get('bm_dataprotect_part_last_run_duration_seconds{server="bm-master",tag="bm/pgsql"}')).toBeGreaterThan(0);
    expect(m.get('bm_dataprotect_part_protected_bytes{server="bm-mail",tag="mail/imap"}')).toBeGreaterThan(0);
    expect(m.get('bm_dataprotect_protected_bytes')).toBeGreaterThan(0);
    expect(m.get('bm_dataprotect_added_bytes')).toBeGreaterThan(0);
    expect(m.get('bm_dataprotect_repository_stored_bytes')).toBeGreaterThan(0);
    expect(m.get('bm_dataprotect_repository_free_bytes')).toBeGreaterThan(0);
    expect(m.get('bm_dataprotect_repository_filesystem_bytes')).toBeGreaterThanOrEqual(m.get('bm_dataprotect_repository_free_bytes')!);
    expect(m.get('bm_dataprotect_generations{status="VALID"}')).toBe(1);
    expect(m.get('bm_dataprotect_tasks{kind="backup",status="SUCCEEDED"}')).toBe(1);
    expect(m.get('bm_dataprotect_task_duration_seconds_sum{kind="backup",status="SUCCEEDED"}')).toBeGreaterThan(0);
    // No check nor rehearsal has run: their gauges are absent, not a success.
    expect([...m.keys()].filter((k) => /last_(check|rehearsal)_result/.test(k))).toEqual([]);
    expect(m.get('bm_dataprotect_last_check_timestamp_seconds')).toBe(0);

    // The Grafana dashboard asks only for metrics that exist.
    const dashboard = await readFile(new URL('../../plugin/grafana/dataprotect.json', import.meta.url), 'utf8');
    const used = new Set(dashboard.match(/bm_dataprotect_[a-z_]+/g));
    expect(used.size).toBeGreaterThan(10);
    for (const name of used) expect(r.body, name).toContain(`# TYPE ${name} gauge`);

    // The separate listener answers without a key.
    const own = await registerMetrics(Fastify(), { auth: testAuth, metrics: reg.container.resolve(DataProtectMetrics), listen: '127.0.0.1:0' });
    try {
      const res = await fetch(`${own.address}/metrics`);
      expect(res.status).toBe(200);
      expect(parse(await res.text()).get('bm_dataprotect_tasks{kind="backup",status="SUCCEEDED"}')).toBe(1);
    } finally {
      await own.close();
    }
    // A successful run is no incident.
    expect(await alerts().evaluate()).toEqual([]);
  });
});

describe('alerts', () => {
  it('a failing run mails the administrators once with the generation and the reason; its retries do not; a success ends the incident', async () => {
    breakDatabase = true;
    const failed = await backup();
    expect(failed.status).toBe('FAILED');
    const generationId = /generation (\S+) finished with ERROR/.exec(failed.error ?? '')?.[1];
    expect(generationId, failed.error ?? '').toBeTruthy();
    expect(await alerts().evaluate()).toHaveLength(1);
    const [mail] = await mails(1);
    expect(mail.subject).toBe(`[bm-dataprotect] Backup failed: generation ${generationId} ended in ERROR`);
    expect((mail.to as { text: string }).text).toBe('admin@acme.lan, ops@acme.lan');
    expect(mail.text).toContain(`Generation: ${generationId}`);
    expect(mail.text).toMatch(/bm-master bm\/pgsql: INVALID: .*dp_no_such_role/);

    // The same incident: a retry that fails again, and evaluations that see it again, send nothing.
    expect((await backup()).status).toBe('FAILED');
    expect(await alerts().evaluate()).toEqual([]);
    expect(await alerts().evaluate()).toEqual([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(received).toHaveLength(1);
    expect(await incidents()).toMatchObject([{ kind: 'run', closed_at: null, occurrences: 2 }]);

    // A success closes it; the metrics show the failure until then.
    const scrape = parse((await app.inject({ method: 'GET', url: '/metrics', headers: { 'x-bm-apikey': KEYS.admin } })).body);
    expect(scrape.get('bm_dataprotect_last_run_status{status="ERROR"}')).toBe(1);
    expect(scrape.get('bm_dataprotect_part_last_run_status{server="bm-master",tag="bm/pgsql",status="INVALID"}')).toBe(1);
    expect(scrape.get('bm_dataprotect_tasks{kind="backup",status="FAILED"}')).toBe(2);
    breakDatabase = false;
    expect((await backup()).status).toBe('SUCCEEDED');
    expect(await alerts().evaluate()).toEqual([]);
    expect((await incidents())[0].closed_at).not.toBeNull();
  });

  it('no success for 26 hours, and a failed check, are incidents of their own, mailed once each', async () => {
    const later = new Date(Date.now() + 27 * 3600_000);
    expect((await alerts().evaluate(later)).map((i) => i.kind)).toEqual(['no-success']);
    const [, silence] = await mails(2);
    expect(silence.subject).toBe('[bm-dataprotect] No successful backup for 27 hours');
    expect(silence.text).toMatch(/The newest successful generation is \d{8}-\d{6}-[0-9a-f]{4}/);
    expect(await alerts().evaluate(new Date(later.getTime() + 3600_000))).toEqual([]);

    const tasks = reg.container.resolve(TaskRegistry);
    const check = await tasks.start({ kind: 'check', title: 'Check the repository', actor: { login: 'admin0', uid: null } }, async () => {
      throw new Error('pack 3fa2c1 is truncated at 1048576 of 16777216 bytes');
    });
    await tasks.whenDone(check.id);
    expect((await alerts().evaluate()).map((i) => i.kind)).toEqual(['check']);
    const [, , checkMail] = await mails(3);
    expect(checkMail.subject).toBe('[bm-dataprotect] The repository check failed');
    expect(checkMail.text).toContain('pack 3fa2c1 is truncated');
    const afterCheck = parse((await app.inject({ method: 'GET', url: '/metrics', headers: { 'x-bm-apikey': KEYS.admin } })).body);
    expect(afterCheck.get('bm_dataprotect_last_check_result{result="failure"}')).toBe(1);
    expect(afterCheck.get('bm_dataprotect_last_check_result{result="success"}')).toBe(0);
    expect(afterCheck.get('bm_dataprotect_last_check_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 600);

    // A rehearsal that found its generation exact reports a success and its own duration.
    const rehearsal = await tasks.start({ kind: 'rehearsal', title: 'Restore rehearsal', actor: { login: 'admin0', uid: null } }, async () => ({ ok: true, durationMs: 1500, parts: [] }));
    await tasks.whenDone(rehearsal.id);
    const afterRehearsal = parse((await app.inject({ method: 'GET', url: '/metrics', headers: { 'x-bm-apikey': KEYS.admin } })).body);
    expect(afterRehearsal.get('bm_dataprotect_last_rehearsal_result{result="success"}')).toBe(1);
    expect(afterRehearsal.get('bm_dataprotect_last_rehearsal_duration_seconds')).toBe(1.5);
    expect(afterRehearsal.get('bm_dataprotect_last_check_result{result="failure"}')).toBe(1);
    expect(await alerts().evaluate()).toEqual([]);
    expect(received).toHaveLength(3);
  });
});
