import { expect, it } from 'vitest';
import { UNAVAILABLE_MESSAGES } from '../../server/dataprotect/unavailable.js';
import { MESSAGES } from '../../ui-components/src/i18n.js';

it('English and French carry the same messages, each translated', () => {
  expect(Object.keys(MESSAGES.fr).sort()).toEqual(Object.keys(MESSAGES.en).sort());
  for (const key of Object.keys(MESSAGES.en) as (keyof typeof MESSAGES.en)[]) {
    expect(MESSAGES.fr[key].length, key).toBeGreaterThan(0);
    const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    expect(placeholders(MESSAGES.fr[key]), key).toEqual(placeholders(MESSAGES.en[key]));
  }
});

it("the console's explanation of each missing capability is the server's, translated", () => {
  for (const [capability, text] of Object.entries(UNAVAILABLE_MESSAGES)) {
    expect(MESSAGES.en[`unavailable.${capability}` as keyof typeof MESSAGES.en]).toBe(text);
  }
});
