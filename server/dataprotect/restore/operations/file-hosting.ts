// File hosting: a domain's `/filehosting/<domain>` of the filehosting/data part swapped back into place.

import path from 'node:path';
import { NotFoundError, restore } from '../../../engine/index.js';
import { InvalidInputError } from '../../errors.js';
import { FILEHOSTING_TAG, type PlannedRestore, type RestoreContext, type RestoreEnv } from './context.js';

export async function restoreFileHosting(env: RestoreEnv, p: PlannedRestore, ctx: RestoreContext): Promise<Record<string, unknown>> {
  const part = p.catalog.generation.parts.find((x) => x.tag === FILEHOSTING_TAG);
  if (!part) throw new InvalidInputError('operation', `generation ${p.catalog.generation.id} has no ${FILEHOSTING_TAG} part`);
  const loc = (await env.host.dataLocations(part.server, FILEHOSTING_TAG))[0];
  if (!loc) throw new Error(`server ${part.server} keeps no file-hosting data`);
  const sub = `${loc.virtualPath}/${p.entry.domainUid}`;
  let files = 0;
  let bytes = 0;
  await env.host.writers.trees.replaceFileHosting(p.entry.domainUid, async (staging) => {
    const r = await restore(env.repo, part.snapshot, {
      target: staging,
      include: [sub],
      progress: { update: (s) => ctx.progress({ done: s.files, total: s.filesTotal, unit: 'files', bytes: s.bytes }) },
    }).catch((e: Error) => {
      // A domain without file-hosting data in the generation: the live data becomes empty, as it was.
      if (e instanceof NotFoundError) return null;
      throw e;
    });
    if (r?.errors) throw new Error(`restoring ${sub}: ${r.errors} errors`);
    files = r?.files ?? 0;
    bytes = r?.bytes ?? 0;
    return path.join(staging, sub);
  });
  ctx.info(`file hosting of ${p.entry.domainUid}: ${files} files (${bytes} bytes)`);
  return { domain: p.entry.domainUid, files, bytes };
}
