import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../server/pg/databases.js';
import { withClient } from '../../server/pg/client.js';
import { freePort, startDovecot, stopDovecot } from '../../server/host/reference/dovecot.js';
import { MAIL_SERVER, TOPOLOGY } from '../../server/host/reference/layout.js';
import { CLI, jsonLines, runCli } from '../engine/cli-helpers.js';
import { everyMailbox, globalFixture, mailboxLogins, recordFiles, recordTables, type GlobalFixture } from './helpers.js';

// The worst case: the machine is new. The host root is gone entirely (Dovecot's runtime and user list, the host
// secrets, the state directory, not only the data), the database is dropped, and the mail server of the backup
// had another uid and another address. The restore rebuilds it all from the generation and the directory; a
// second restore started meanwhile is refused, naming the one that runs.

const OLD_UID = 'bm-mail-old';
const OLD_ADDRESS = '127.0.0.3';
const NEW_ADDRESS = TOPOLOGY.find((s) => s.uid === MAIL_SERVER)!.address;
const LISTEN = 'etc/dovecot/conf.d/99-listen.conf';
const SERVER_COLUMNS = [['t_mailbox', 'datalocation'], ['t_directory_entry', 'datalocation'], ['t_domain_user', 'server_id'], ['t_group', 'server_id']];

let f: GlobalFixture;
beforeAll(async () => {
  f = await globalFixture('blank', 8, {
    // At backup time the mail server was another machine: another uid, another address, and the directory said so.
    backupHost: (h) =>
      Object.create(h, {
        servers: { value: async () => TOPOLOGY.map((s) => (s.uid === MAIL_SERVER ? { ...s, uid: OLD_UID, address: OLD_ADDRESS, tags: [...s.tags] } : { ...s, tags: [...s.tags] })) },
        dataLocations: { value: async (server: string, tag: string) => (await h.dataLocations(server === OLD_UID ? MAIL_SERVER : server, tag)).map((l) => ({ ...l, server })) },
      }),
    beforeBackup: async (h) => {
      await withClient(h.database, async (c) => {
        for (const [t, col] of SERVER_COLUMNS) await c.query(`UPDATE ${t} SET ${col} = $1 WHERE ${col} = $2`, [OLD_UID, MAIL_SERVER]);
      });
      const file = path.join(h.layout.conf(MAIL_SERVER), LISTEN);
      await fs.writeFile(file, `listen = ${OLD_ADDRESS}\n`);
      await fs.utimes(file, 1_767_000_000, 1_767_000_000);
    },
  });
}, 300_000);
afterAll(async () => {
  await f?.close();
});

describe('global restore onto a blank machine', () => {
  it('rebuilds a host root removed entirely onto a mail server of another uid and address; a second run meanwhile is refused', async () => {
    const layout = f.host.layout;
    const mailboxes = await mailboxLogins(layout);
    expect(mailboxes.length).toBeGreaterThan(8);
    await stopDovecot(layout);
    await dropDatabase(f.sb.db, f.sb.db.database);
    await fs.rm(f.sb.root, { recursive: true, force: true });

    const args = ['global-restore', 'run', '--repo', f.repoDir, '--host-root', f.sb.root, f.generation, '--map-server', `${OLD_ADDRESS}=${MAIL_SERVER}`, '--yes', '--json'];
    // The first run is held still at the mail part; a second one then finds the installation taken.
    const first = startCli(args);
    await first.reached((l) => l.type === 'part' && l.part === `${OLD_UID} mail/imap` && l.state === 'starting');
    first.child.kill('SIGSTOP');
    try {
      const second = await runCli(args, { env: f.env });
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(/another global restore is running on this installation/);
      expect(second.stderr).toContain(`generation ${f.generation}, process ${first.child.pid}`);
      expect(second.stderr).not.toMatch(/at .*\.js/);
    } finally {
      first.child.kill('SIGCONT');
    }
    const done = await first.exit;
    expect(done.code, done.stderr).toBe(0);
    const summary = jsonLines(done.stdout).find((l) => l.type === 'summary') as { serverChanges: unknown[]; addressChanges: unknown[]; parts: { key: string; detail: string }[] };
    expect(summary.serverChanges).toEqual([{ from: OLD_UID, to: MAIL_SERVER }]);
    expect(summary.addressChanges).toEqual([{ from: OLD_ADDRESS, to: NEW_ADDRESS }]);
    expect(summary.parts.find((p) => p.key === 'bm-master bm/pgsql')!.detail).toMatch(/t_mailbox\.datalocation: \d+ rows/);

    // The database names the new mail server where it named the old one, and nothing else changed.
    const renamed = Object.fromEntries(Object.entries(f.tables).map(([t, rows]) => [t, rows.map((r) => r.split(OLD_UID).join(MAIL_SERVER)).sort()]));
    expect(await recordTables(f.sb.db)).toEqual(renamed);
    const rel = path.relative(f.sb.root, path.join(layout.conf(MAIL_SERVER), LISTEN));
    const strip = (l: Awaited<ReturnType<typeof recordFiles>>) => l.map((e) => (e.path === rel ? { ...e, sha256: null, size: 0, mtimeUs: '' } : e));
    expect(strip(await recordFiles(layout))).toEqual(strip(f.files));
    expect(await fs.readFile(path.join(layout.conf(MAIL_SERVER), LISTEN), 'utf8')).toBe(`listen = ${NEW_ADDRESS}\n`);

    // Dovecot's user list came back from the directory: every mailbox logs in and serves its mail with its flags.
    const users = (await fs.readFile(path.join(layout.dovecot, 'users'), 'utf8')).trim().split('\n').map((l) => l.split(':')[0]);
    expect(users.sort()).toEqual([...mailboxes].sort());
    await startDovecot(layout, { port: await freePort() });
    const imap = await everyMailbox(layout);
    expect([...imap.keys()]).toEqual([...f.imap.keys()]);
    for (const [login, folders] of f.imap) expect(imap.get(login), login).toEqual(folders);
    expect([...imap.values()].flatMap((m) => [...m.values()].flat()).some((m) => m.flags.includes('\\Flagged'))).toBe(true);
  }, 300_000);
});

/** The CLI as a child process, its JSON lines watched. */
function startCli(args: string[]) {
  const child: ChildProcess = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...f.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let pending = '';
  const watchers: { test: (l: Record<string, unknown>) => boolean; resolve: () => void }[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    pending += d.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line.trim()) continue;
      const l = JSON.parse(line) as Record<string, unknown>;
      for (const w of watchers.splice(0).filter((x) => (x.test(l) ? (x.resolve(), false) : true))) watchers.push(w);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return {
    child,
    exit,
    reached: (test: (l: Record<string, unknown>) => boolean) =>
      Promise.race([
        new Promise<void>((resolve) => watchers.push({ test, resolve })),
        exit.then((e) => Promise.reject(new Error(`the restore ended before the point (exit ${e.code}): ${e.stderr}`))),
      ]),
  };
}
