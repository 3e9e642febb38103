import { describe, expect, it } from 'vitest';
import { assertReadableFormat, productCompatibility } from '../../server/dataprotect/global-restore/compatibility.js';
import { mapServers, parseServerMap } from '../../server/dataprotect/global-restore/plan.js';
import { DP_FORMAT_VERSION } from '../../server/dataprotect/generation/format.js';

describe('which generations this program and this installation take back', () => {
  it('refuses a generation of a newer format, naming both versions', () => {
    expect(() => assertReadableFormat({ id: 'g1', formatVersion: DP_FORMAT_VERSION })).not.toThrow();
    expect(() => assertReadableFormat({ id: 'g2', formatVersion: DP_FORMAT_VERSION + 1 })).toThrow(
      `generation g2 is in generation format version ${DP_FORMAT_VERSION + 1}; this program reads versions up to ${DP_FORMAT_VERSION}`,
    );
  });

  it('same major version and a product not older: 4.0.1 restores on 4.4.3, not on 5.0 nor 4.0.0', () => {
    expect(productCompatibility('4.0.1', '4.4.3').status).toBe('met');
    expect(productCompatibility('4.0.1', '4.0.1-reference').status).toBe('met');
    expect(productCompatibility('4.0.1', '5.0.0')).toMatchObject({ status: 'not-met', advice: expect.stringContaining('4.x') });
    expect(productCompatibility('4.4.3', '4.0.1')).toMatchObject({ status: 'not-met', advice: expect.stringContaining('upgrade') });
    expect(productCompatibility('unknown', '4.0.1').status).toBe('warning');
  });

  it('maps servers by address, by --map-server, and explains the ones it cannot', () => {
    const here = [{ uid: 'bm-master', address: '10.0.0.1', tags: [] }, { uid: 'bm-mail', address: '10.0.0.2', tags: [] }];
    const gen = [{ uid: 'bm-master', address: '10.0.0.1' }, { uid: 'bm-mail', address: '192.168.1.2' }];
    const none = mapServers(gen, here, new Map());
    expect(none.mapped.map((m) => m.to.uid)).toEqual(['bm-master']);
    expect(none.unmapped[0].reason).toContain('--map-server 192.168.1.2=10.0.0.2');
    const mapped = mapServers(gen, here, parseServerMap(['192.168.1.2=bm-mail']));
    expect(mapped.unmapped).toEqual([]);
    expect(mapped.mapped.map((m) => `${m.from.uid}→${m.to.address}${m.explicit ? '!' : ''}`)).toEqual(['bm-master→10.0.0.1', 'bm-mail→10.0.0.2!']);
    expect(mapServers(gen, here, parseServerMap(['10.9.9.9=bm-mail'])).unmapped.map((u) => u.reason).join()).toContain('no server of the generation');
    expect(() => parseServerMap(['a=b=c'])).toThrow(/OLD=NEW/);
  });
});
