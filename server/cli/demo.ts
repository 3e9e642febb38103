/**
 * `npm run demo`: the engine on a generated mail spool under ./var/demo: back up, a day of mail
 * (new messages, deletions, flag changes, moves), back up again, lose a mailbox, restore it, check.
 */
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { churn, generateSpool, userName } from '../demo/mail-spool.js';
import { main } from './main.js';

const root = resolve(process.env.DP_VAR_DIR ?? 'var', 'demo');
const spool = join(root, 'spool');
const repo = join(root, 'repo');

async function step(title: string, argv: string[]): Promise<void> {
  process.stdout.write(`\n== ${title}\n$ bm-dataprotect ${argv.join(' ')}\n`);
  const code = await main(['node', 'bm-dataprotect', ...argv]);
  if (code !== 0) throw new Error(`'bm-dataprotect ${argv.join(' ')}' exited with ${code}`);
}

async function run(): Promise<void> {
  await rm(root, { recursive: true, force: true });
  process.stdout.write(`generating a mail spool of 12 users in ${spool} ...\n`);
  const n = await generateSpool(spool, { users: 12, messagesPerUser: 80 });
  process.stdout.write(`${n} messages\n`);
  await step('create the repository', ['repo', 'init', '--repo', repo]);
  await step('first backup: everything is new', ['backup', '--repo', repo, '--tag', 'mail/imap', '--server', 'mail.demo', spool]);
  const day = await churn(spool, { day: 1 });
  process.stdout.write(`\na day of mail: ${day.added} new messages, ${day.deleted} deleted, ${day.flagged} flag changes (renames), ${day.moved} moved\n`);
  await step('second backup: only the new mail is read; renamed and moved messages are recognised', ['backup', '--repo', repo, '--tag', 'mail/imap', '--server', 'mail.demo', spool]);
  await step('the two snapshots', ['snapshots', '--repo', repo]);
  const victim = join(spool, userName(3));
  await rm(victim, { recursive: true, force: true });
  process.stdout.write(`\n${userName(3)}'s mailbox is gone (${victim} deleted)\n`);
  await step(`restore ${userName(3)}'s mailbox from the latest snapshot`, ['restore', 'latest', '--repo', repo, '--tag', 'mail/imap', '--include', victim, '--target', join(root, 'restored')]);
  await step('check the repository, reading all data', ['check', '--repo', repo, '--read-data']);
  process.stdout.write(`\nthe restored mailbox is in ${join(root, 'restored', victim)}\n`);
}

run().catch((err) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
