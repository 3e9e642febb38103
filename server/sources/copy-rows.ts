// Rows of a dump's COPY data as JSON: each value rendered as PostgreSQL renders it in JSON (json_build_array,
// row_to_json), from its COPY text and its column's type. An entity export is then derived from the dump's own
// rows instead of being stored a second time (see pgsql-backup.ts).

/** A COPY text row (without its newline) split into its values; null for `\N`. */
export function copyFields(line: string): (string | null)[] {
  const out: (string | null)[] = [];
  for (const raw of line.split('\t')) out.push(raw === '\\N' ? null : raw.includes('\\') ? unescapeCopy(raw) : raw);
  return out;
}

const SIMPLE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

function unescapeCopy(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== '\\' || i + 1 >= s.length) {
      out += c;
      continue;
    }
    const d = s[++i];
    if (SIMPLE[d]) out += SIMPLE[d];
    else if (d >= '0' && d <= '7') {
      let j = i;
      while (j < i + 3 && s[j] >= '0' && s[j] <= '7') j++;
      out += String.fromCharCode(parseInt(s.slice(i, j), 8));
      i = j - 1;
    } else if (d === 'x' && /[0-9a-fA-F]/.test(s[i + 1] ?? '')) {
      let j = i + 1;
      while (j < i + 3 && /[0-9a-fA-F]/.test(s[j] ?? '')) j++;
      out += String.fromCharCode(parseInt(s.slice(i + 1, j), 16));
      i = j - 1;
    } else out += d;
  }
  return out;
}

const NUMERIC = new Set(['smallint', 'integer', 'bigint', 'oid', 'real', 'double precision']);

/** JSON text of one value of type `type` (as `format_type` names it) given its COPY text. */
export function jsonValue(text: string | null, type: string): string {
  if (text === null) return 'null';
  if (type.endsWith('[]')) return arrayJson(text, type.slice(0, -2));
  if (NUMERIC.has(type) || type.startsWith('numeric')) return /^-?[\d.]+(e[-+]?\d+)?$/i.test(text) ? text : JSON.stringify(text);
  if (type === 'boolean') return text === 't' ? 'true' : 'false';
  if (type === 'json' || type === 'jsonb') return text;
  if (type.startsWith('timestamp') && /^\d{4,}-\d\d-\d\d \d/.test(text)) {
    const t = text.replace(' ', 'T');
    // timestamptz: PostgreSQL's JSON gives the offset with minutes (+02 -> +02:00).
    return JSON.stringify(type.includes('with time zone') ? t.replace(/([+-]\d\d)$/, '$1:00') : t);
  }
  return JSON.stringify(text);
}

/** A PostgreSQL array literal (`{a,"b c",NULL,{…}}`) as a JSON array of its elements. */
function arrayJson(text: string, element: string): string {
  let i = text.startsWith('[') ? text.indexOf('=') + 1 : 0; // dimension decoration
  const parse = (): string => {
    if (text[i] !== '{') throw new Error(`not an array literal: ${text.slice(0, 40)}`);
    i++;
    const items: string[] = [];
    while (i < text.length && text[i] !== '}') {
      if (text[i] === '{') items.push(parse());
      else if (text[i] === '"') {
        let v = '';
        for (i++; i < text.length && text[i] !== '"'; i++) v += text[i] === '\\' ? text[++i] : text[i];
        i++;
        items.push(jsonValue(v, element));
      } else {
        let v = '';
        for (; i < text.length && text[i] !== ',' && text[i] !== '}'; i++) v += text[i] === '\\' ? text[++i] : text[i];
        items.push(v === 'NULL' ? 'null' : jsonValue(v.trim(), element));
      }
      if (text[i] === ',') i++;
    }
    i++;
    return `[${items.join(',')}]`;
  };
  return parse();
}
