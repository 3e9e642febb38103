// Writers single restores need beyond writers.ts: a mailbox (or a domain's file hosting) replaced by a tree the
// restore fills in a staging directory beside it, then swapped in with two renames and handed to Dovecot with a
// forced resynchronisation; a deleted user's directory rows copied back from a database restored as it was; an
// organisational unit renamed or recreated.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import type { ConnectionSettings } from '../../pg/settings.js';
import { connect } from '../../pg/client.js';
import { insertRows } from '../../pg/insert-rows.js';
import type { DirectoryWriter, MailboxLocation, TreeReplacer } from '../port.js';
import { handSpoolToDovecot } from './dovecot.js';
import { CORE_SERVER, MAIL_SERVER, type HostLayout } from './layout.js';

const run = promisify(execFile);

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * Replaces `live` by what `fill` writes under a fresh staging directory on the same filesystem (`fill` returns
 * the directory inside the staging root that becomes `live`). The old tree is renamed away first and removed
 * last, so an interrupted swap leaves either tree whole.
 */
async function swapTree(stagingParent: string, live: string, fill: (stagingRoot: string) => Promise<string>): Promise<void> {
  const staging = path.join(stagingParent, `.dp-restore-${Date.now()}-${randomBytes(4).toString('hex')}`);
  await fs.mkdir(staging, { recursive: true, mode: 0o700 });
  try {
    const filled = path.resolve(await fill(staging));
    if (filled !== staging && !inside(staging, filled)) throw new Error(`restored tree ${filled} is outside the staging directory`);
    if (!existsSync(filled)) await fs.mkdir(filled, { recursive: true });
    await fs.mkdir(path.dirname(live), { recursive: true });
    const old = `${staging}.old`;
    const hadLive = existsSync(live);
    if (hadLive) await fs.rename(live, old);
    await fs.rename(filled, live);
    if (hadLive) await fs.rm(old, { recursive: true, force: true });
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

export function treeReplacer(layout: HostLayout): TreeReplacer {
  return {
    async replaceMailbox(loc: MailboxLocation, fill) {
      if (!inside(layout.spool, loc.maildir)) throw new Error(`mailbox ${loc.maildir} is outside the spool ${layout.spool}`);
      // The staging directory is beside the spool (same filesystem), where Dovecot does not look.
      await swapTree(layout.serverRoot(MAIL_SERVER), loc.maildir, fill);
      await handSpoolToDovecot(layout, loc.maildir);
      await resyncMailbox(layout, loc);
    },
    async replaceFileHosting(domainUid, fill) {
      const live = path.join(layout.filehosting, domainUid);
      if (!inside(layout.filehosting, live) || domainUid.includes('/')) throw new Error(`invalid domain ${JSON.stringify(domainUid)}`);
      await swapTree(layout.serverRoot(CORE_SERVER), live, fill);
    },
  };
}

/** Dovecot rebuilds the mailbox's index from the files (new files get new UIDs, flags are read from names). */
export async function resyncMailbox(layout: HostLayout, loc: MailboxLocation): Promise<void> {
  const conf = path.join(layout.dovecot, 'dovecot.conf');
  if (!existsSync(conf)) return; // Dovecot never ran on this host: it indexes the files when it first opens them.
  try {
    await run('/usr/bin/doveadm', ['-c', conf, 'force-resync', '-u', loc.imapLogin, '*'], { timeout: 120_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`doveadm force-resync of ${loc.imapLogin}: ${(err.stderr || err.message).trim()}`);
  }
}

type Row = Record<string, unknown>;

async function rows(c: pg.ClientBase, sql: string, params: unknown[] = []): Promise<Row[]> {
  return (await c.query(sql, params)).rows as Row[];
}

function strip(r: Row, ...keys: string[]): Row {
  const out = { ...r };
  for (const k of keys) delete out[k];
  return out;
}

/** Row values as JSON the way json_populate_record reads them back (timestamps as PostgreSQL prints them). */
async function asJsonRows(c: pg.ClientBase, sql: string, params: unknown[]): Promise<Row[]> {
  return (await c.query<{ r: Row }>(`SELECT row_to_json(t) AS r FROM (${sql}) t`, params)).rows.map((x) => x.r);
}

export function directoryWriter(layout: HostLayout, live: ConnectionSettings): DirectoryWriter {
  return {
    async restoreUser(from: ConnectionSettings, domainUid: string, uid: string) {
      const src = await connect(from);
      const dst = await connect(live);
      try {
        const dirItem = `SELECT i.* FROM t_container_item i JOIN t_container c ON c.id = i.container_id
                          WHERE c.uid = $1 AND c.container_type = 'dir' AND i.uid = $2`;
        const [item] = await asJsonRows(src, dirItem, [domainUid, uid]);
        if (!item) throw new Error(`user ${uid} is not in the directory of ${domainUid} in the generation`);
        const oldId = item.id;
        const entry = (await asJsonRows(src, 'SELECT * FROM t_directory_entry WHERE item_id = $1', [oldId]))[0];
        const user = (await asJsonRows(src, 'SELECT * FROM t_domain_user WHERE item_id = $1', [oldId]))[0];
        const mailbox = await asJsonRows(src, 'SELECT * FROM t_mailbox WHERE item_id = $1', [oldId]);
        const emails = await asJsonRows(src, 'SELECT * FROM t_mailbox_email WHERE item_id = $1', [oldId]);
        const groups = await rows(src, `SELECT gi.uid FROM t_group_usermember m JOIN t_container_item gi ON gi.id = m.group_id WHERE m.user_id = $1`, [oldId]);
        const ou = entry?.orgunit_item_id
          ? (await rows(src, 'SELECT uid FROM t_container_item WHERE id = $1', [entry.orgunit_item_id]))[0]?.uid
          : null;
        // Containers that are the user's own but not per-entity exports (mailbox ACLs).
        const aclContainers = await asJsonRows(src, `SELECT * FROM t_container WHERE owner = $1 AND domain_uid = $2 AND container_type = 'mailboxacl'`, [uid, domainUid]);

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
            const now = (await rows(dst, 'SELECT i.id FROM t_container_item i JOIN t_group gr ON gr.item_id = i.id WHERE i.container_id = $1 AND i.uid = $2', [dir.id, g.uid]))[0];
            if (!now) continue;
            await dst.query('INSERT INTO t_group_usermember (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [now.id, itemId]);
            restoredGroups++;
          }
          for (const ac of aclContainers) {
            const acl = await asJsonRows(src, 'SELECT subject, verb, position FROM t_container_acl WHERE container_id = $1', [ac.id]);
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
          if (user && entry?.email) await ensureDovecotUser(layout, String(entry.email), String(user.password ?? ''));
          return { groups: restoredGroups, groupsGone: groups.length - restoredGroups };
        } catch (e) {
          await dst.query('ROLLBACK').catch(() => {});
          throw e;
        }
      } finally {
        await src.end().catch(() => {});
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

/** Adds (or updates) a line of the reference Dovecot's passwd-file. */
async function ensureDovecotUser(layout: HostLayout, email: string, hash: string): Promise<void> {
  const file = path.join(layout.dovecot, 'users');
  let text = '';
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    /* no file yet */
  }
  const lines = text.split('\n').filter((l) => l && !l.startsWith(email + ':'));
  lines.push(`${email}:${hash.startsWith('{') ? hash : '{SSHA256}' + hash}`);
  const st = await fs.stat(file).catch(() => null);
  await fs.writeFile(file, lines.join('\n') + '\n');
  if (st) {
    await fs.chmod(file, st.mode & 0o777);
    if (process.getuid?.() === 0) await fs.chown(file, st.uid, st.gid);
  }
}
