// Every number a request body carries is a whole number (days, counts, offsets). JSON.parse reads `1e3` or
// `7.0` as an integer, so the contract's `type: integer` would take them: a number written with an exponent or a
// fraction is turned into a string before parsing, and the validation refuses it with a 400 naming the field.
// (Should a request field ever take fractions, this must learn which fields; none does.)

const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** The JSON text with every number not written as plain digits quoted; strings and the rest untouched. */
export function quoteNonIntegerNumbers(text: string): string {
  let out = '';
  let i = 0;
  let from = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      // Skip the string, escapes included.
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      continue;
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (m) {
        if (/[.eE]/.test(m[0])) {
          out += text.slice(from, i) + JSON.stringify(m[0]);
          from = i + m[0].length;
        }
        i += m[0].length;
        continue;
      }
    }
    i++;
  }
  return out + text.slice(from);
}
