import { randomInt } from 'node:crypto';
import { BlobIdSet } from './blob-index.js';
import { fromHex, toHex } from './hash.js';
import { walkIndex } from './index-file.js';
import { packBytes } from './pack.js';
import { PackVerifier } from './pack-check.js';
import { mapLimit, type Repository } from './repository.js';
import { RestoreWriter } from './restore-writes.js';
import type { SnapshotInfo } from './snapshot.js';
import { blobProblem, contentSizeProblem } from './validate.js';

export interface CheckOptions {
  /** Read every pack and verify every blob. */
  readData?: boolean;
  /** Read this percentage of the packs, chosen at random. */
  readDataSubset?: number;
  progress?: { update?(phase: string, done: number, total: number): void };
  /**
   * Packs are verified on this thread too, with one codec worker fewer (as a restore writes): one V8 isolate and
   * its buffers less, the same cores busy; but this thread is then busy a whole pack at a time (tens of ms): for
   * a command line, not for a server that answers requests meanwhile.
   */
  packsHere?: boolean;
}

export interface CheckResult {
  errors: string[];
  warnings: string[];
  snapshots: number;
  trees: number;
  packs: number;
  packsRead: number;
  blobs: number;
}

/**
 * Verifies the repository: every index and snapshot file matches its name, every tree reachable from a
 * snapshot reads and decodes, every blob a file needs is indexed in a pack that exists with the right
 * size; with `readData`, packs are read whole and every blob is decompressed and hashed.
 */
export async function check(repo: Repository, opts: CheckOptions = {}): Promise<CheckResult> {
  const r: CheckResult = { errors: [], warnings: [], snapshots: 0, trees: 0, packs: 0, packsRead: 0, blobs: 0 };
  const p = opts.progress;

  // Index files, one by one, so that one bad file is reported and the others still count.
  const indexNames: string[] = [];
  for await (const f of repo.storage.list('index')) indexNames.push(f.name);
  // Per pack only what is checked against the pack itself (its blob count and stored bytes): the blobs' own
  // entries are checked as each index file is read, and the index table already holds their locations.
  const packBlobs = new Map<string, { blobs: number; stored: number; dictionary?: string }>();
  let done = 0;
  await mapLimit(indexNames, 4, async (name) => {
    let file: Buffer;
    try {
      file = await repo.readIndexBytes(name);
    } catch (err) {
      r.errors.push(`index ${name.slice(0, 12)}: ${(err as Error).message}`);
      return;
    }
    // A file the repository had not loaded (written since it was opened) is indexed on the way.
    const add = !repo.indexFiles.has(name);
    const found: string[] = [];
    let pack: { blobs: number; stored: number; dictionary?: string } | null = null;
    try {
      walkIndex(name, file, repo.cipher, {
        pack: (id, _count, dictionary) => {
          pack = packBlobs.has(id) ? null : { blobs: 0, stored: 0, ...(dictionary !== undefined ? { dictionary } : {}) };
          if (pack) packBlobs.set(id, pack);
        },
        blob: (b) => {
          if (add) repo.indexBlob(b.id, b);
          if (!pack) return;
          pack.blobs++;
          pack.stored += b.length;
          const problem = blobProblem(b, repo.limits);
          if (problem) found.push(`index ${name.slice(0, 12)}: blob ${toHex(b.id).slice(0, 12)} in pack ${b.pack.slice(0, 12)}: ${problem}`);
        },
      });
    } catch (err) {
      r.errors.push(`index ${name.slice(0, 12)}: ${(err as Error).message}`);
      return;
    }
    if (add) repo.indexFiles.add(name);
    r.errors.push(...found);
    p?.update?.('index', ++done, indexNames.length);
  });

  // Packs: present, and exactly as long as their index says.
  const stored = new Map<string, number>();
  for await (const f of repo.storage.list('data')) stored.set(f.name, f.size);
  r.packs = packBlobs.size;
  for (const [pack, blobs] of packBlobs) {
    const size = stored.get(pack);
    if (size === undefined) {
      r.errors.push(`pack ${pack.slice(0, 12)}: missing (${blobs.blobs} blobs indexed in it)`);
      continue;
    }
    const expected = packBytes(blobs.blobs, blobs.stored, repo.encrypted);
    if (size !== expected) r.errors.push(`pack ${pack.slice(0, 12)}: size ${size}, index says ${expected} (truncated or damaged)`);
  }
  // Dictionaries: each one a pack names is a blob of the repository stored without one (FORMAT.md).
  const dictionaryProblems = new Map<string, string>();
  for (const dictionary of new Set([...packBlobs.values()].map((b) => b.dictionary))) {
    if (dictionary === undefined) continue;
    const loc = repo.index.get(fromHex(dictionary));
    const problem = !loc ? 'is in no index' : loc.dictionary !== undefined ? 'is itself compressed with a dictionary' : null;
    if (problem) dictionaryProblems.set(dictionary, problem);
  }
  for (const [pack, blobs] of packBlobs) {
    const problem = blobs.dictionary !== undefined && dictionaryProblems.get(blobs.dictionary);
    if (problem) r.errors.push(`pack ${pack.slice(0, 12)}: its dictionary ${blobs.dictionary!.slice(0, 12)} ${problem} (its blobs compressed with it cannot be read)`);
  }
  for (const name of stored.keys()) {
    if (!packBlobs.has(name)) r.warnings.push(`pack ${name.slice(0, 12)}: not referenced by any index (left by an interrupted backup; the next backup indexes it, prune removes it)`);
  }

  // Data, all or a sample, verified on the codec workers while this thread checks the snapshots and trees
  // below (both cores busy). As many packs in flight as there are workers, each verified whole on one: a pack
  // on a local disk is read by the worker itself through a small window; one elsewhere is read here (through
  // the storage) and handed over without a copy.
  const data = (async (): Promise<string[]> => {
    const errors: string[] = [];
    const percent = opts.readData ? 100 : (opts.readDataSubset ?? 0);
    if (percent <= 0) return errors;
    // Packs no index lists are read too: one left by a write that failed half-way must not pass unseen.
    let packs = [...packBlobs.keys()].filter((k) => stored.has(k)).concat([...stored.keys()].filter((k) => !packBlobs.has(k)));
    if (percent < 100) {
      const want = Math.max(1, Math.ceil((packs.length * percent) / 100));
      for (let i = packs.length - 1; i > 0; i--) {
        const j = randomInt(i + 1);
        [packs[i], packs[j]] = [packs[j], packs[i]];
      }
      packs = packs.slice(0, want);
    }
    let read = 0;
    // With packsHere, as a restore: one worker fewer than a backup's, this thread verifying packs as the other
    // (between them it checks the structure below).
    const codec = repo.codec(opts.packsHere ? 'restore' : 'backup');
    // The dictionaries of the packs read, read first (and handed to the workers); one that cannot be read
    // fails the blobs that need it, each one reported by the pack's verdict.
    for (const pack of packs) {
      const dictionary = packBlobs.get(pack)?.dictionary;
      if (dictionary !== undefined && !dictionaryProblems.has(dictionary) && !repo.dictionaries.has(dictionary)) {
        await repo.loadDictionaries([{ dictionary }]).catch((err: Error) => {
          dictionaryProblems.set(dictionary, err.message);
          errors.push(`dictionary ${dictionary.slice(0, 12)}: ${err.message}`);
        });
      }
    }
    const local = repo.storage.localPath?.bind(repo.storage);
    const here = opts.packsHere ? new PackVerifier(repo.cipher, new RestoreWriter(repo.cipher?.key ?? null, repo.dictionaries)) : null;
    const lanes = [...(opts.packsHere ? [true] : []), ...new Array<boolean>(codec.size).fill(false)];
    let next = 0;
    await Promise.all(
      lanes.map(async (onThisThread) => {
        while (next < packs.length) {
          const pack = packs[next++];
          let found: string[];
          try {
            const indexed = packBlobs.get(pack)?.blobs ?? null;
            const from = local ? { file: local('data', pack) } : { data: await repo.storage.read('data', pack) };
            if (onThisThread) {
              found = here!.verify(pack, from, indexed, repo.limits, packBlobs.get(pack)?.dictionary);
              // Synchronous work a pack at a time: the structure check and the workers' next packs get their turn.
              await new Promise(setImmediate);
            } else found = await codec.verifyPack(pack, from, indexed, repo.limits, packBlobs.get(pack)?.dictionary);
          } catch (err) {
            errors.push(`pack ${pack.slice(0, 12)}: ${(err as Error).message}`);
            continue;
          }
          r.packsRead++;
          errors.push(...found);
          p?.update?.('data', ++read, packs.length);
        }
      }),
    );
    return errors;
  })();
  // Never left unhandled while the structure is checked: awaited at the end.
  data.catch(() => {});

  // Access: the repository holds every secret of what it protects (passwords in configuration files).
  const loose = (await repo.storage.accessProblems?.()) ?? [];
  if (loose.length) {
    const shown = loose.slice(0, 10).join(', ') + (loose.length > 10 ? ` and ${loose.length - 10} more` : '');
    r.warnings.push(`${loose.length} repository file(s) or folder(s) can be read or written by others than their owner: ${shown}; run 'chmod -R go-rwx ${repo.location}'`);
  }

  // Snapshots and their trees.
  const snapshotNames: string[] = [];
  for await (const f of repo.storage.list('snapshot')) snapshotNames.push(f.name);
  const seenTrees = new BlobIdSet();
  const seenData = new BlobIdSet();
  done = 0;
  for (const name of snapshotNames) {
    let snap: SnapshotInfo;
    try {
      snap = await repo.loadSnapshot(name);
    } catch (err) {
      r.errors.push(`snapshot ${name.slice(0, 12)}: ${(err as Error).message}`);
      continue;
    }
    r.snapshots++;
    const stack: [string, string][] = [[snap.tree, '/']];
    while (stack.length) {
      const [treeId, path] = stack.pop()!;
      if (!seenTrees.add(fromHex(treeId))) continue;
      r.trees++;
      let nodes;
      try {
        nodes = (await repo.loadTree(treeId, false)).nodes;
      } catch (err) {
        r.errors.push(`snapshot ${name.slice(0, 8)} tree ${path}: ${(err as Error).message}`);
        continue;
      }
      for (const n of nodes) {
        const childPath = path === '/' ? `/${n.name}` : `${path}/${n.name}`;
        if (n.type === 'dir') {
          if (n.subtree) stack.push([n.subtree, childPath]);
          else r.errors.push(`snapshot ${name.slice(0, 8)} ${childPath}: directory without a tree`);
        } else if (n.type === 'file') {
          const raws: number[] = [];
          let indexed = true;
          for (const id of n.content ?? []) {
            const bin = fromHex(id);
            const loc = repo.index.get(bin);
            if (loc) raws.push(loc.rawLength);
            else indexed = false;
            if (!seenData.add(bin)) continue;
            r.blobs++;
            if (!loc) r.errors.push(`snapshot ${name.slice(0, 8)} ${childPath}: blob ${id.slice(0, 12)} is in no index (data lost)`);
          }
          // What a restore checks before writing the file: its blobs add up to its size.
          const sizeProblem = indexed ? contentSizeProblem(n, raws) : null;
          if (sizeProblem) r.errors.push(`snapshot ${name.slice(0, 8)} ${childPath}: ${sizeProblem}`);
        }
      }
    }
    p?.update?.('snapshots', ++done, snapshotNames.length);
  }

  // The data's findings come after the structure's, whatever finished first.
  r.errors.push(...(await data));
  return r;
}
