/** Quotes an SQL identifier (a database, table or column name), doubling any quote inside it. */
export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}
