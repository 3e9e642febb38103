import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../../server/cli/main.js';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { fixture, mailboxOverImap, type Fixture } from './fixture.js';

let f: Fixture;
let g1: GenerationView;

beforeAll(async () => {
  f = await fixture('cli', 6);
  g1 = await f.backup(new Date('2026-01-09T01:00:00Z'));
  process.env.DATABASE_URL = `postgres://${f.sb.db.user}@${f.sb.db.host}:${f.sb.db.port}/${f.sb.db.database}`;
});
afterAll(async () => {
  delete process.env.DATABASE_URL;
  await f?.close();
});

/** Runs the CLI in-process and returns its JSON lines. */
async function cli(...args: string[]): Promise<Record<string, any>[]> {
  const lines: string[] = [];
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: any) => (lines.push(String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const argv = ['node', 'bm-dataprotect', ...args];
    await (await buildProgram(argv)).parseAsync(argv);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return lines.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

describe('bm-dataprotect entity', () => {
  it('lists a generation\'s users with --kind and --search, then restores a deleted folder with --op restore.mail.folder', async () => {
    const [u] = await f.sql<{ uid: string; login: string; domain: string; displayname: string }>(
      `SELECT e.entry_uid AS uid, u.login, c.uid AS domain, e.displayname FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
         JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid LIMIT 1`,
    );
    const users = await cli('entity', 'list', '--repo', f.repoDir, g1.id, '--kind', 'user', '--host-root', f.sb.root, '--json');
    const entities = users.filter((x) => x.type === 'entity');
    expect(entities.length).toBe(6);
    expect(entities.every((x) => x.kind === 'USER' && x.deleted === false)).toBe(true);
    const found = (await cli('entity', 'list', '--repo', f.repoDir, 'latest', '--search', u.login, '--host-root', f.sb.root, '--json')).filter((x) => x.type === 'entity');
    expect(found.map((x) => x.uid)).toEqual([u.uid]);

    const login = `${u.login}@${u.domain}`;
    let c = await f.imap(login);
    const before = await mailboxOverImap(c);
    await c.mailboxDelete('Projects/2026');
    await c.mailboxDelete('Projects');
    expect((await c.list()).some((x) => x.path.startsWith('Projects'))).toBe(false);
    await c.logout();

    const lines = await cli('entity', 'restore', '--repo', f.repoDir, g1.id, '--entity', u.uid, '--op', 'restore.mail.folder', '--folder', 'Projects', '--host-root', f.sb.root, '--json');
    const summary = lines.find((x) => x.type === 'summary')!;
    expect(summary).toMatchObject({ operation: 'restore.mail.folder', generation: g1.id, entity: u.uid });
    expect(summary.result.folders).toEqual(['Projects', 'Projects/2026']);
    c = await f.imap(login);
    const after = await mailboxOverImap(c);
    await c.logout();
    expect(after.get('Projects')).toEqual(before.get('Projects'));
    expect(after.get('Projects/2026')).toEqual(before.get('Projects/2026'));
  });

  it('refuses an unknown operation (usage) and an entity the generation does not hold', async () => {
    await expect(cli('entity', 'restore', '--repo', f.repoDir, g1.id, '--entity', 'x', '--op', 'replace.everything', '--host-root', f.sb.root)).rejects.toThrow(/expected one of/);
    await expect(cli('entity', 'restore', '--repo', f.repoDir, g1.id, '--entity', 'nobody', '--op', 'replace.calendars', '--host-root', f.sb.root)).rejects.toThrow(/not in generation/);
  });
});
