import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { BlobType } from '../../server/engine/blob-index.js';
import { mimeCuts, MIN_MIME_BODY } from '../../server/engine/mime-cuts.js';
import { Archiver, findNode, restore, type Repository } from '../../server/engine/index.js';
import { newRepo, tempDir } from './helpers.js';

const b64 = (n: number, seed = randomBytes(n)) => seed.toString('base64').replace(/.{1,76}/g, '$&\r\n');

/** A message with a text part and one base64 attachment; `eol` is the line ending its mailer writes. */
function message(headers: string, attachment: string, eol = '\r\n', encodingHeader = 'Content-Transfer-Encoding: base64'): Buffer {
  const body = attachment.replace(/\r\n/g, eol);
  return Buffer.from(
    [headers, 'Content-Type: multipart/mixed; boundary="XyZ"', '', '--XyZ', 'Content-Type: text/plain', '', 'Hello,', 'see attached.', '--XyZ',
      'Content-Type: application/pdf; name="a.pdf"', encodingHeader, 'Content-Disposition: attachment', '', body + '--XyZ--', ''].join(eol),
    'latin1',
  );
}

const pieces = (buf: Buffer) => {
  const cuts = mimeCuts(buf);
  return cuts.map((end, i) => buf.subarray(i ? cuts[i - 1] : 0, end));
};

describe('MIME cut points', () => {
  test('a base64 attachment is a piece of its own, the same bytes whatever the headers around it', () => {
    const att = b64(20_000);
    const a = message('From: a@x\r\nTo: b@x\r\nSubject: report', att);
    const b = message('From: c@x\r\nTo: d@x\r\nSubject: Fwd: report\r\nX-Spam: no', att);
    const pa = pieces(a);
    const pb = pieces(b);
    expect(pa).toHaveLength(3);
    expect(Buffer.concat(pa).equals(a)).toBe(true);
    expect(pa[1].toString('latin1')).toBe(att);
    expect(pa[1].equals(pb[1])).toBe(true);
    expect(pa[0].equals(pb[0])).toBe(false);
    expect(pa[2].toString()).toBe('--XyZ--\r\n');
  });

  test('LF line endings, any spelling of the header, several attachments', () => {
    const att1 = b64(10_000);
    const att2 = b64(12_000);
    for (const header of ['content-transfer-encoding: BASE64', 'CONTENT-TRANSFER-ENCODING:base64', 'Content-transfer-encoding:  Base64 ']) {
      const one = message('Subject: s', att1, '\n', header);
      const p = pieces(one);
      expect(p, header).toHaveLength(3);
      expect(p[1].toString('latin1')).toBe(att1.replace(/\r\n/g, '\n'));
    }
    const two = Buffer.concat([message('Subject: 1', att1).subarray(0, -9), Buffer.from(`--XyZ\r\nContent-Transfer-Encoding: base64\r\n\r\n${att2}--XyZ--\r\n`)]);
    const p = pieces(two);
    expect(p.map((x) => x.toString('latin1'))).toEqual([expect.any(String), att1, '--XyZ\r\nContent-Transfer-Encoding: base64\r\n\r\n', att2, '--XyZ--\r\n']);
    expect(Buffer.concat(p).equals(two)).toBe(true);
  });

  test('no cut: a body under the minimum, quoted-printable, the header name inside a body, no body at all', () => {
    expect(mimeCuts(message('Subject: s', b64(MIN_MIME_BODY / 2)))).toHaveLength(1);
    const qp = message('Subject: s', 'a'.repeat(20_000) + '\r\n', '\r\n', 'Content-Transfer-Encoding: quoted-printable');
    expect(mimeCuts(qp)).toEqual([qp.length]);
    const quoted = Buffer.from(`Subject: s\r\n\r\nwe use > Content-Transfer-Encoding: base64\r\n\r\n${'x'.repeat(20_000)}`);
    expect(mimeCuts(quoted)).toEqual([quoted.length]);
    const cut = Buffer.from('Subject: s\r\nContent-Transfer-Encoding: base64');
    expect(mimeCuts(cut)).toEqual([cut.length]);
    expect(mimeCuts(Buffer.alloc(0))).toEqual([0]);
  });

  test('a body that runs to the end of the file (no closing boundary) ends the last piece', () => {
    const att = b64(9_000);
    const m = Buffer.from(`Subject: s\r\nContent-Transfer-Encoding: base64\r\n\r\n${att}`);
    const p = pieces(m);
    expect(p).toHaveLength(2);
    expect(p[1].toString('latin1')).toBe(att);
  });
});

describe('backup of messages that share an attachment', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let repo: Repository;
  beforeEach(async () => {
    dir = await tempDir('dp-mime-');
    repo = await newRepo(dir.path);
  });
  afterEach(async () => {
    await repo.close();
    await dir.cleanup();
  });

  test('stores the attachment once, and restores every message byte for byte', async () => {
    const att = b64(100_000);
    const src = join(dir.path, 'spool');
    await mkdir(join(src, 'alice/cur'), { recursive: true });
    await mkdir(join(src, 'bob/cur'), { recursive: true });
    const files = {
      'alice/cur/1:2,S': message('From: boss@x\r\nTo: alice@x\r\nSubject: plan', att),
      'bob/cur/7:2,': message('From: alice@x\r\nTo: bob@x\r\nSubject: Fwd: plan', att),
      'bob/cur/8:2,': message('From: alice@x\r\nTo: bob@x\r\nSubject: other', b64(50_000)),
    };
    for (const [name, bytes] of Object.entries(files)) await writeFile(join(src, name), bytes);
    const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap' });
    await a.addTree('/spool', src);
    const snap = await a.commit();

    const alice = (await findNode(repo, snap, '/spool/alice/cur/1:2,S')).content!;
    const bob = (await findNode(repo, snap, '/spool/bob/cur/7:2,')).content!;
    expect(alice).toHaveLength(3);
    expect(alice[1]).toBe(bob[1]);
    let data = 0;
    for (const [, loc] of repo.index.entries()) if (loc.type === BlobType.Data) data++;
    // Three heads, three tails (two of them equal), two attachments.
    expect(data).toBe(3 + 1 + 2);
    // Stored once: the repository holds less than the three messages' attachments (base64 of random bytes does not compress below 3/4).
    expect(snap.summary.bytesAdded).toBeLessThan(att.length + 70_000);

    const target = join(dir.path, 'restored');
    await restore(repo, snap, { target });
    for (const [name, bytes] of Object.entries(files)) expect((await readFile(join(target, 'spool', name))).equals(bytes), name).toBe(true);
  });
});
