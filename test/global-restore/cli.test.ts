import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOPOLOGY, MAIL_SERVER } from '../../server/host/reference/layout.js';
import { jsonLines, killAt, runCli } from '../engine/cli-helpers.js';
import { everyMailbox, globalFixture, recordFiles, recordTables, wipeInstallation, type GlobalFixture } from './helpers.js';

// The command line as the administrator runs it: a generation made when the mail server had another address,
// restored with --map-server; then a run killed (kill -9) at three points and run again until it finishes.

const OLD_MAIL = '127.0.0.3';
const NEW_MAIL = TOPOLOGY.find((s) => s.uid === MAIL_SERVER)!.address;
const LISTEN = 'etc/dovecot/conf.d/99-listen.conf';

let f: GlobalFixture;
beforeAll(async () => {
  f = await globalFixture('cli', 8, {
    // At backup time the mail server answered at another address, and its configuration said so.
    backupHost: (h) => Object.create(h, { servers: { value: async () => TOPOLOGY.map((s) => ({ ...s, tags: [...s.tags], address: s.uid === MAIL_SERVER ? OLD_MAIL : s.address })) } }),
    beforeBackup: async (h) => {
      const file = path.join(h.layout.conf(MAIL_SERVER), LISTEN);
      await fs.writeFile(file, `listen = ${OLD_MAIL}\n# not ${OLD_MAIL}0, nor 1${OLD_MAIL}\n`);
      await fs.utimes(file, 1_767_000_000, 1_767_000_000);
    },
  });
});
afterAll(async () => {
  await f?.close();
});

const target = () => ['--repo', f.repoDir, '--host-root', f.sb.root];

/** The expected files once the address is rewritten: the one configuration file that named it changes. */
function expectExact(got: Awaited<ReturnType<typeof recordFiles>>) {
  const rel = path.relative(f.sb.root, path.join(f.host.layout.conf(MAIL_SERVER), LISTEN));
  const strip = (l: typeof got) => l.map((e) => (e.path === rel ? { ...e, sha256: null, size: 0, mtimeUs: '' } : e));
  expect(strip(got)).toEqual(strip(f.files));
}

describe('bm-dataprotect global-restore', () => {
  it('discover lists the generation without any database', async () => {
    const r = await runCli(['global-restore', 'discover', '--repo', f.repoDir, '--json'], { env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' } });
    expect(r.code, r.stderr).toBe(0);
    const s = jsonLines(r.stdout).find((l) => l.type === 'summary') as { generations: { id: string; status: string }[] };
    expect(s.generations.map((g) => `${g.id} ${g.status}`)).toEqual([`${f.generation} VALID`]);
  });

  it('check names the server whose address changed and what to pass; a bad --map-server is a usage error', async () => {
    await wipeInstallation(f.host);
    const r = await runCli(['global-restore', 'check', ...target(), 'latest', '--json'], { env: f.env });
    expect(r.code).toBe(1);
    const s = jsonLines(r.stdout).find((l) => l.type === 'summary') as { ok: boolean; prerequisites: { id: string; status: string; message: string }[] };
    expect(s.ok).toBe(false);
    expect(s.prerequisites.find((p) => p.id === 'servers')!.message).toContain(`--map-server ${OLD_MAIL}=${NEW_MAIL}`);
    const bad = await runCli(['global-restore', 'check', ...target(), 'latest', '--map-server', 'nonsense'], { env: f.env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/OLD=NEW/);
    expect(bad.stderr).not.toMatch(/at .*\.js/);
    const none = await runCli(['global-restore', 'check', ...target(), '20990101-000000-0000'], { env: f.env });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no generation 20990101-000000-0000/);
  });

  it('run without --yes refuses; killed with -9 at three points and run again, it ends with the exact installation', async () => {
    const args = ['global-restore', 'run', ...target(), f.generation, '--map-server', `${OLD_MAIL}=${NEW_MAIL}`, '--json'];
    const noYes = await runCli(args, { env: f.env });
    expect(noYes.code).toBe(2);
    expect(noYes.stderr).toMatch(/--yes/);

    // Three points: inside the database part (pg_restore done, tables not yet recorded as restored), when the
    // mail spool begins, and once the spool is in place and Dovecot resynchronised but before it is recorded.
    const points: ((l: Record<string, unknown>) => boolean)[] = [
      (l) => l.type === 'notice' && /checking tables/.test(String(l.message)),
      (l) => l.type === 'part' && l.part === 'bm-mail mail/imap' && l.state === 'starting',
      (l) => l.type === 'notice' && /resynchronised/.test(String(l.message)),
    ];
    for (const point of points) {
      const { killed } = await killAt([...args, '--yes'], point, { env: f.env });
      expect(killed, 'the run reached the point').toBe(true);
    }
    const last = await runCli([...args, '--yes'], { env: f.env });
    expect(last.code, last.stderr).toBe(0);
    const lines = jsonLines(last.stdout);
    const summary = lines.find((l) => l.type === 'summary') as { resumed: boolean; parts: { key: string; state: string }[]; addressChanges: unknown[] };
    expect(summary.resumed).toBe(true);
    // The parts finished before the last kill are not redone; the one interrupted is. The kill lands once the
    // spool's "resynchronised" line is out: the run may or may not have recorded the spool as done by then.
    const already = summary.parts.filter((p) => p.state === 'already restored').map((p) => p.key);
    const redone = summary.parts.filter((p) => p.state === 'restored').map((p) => p.key);
    expect(already.slice(0, 4)).toEqual(['bm-master bm/pgsql', 'bm-master bm/conf', 'bm-mail bm/conf', 'bm-master filehosting/data']);
    expect([...already.slice(4), ...redone]).toEqual(['bm-mail mail/imap', 'bm-mail mail/archive']);
    expect(redone).toContain('bm-mail mail/archive');
    expect(summary.addressChanges).toEqual([{ from: OLD_MAIL, to: NEW_MAIL }]);

    expect(await recordTables(f.sb.db)).toEqual(f.tables);
    expectExact(await recordFiles(f.host.layout));
    expect(await fs.readFile(path.join(f.host.layout.conf(MAIL_SERVER), LISTEN), 'utf8')).toBe(`listen = ${NEW_MAIL}\n# not ${OLD_MAIL}0, nor 1${OLD_MAIL}\n`);
    const imap = await everyMailbox(f.host.layout);
    for (const [login, folders] of f.imap) expect(imap.get(login), login).toEqual(folders);
  });
});
