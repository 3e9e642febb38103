// Directory entries put back into the reference host's database: a deleted user's rows from the record the
// generation saved (entities.ts, userRecords) (and the user added back to Dovecot's user list), an organisational unit renamed or recreated.

import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { ConnectionSettings } from '../../pg/settings.js';
import { connect } from '../../pg/client.js';
import { insertRows } from '../../pg/insert-rows.js';
import type { DirectoryWriter } from '../port.js';
import { addDovecotUser } from './dovecot.js';
import type { HostLayout } from './layout.js';

type Row = Record<string, unknown>;

async function rows(c: pg.ClientBase, sql: string, params: unknown[] = []): Promise<Row[]> {
  return (await c.query(sql, params)).rows as Row[];
}

function strip(r: Row, ...keys: string[]): Row {
  const out = { ...r };
  for (const k of keys) delete out[k];
  return out;
}

/** A user's directory rows as entities.ts saves them (rows as row_to_json renders them, groups and unit by uid). */
interface SavedUser {
  item: Row | null;
  entry: Row | null;
  user: Row | null;
  mailbox: Row[];
  emails: Row[];
  groups: string[];
  ou: string | null;
  aclContainers: { container: Row; acl: Row[] }[];
}

export function directoryWriter(layout: HostLayout, live: ConnectionSettings): DirectoryWriter {
  return {
    async restoreUser(record: string, domainUid: string, uid: string) {
      let saved: SavedUser;
      try {
        saved = JSON.parse(record) as SavedUser;
      } catch (e) {
        throw new Error(`the saved directory record of user ${uid} is not readable: ${(e as Error).message}`);
      }
      const { item, entry, user, mailbox, emails, groups, ou, aclContainers } = saved;
      if (!item) throw new Error(`user ${uid} is not in the directory of ${domainUid} in the generation`);
      const dst = await connect(live);
      try {
        await dst.query('BEGIN');
        try {
          const dir = (await rows(dst, `SELECT id FROM t_container WHERE uid = $1 AND container_type = 'dir' FOR UPDATE`, [domainUid]))[0];
          if (!dir) throw new Error(`domain ${domainUid} no longer exists`);
          const existing = (await rows(dst, 'SELECT id FROM t_container_item WHERE container_id = $1 AND uid = $2', [dir.id, uid]))[0];
          if (existing) await dst.query('DELETE FROM t_container_item WHERE id = $1', [existing.id]);
          const ins = await dst.query<{ id: string }>(
            `INSERT INTO t_container_item (container_id, uid, version, external_id, displayname, createdby, updatedby, created, updated, flags)
             SELECT $2, uid, version, external_id, displayname, createdby, updatedby, created, updated, flags
               FROM json_populate_record(NULL::t_container_item, $1::json) RETURNING id`,
            [JSON.stringify(item), dir.id],
          );
          const itemId = ins.rows[0].id;
          // The OU as it is now (by uid); gone OUs leave the user at the root, as BlueMind does.
          const ouNow = ou ? (await rows(dst, 'SELECT i.id FROM t_container_item i WHERE i.container_id = $1 AND i.uid = $2', [dir.id, ou]))[0]?.id ?? null : null;
          if (entry) await insertRows(dst, 't_directory_entry', [{ ...strip(entry, 'item_id', 'orgunit_item_id'), item_id: itemId, orgunit_item_id: ouNow }]);
          if (user) await insertRows(dst, 't_domain_user', [{ ...strip(user, 'item_id'), item_id: itemId }]);
          if (mailbox.length) await insertRows(dst, 't_mailbox', mailbox.map((m) => ({ ...strip(m, 'item_id'), item_id: itemId })));
          if (emails.length) await insertRows(dst, 't_mailbox_email', emails.map((m) => ({ ...strip(m, 'item_id'), item_id: itemId })));
          let restoredGroups = 0;
          for (const g of groups) {
            const now = (await rows(dst, 'SELECT i.id FROM t_container_item i JOIN t_group gr ON gr.item_id = i.id WHERE i.container_id = $1 AND i.uid = $2', [dir.id, g]))[0];
            if (!now) continue;
            await dst.query('INSERT INTO t_group_usermember (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [now.id, itemId]);
            restoredGroups++;
          }
          for (const { container: ac, acl } of aclContainers) {
            await dst.query('DELETE FROM t_container WHERE uid = $1', [ac.uid]);
            const cid = (await dst.query<{ id: number }>(
              `INSERT INTO t_container (uid, container_type, name, owner, createdby, updatedby, created, updated, defaultcontainer, domain_uid, readonly)
               SELECT uid, container_type, name, owner, createdby, updatedby, created, updated, defaultcontainer, domain_uid, readonly
                 FROM json_populate_record(NULL::t_container, $1::json) RETURNING id`,
              [JSON.stringify(ac)],
            )).rows[0].id;
            await insertRows(dst, 't_container_acl', acl.map((a) => ({ ...a, container_id: cid })));
          }
          await dst.query('COMMIT');
          // Dovecot's user list: the user exists again (same password hash as saved).
          if (user && entry?.email) await addDovecotUser(layout, String(entry.email), String(user.password ?? ''));
          return { groups: restoredGroups, groupsGone: groups.length - restoredGroups };
        } catch (e) {
          await dst.query('ROLLBACK').catch(() => {});
          throw e;
        }
      } finally {
        await dst.end().catch(() => {});
      }
    },

    async restoreOrgUnit(domainUid: string, uid: string, ouPath: string[]) {
      if (ouPath.length === 0) throw new Error('an organisational unit needs a name');
      const c = await connect(live);
      try {
        await c.query('BEGIN');
        const dir = (await rows(c, `SELECT id FROM t_container WHERE uid = $1 AND container_type = 'dir' FOR UPDATE`, [domainUid]))[0];
        if (!dir) throw new Error(`domain ${domainUid} no longer exists`);
        const name = ouPath[ouPath.length - 1];
        const found = (await rows(c, `SELECT i.id, o.name FROM t_container_item i JOIN t_directory_ou o ON o.item_id = i.id WHERE i.container_id = $1 AND i.uid = $2`, [dir.id, uid]))[0];
        let outcome: 'renamed' | 'recreated' | 'unchanged';
        if (found) {
          outcome = found.name === name ? 'unchanged' : 'renamed';
          if (outcome === 'renamed') {
            await c.query('UPDATE t_directory_ou SET name = $2 WHERE item_id = $1', [found.id, name]);
            await c.query('UPDATE t_directory_entry SET displayname = $2 WHERE item_id = $1', [found.id, name]);
            await c.query('UPDATE t_container_item SET displayname = $2, updated = now(), version = version + 1 WHERE id = $1', [found.id, name]);
          }
        } else {
          // Missing parents are found by name under their parent, or recreated.
          let parent: unknown = null;
          for (const [depth, part] of ouPath.slice(0, -1).entries()) {
            const p = (await rows(c, `SELECT o.item_id AS id FROM t_directory_ou o JOIN t_container_item i ON i.id = o.item_id
                                       WHERE i.container_id = $1 AND o.name = $2 AND o.parent_item_id IS NOT DISTINCT FROM $3`, [dir.id, part, parent]))[0];
            parent = p ? p.id : await createOu(c, Number(dir.id), `${uid}-parent-${depth}-${randomBytes(3).toString('hex')}`, part, parent);
          }
          await createOu(c, Number(dir.id), uid, name, parent);
          outcome = 'recreated';
        }
        await c.query('COMMIT');
        return outcome;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        await c.end().catch(() => {});
      }
    },
  };
}

async function createOu(c: pg.ClientBase, dirId: number, uid: string, name: string, parent: unknown): Promise<unknown> {
  const id = (await c.query<{ id: string }>(
    `INSERT INTO t_container_item (container_id, uid, displayname, createdby, updatedby) VALUES ($1, $2, $3, 'dataprotect', 'dataprotect') RETURNING id`,
    [dirId, uid, name],
  )).rows[0].id;
  await c.query('INSERT INTO t_directory_ou (item_id, name, parent_item_id) VALUES ($1, $2, $3)', [id, name, parent]);
  await c.query(`INSERT INTO t_directory_entry (item_id, kind, entry_uid, displayname, orgunit_item_id) VALUES ($1, 'ORG_UNIT', $2, $3, $4)`, [id, uid, name, parent]);
  return id;
}
