// The reference host as a HostPort: BlueMind's schema in a real PostgreSQL, a Maildir spool served by a real
// Dovecot, and archive / file-hosting / configuration directories, on two servers of one machine.

import type { ConnectionSettings } from '../../pg/settings.js';
import type { DataLocation, DirectoryEntity, EntityDataReader, HostDatabase, HostDirectory, HostPort, MailboxLocation, Tag } from '../port.js';
import { clientQuery } from '../query.js';
import { withClient } from '../../pg/client.js';
import { readDirectory, referenceEntityData } from './entities.js';
import { referenceRowExport } from './row-export.js';
import { CORE_SERVER, MAIL_SERVER, TOPOLOGY, archiveLocation, fileLocations, hostLayout, type HostLayout } from './layout.js';
import { referenceRenderer } from './render.js';
import { databaseWriter } from './container-writer.js';
import { directoryWriter } from './directory-writer.js';
import { folderDir, imapWriter, maildirWriter } from './mail-writers.js';
import { treeReplacer } from './tree-replacer.js';
import path from 'node:path';

export class ReferenceHost implements HostPort {
  readonly layout: HostLayout;
  readonly entityData: EntityDataReader = { ...referenceEntityData, rowExport: referenceRowExport };
  readonly renderer = referenceRenderer;
  readonly writers;
  readonly directory: HostDirectory;

  constructor(
    root: string,
    readonly database: ConnectionSettings,
  ) {
    this.layout = hostLayout(root);
    this.writers = {
      mail: maildirWriter(this.layout),
      imap: () => imapWriter(this.layout),
      database: databaseWriter(database),
      trees: treeReplacer(this.layout),
      directory: directoryWriter(this.layout, database),
    };
    const live = <T>(fn: (q: ReturnType<typeof clientQuery>) => Promise<T>) => withClient(database, (c) => fn(clientQuery(c)));
    this.directory = {
      domains: () =>
        live(async (q) =>
          (await q.query<{ uid: string; name: string; label: string; aliases: string[]; global: boolean }>(
            `SELECT name AS uid, name, label, aliases, global FROM t_domain ORDER BY name`,
          )).map((d) => ({ ...d })),
        ),
      entities: (domainUid, query = {}) =>
        live(async (q) => {
          const needle = query.search?.toLowerCase();
          return (await readDirectory(q, domainUid)).filter(
            (e) =>
              (!query.kinds || query.kinds.includes(e.kind)) &&
              (!needle || [e.name, e.displayName, e.email ?? ''].some((s) => s.toLowerCase().includes(needle))),
          );
        }),
      entity: (domainUid, uid) => live(async (q) => (await readDirectory(q, domainUid, uid))[0] ?? null),
    };
  }

  async servers() {
    return TOPOLOGY.map((s) => ({ ...s, tags: [...s.tags] }));
  }

  async databases(): Promise<HostDatabase[]> {
    return [{ server: CORE_SERVER, tag: 'bm/pgsql', connection: this.database }];
  }

  async dataLocations(server: string, tag: Tag): Promise<DataLocation[]> {
    return fileLocations(this.layout, server, tag).map((l) => ({ server, tag, ...l }));
  }

  async mailboxLocation(entity: DirectoryEntity): Promise<MailboxLocation | null> {
    if (entity.kind !== 'USER' && entity.kind !== 'MAILSHARE') return null;
    const partPath = `/spool/${entity.domainUid}/${entity.name}`;
    return {
      server: MAIL_SERVER,
      maildir: path.join(this.layout.spool, entity.domainUid, entity.name),
      partPath,
      imapLogin: `${entity.name}@${entity.domainUid}`,
      archive: archiveLocation(this.layout, entity),
    };
  }

  /** Maildir directory of one folder of a mailbox. */
  folderPath(loc: MailboxLocation, folder: string): string {
    return folderDir(loc.maildir, folder);
  }
}
