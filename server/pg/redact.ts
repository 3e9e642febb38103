// Passwords never reach a log, an error or a terminal: what is printed about a database goes through here.

/** The URL with its password replaced by `***`; an unparsable URL is not echoed at all (it may hold one). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}

/** Removes every occurrence of the password (raw and URL-encoded) from a text, e.g. a tool's error message. */
export function redactPassword(text: string, s: { password?: string }): string {
  if (!s.password) return text;
  let out = text;
  for (const secret of new Set([s.password, encodeURIComponent(s.password)])) {
    if (secret.length > 0) out = out.split(secret).join('***');
  }
  return out;
}

const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s/]+@/gi;

/** Every URL's password in a text (`postgres://dp:secret@db/…`, `smtp://u:p@relay`) replaced by `***`. */
export function redactUrlPasswords(text: string): string {
  return text.replace(URL_PASSWORD, '$1***@');
}
