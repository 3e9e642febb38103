import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../../server/pg/client.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { backupDatabase } from '../../server/sources/pgsql-backup.js';
import { generationEntities } from '../../server/sources/pgsql-manifest.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sandbox, type Sandbox } from './helpers.js';

let sb: Sandbox;
let host: ReferenceHost;

beforeAll(async () => {
  sb = await sandbox('port');
  await seedReference({ connection: sb.db, root: sb.root, users: 30 });
  host = new ReferenceHost(sb.root, sb.db);
});
afterAll(async () => sb?.cleanup());

describe('reference host port', () => {
  it('has two servers with their addresses and tags, and where each part lives', async () => {
    expect(await host.servers()).toEqual([
      { uid: 'bm-master', address: '127.0.0.1', tags: ['bm/pgsql', 'filehosting/data', 'bm/conf'] },
      { uid: 'bm-mail', address: '127.0.0.2', tags: ['mail/imap', 'mail/archive', 'bm/conf'] },
    ]);
    expect(await host.databases()).toEqual([{ server: 'bm-master', tag: 'bm/pgsql', connection: sb.db }]);
    expect((await host.dataLocations('bm-mail', 'mail/imap')).map((l) => l.virtualPath)).toEqual(['/spool']);
    expect((await host.dataLocations('bm-master', 'bm/conf'))[0].fsPath).toBe(path.join(sb.root, 'servers/bm-master/conf'));
    expect(await host.dataLocations('bm-master', 'mail/imap')).toEqual([]);
  });

  it('lists domains and entities with kinds, OU paths, archived state, and finds them by name or email', async () => {
    expect((await host.directory.domains()).map((d) => d.uid)).toEqual(['acme.lan', 'global.virt', 'globex.lan']);
    const all = await host.directory.entities('acme.lan');
    const kinds = new Set(all.map((e) => e.kind));
    expect([...kinds].sort()).toEqual(['DOMAIN', 'GROUP', 'MAILSHARE', 'ORG_UNIT', 'RESOURCE', 'USER']);
    expect(all.filter((e) => e.kind === 'USER')).toHaveLength(20);
    const emea = all.find((e) => e.kind === 'ORG_UNIT' && e.name === 'EMEA')!;
    expect(emea.ouPath).toEqual(['Headquarters', 'Sales']);
    const user = all.find((e) => e.kind === 'USER' && e.ouPath.length > 0)!;
    expect(await host.directory.entities('acme.lan', { search: user.email!.toUpperCase() })).toEqual([user]);
    expect(await host.directory.entity('acme.lan', user.uid)).toEqual(user);
    expect(await host.directory.entity('acme.lan', emea.uid)).toEqual(emea);
    expect(await host.directory.entity('globex.lan', user.uid)).toBeNull();
    expect(await host.directory.entity('acme.lan', 'no-such-uid')).toBeNull();
    const shares = await host.directory.entities('acme.lan', { kinds: ['MAILSHARE'] });
    expect(shares.map((s) => s.name).sort()).toEqual(['contact', 'support']);
    expect(await host.mailboxLocation(shares[0])).toMatchObject({ server: 'bm-mail', imapLogin: `${shares[0].name}@acme.lan` });
    expect(await host.mailboxLocation(all.find((e) => e.kind === 'GROUP')!)).toBeNull();
  });

  it('flags entities of a generation that the live directory no longer has as deleted', async () => {
    const repoDir = await mkdtemp(path.join(tmpdir(), 'dp-repo-port-'));
    try {
      const repo = await Repository.init(new LocalStorage(repoDir));
      const { manifest } = await backupDatabase({ repo, server: 'bm-master', connection: sb.db, entities: host.entityData });
      const [victim] = await host.directory.entities('globex.lan', { kinds: ['USER'] });
      const owned = await withClient(sb.db, async (c) =>
        (await c.query(`SELECT uid FROM t_container WHERE owner = $1 AND container_type IN ('calendar', 'addressbook', 'todolist', 'notes', 'webappdata') ORDER BY uid`, [victim.uid])).rows.map((r) => r.uid));
      await withClient(sb.db, (c) => c.query(`DELETE FROM t_container_item WHERE id = (SELECT item_id FROM t_directory_entry WHERE entry_uid = $1)`, [victim.uid]));
      const live = [...(await host.directory.entities('acme.lan')), ...(await host.directory.entities('globex.lan')), ...(await host.directory.entities('global.virt'))];
      const listed = generationEntities(manifest, live);
      expect(listed.filter((e) => e.deleted).map((e) => e.uid)).toEqual([victim.uid]);
      expect(listed.find((e) => e.uid === victim.uid)!.containers.map((c) => c.uid)).toEqual(owned);
      expect(owned.length).toBeGreaterThanOrEqual(4);
      await repo.close();
    } finally {
      await rm(repoDir, { recursive: true, force: true });
    }
  });
});
