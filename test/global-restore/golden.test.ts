import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverGenerations } from '../../server/dataprotect/global-restore/discover.js';
import { runGlobalRestore } from '../../server/dataprotect/global-restore/run.js';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { referenceInstallation } from '../../server/host/reference/installation.js';
import { sandbox, type Sandbox } from '../host/helpers.js';
import { imapSession, recordFiles, recordTables, type FileEntry } from './helpers.js';
import { forgetCatalogs, loadCatalog } from '../../server/dataprotect/restore/catalog.js';
import { RepositoryGenerationParts } from '../../server/dataprotect/restore/generation-parts.js';
import { runRestore, validate, type PlannedRestore } from '../../server/dataprotect/restore/operations/index.js';
import type { RestoreOperationId } from '../../server/dataprotect/restore-capabilities.js';
import { withClient } from '../../server/pg/client.js';
import { freePort, startDovecot, stopDovecot } from '../../server/host/reference/dovecot.js';
import { mailboxOverImap, recordingContext, type ImapMessage } from '../restore/fixture.js';

// The golden generation of generation format 1, checked in (golden-maker.ts): every later version must restore
// it onto a blank installation exactly, and entity by entity. If a format change breaks this, the change is wrong, not the fixture.
const GOLDEN = fileURLToPath(new URL('../fixtures/golden-generation-v1', import.meta.url));

describe('golden generation of format 1', () => {
  let sb: Sandbox;
  let repoDir: string;
  let repo: Repository;
  let expected: { generation: string; productVersion: string; parts: string[]; tables: Record<string, string[]>; files: FileEntry[] };
  beforeAll(async () => {
    sb = await sandbox('gr_golden');
    // A copy: restoring reads only, but a fixture must never be touched by a test.
    repoDir = await mkdtemp(join(tmpdir(), 'dp-golden-generation-'));
    await cp(join(GOLDEN, 'repo'), repoDir, { recursive: true });
    repo = await Repository.open(new LocalStorage(repoDir));
    expected = JSON.parse(await readFile(join(GOLDEN, 'expected.json'), 'utf8'));
  });
  afterAll(async () => {
    await repo?.close();
    await sb?.cleanup();
    await rm(repoDir, { recursive: true, force: true });
  });

  it('is discovered with its parts', async () => {
    const [g] = await discoverGenerations(repo);
    expect(g).toMatchObject({ id: expected.generation, status: 'VALID', formatVersion: 1, productVersion: expected.productVersion });
    expect(g.parts.map((p) => `${p.server} ${p.tag}`)).toEqual(expected.parts);
  });

  it('restores onto a blank installation exactly: every table row for row, every file with its mode and mtime', async () => {
    const host = new ReferenceHost(sb.root, sb.db);
    const r = await runGlobalRestore({ repo, installation: referenceInstallation(host), generation: 'latest' });
    expect(r.generation).toBe(expected.generation);
    expect(r.parts.map((p) => p.state)).toEqual(expected.parts.map(() => 'restored'));
    expect(await recordTables(sb.db)).toEqual(expected.tables);
    // Owners are those of the machine that wrote the fixture (the spool belongs to its dovecot user): not compared.
    const anyOwner = (l: FileEntry[]) => l.map(({ uid: _u, gid: _g, ...e }) => e);
    expect(anyOwner(await recordFiles(host.layout))).toEqual(anyOwner(expected.files));
  });

  describe('entity by entity, exactly', () => {
    let host: ReferenceHost;
    let generations: RepositoryGenerationParts;
    let users: { uid: string; login: string; domain: string }[];
    const sql = <T = Record<string, unknown>>(text: string, params: unknown[] = []) => withClient(sb.db, async (c) => (await c.query(text, params)).rows as T[]);
    const env = () => ({ repo, host, mailer: null });
    const plan = async (operation: RestoreOperationId, uid: string): Promise<PlannedRestore> => {
      forgetCatalogs();
      const g = await generations.get(expected.generation);
      const catalog = await loadCatalog(repo, host, g);
      const entry = catalog.byUid.get(uid);
      if (!entry) throw new Error(`no entity ${uid} in the golden generation`);
      return { operation, entry, catalog, actor: { login: 'admin0@global.virt', email: 'admin0@global.virt' } };
    };
    const restoreEntity = async (operation: RestoreOperationId, uid: string) => {
      const p = await plan(operation, uid);
      await validate(env(), p);
      return runRestore(env(), p, recordingContext().ctx);
    };
    const imap = async (login: string) => {
      const c = await imapSession(host.layout, login);
      try {
        return await mailboxOverImap(c);
      } finally {
        await c.logout().catch(() => {});
      }
    };
    /** A user's calendars, books and todolists: containers, ACLs and every item with its rows, ids left out. */
    const stateOf = async (owner: string) =>
      sql(
        `SELECT c.uid, c.container_type, c.name, c.defaultcontainer, c.created,
                (SELECT json_agg(json_build_array(a.subject, a.verb, a.position) ORDER BY 1) FROM t_container_acl a WHERE a.container_id = c.id)::text AS acl,
                (SELECT json_agg(json_build_array(i.uid, i.version, i.displayname, i.created, i.updated, i.flags,
                   (SELECT json_agg(to_jsonb(r) - 'item_id' ORDER BY r.recurid_timestamp NULLS FIRST, r.dtstart_timestamp) FROM t_calendar_vevent r WHERE r.item_id = i.id),
                   (SELECT to_jsonb(r) - 'item_id' FROM t_addressbook_vcard r WHERE r.item_id = i.id),
                   (SELECT to_jsonb(r) - 'item_id' FROM t_todolist_vtodo r WHERE r.item_id = i.id)) ORDER BY i.uid)
                   FROM t_container_item i WHERE i.container_id = c.id)::text AS items
           FROM t_container c WHERE c.owner = $1 AND c.container_type IN ('calendar', 'addressbook', 'todolist') ORDER BY c.uid`,
        [owner],
      );

    beforeAll(async () => {
      // Follows the global restore above: the installation is the golden one, served by Dovecot.
      host = new ReferenceHost(sb.root, sb.db);
      generations = new RepositoryGenerationParts(async () => repo);
      await startDovecot(host.layout, { port: await freePort() });
      users = await sql(
        `SELECT e.entry_uid AS uid, u.login, c.uid AS domain FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
           JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid`,
      );
      expect(users.length).toBe(2);
    });
    afterAll(async () => {
      if (host) await stopDovecot(host.layout).catch(() => {});
    });

    it('replace.mailbox gives a mailbox back as the golden generation holds it: folders, messages, flags, dates', async () => {
      const u = users[0];
      const login = `${u.login}@${u.domain}`;
      const before = await imap(login);
      expect([...before.values()].flat().length).toBeGreaterThan(0);
      await rm(join(host.layout.spool, u.domain, u.login), { recursive: true, force: true });
      await restoreEntity('replace.mailbox', u.uid);
      const after = await imap(login);
      const strip = (m: Map<string, ImapMessage[]>) => [...m.entries()].sort().map(([k, v]) => [k, v.map(({ messageId, flags, internalDate, size }) => ({ messageId, flags, internalDate, size }))]);
      expect(strip(after)).toEqual(strip(before));
    });

    it('replace.calendars gives a calendar back item by item', async () => {
      const u = users[1];
      const before = await stateOf(u.uid);
      expect(before.some((c) => c.container_type === 'calendar' && c.items)).toBe(true);
      await sql(`DELETE FROM t_container_item WHERE container_id IN (SELECT id FROM t_container WHERE owner = $1 AND container_type = 'calendar')`, [u.uid]);
      expect(await stateOf(u.uid)).not.toEqual(before);
      await restoreEntity('replace.calendars', u.uid);
      expect(await stateOf(u.uid)).toEqual(before);
    });

    it('complete.restore.user brings a deleted user back: directory entry, password, groups, data and mail', async () => {
      const u = users[1];
      const login = `${u.login}@${u.domain}`;
      const row = async () => sql(`SELECT login, password, routing, properties, archived, server_id FROM t_domain_user WHERE login = $1`, [u.login]);
      const groups = async () => sql(`SELECT g.name FROM t_group_usermember m JOIN t_group g ON g.item_id = m.group_id JOIN t_directory_entry e ON e.item_id = m.user_id WHERE e.entry_uid = $1 ORDER BY 1`, [u.uid]);
      const before = { user: await row(), groups: await groups(), entry: await host.directory.entity(u.domain, u.uid), data: await stateOf(u.uid), mail: await imap(login) };
      await sql(`DELETE FROM t_container WHERE owner = $1`, [u.uid]);
      await sql(`DELETE FROM t_container_item WHERE uid = $1 AND container_id = (SELECT id FROM t_container WHERE uid = $2)`, [u.uid, u.domain]);
      await rm(join(host.layout.spool, u.domain, u.login), { recursive: true, force: true });
      expect(await host.directory.entity(u.domain, u.uid)).toBeNull();
      await restoreEntity('complete.restore.user', u.uid);
      expect(await host.directory.entity(u.domain, u.uid)).toEqual(before.entry);
      expect(await row()).toEqual(before.user);
      expect(await groups()).toEqual(before.groups);
      expect(await stateOf(u.uid)).toEqual(before.data);
      const strip = (m: Map<string, ImapMessage[]>) => [...m.entries()].sort().map(([k, v]) => [k, v.map(({ messageId, flags, internalDate, size }) => ({ messageId, flags, internalDate, size }))]);
      expect(strip(await imap(login))).toEqual(strip(before.mail));
    });
  });
});
