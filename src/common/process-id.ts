import { randomBytes } from 'node:crypto';

/** A readable, unique id usable as a subject token: `<kind>-<host>-<random>`. */
export function processId(kind: string, host: string): string {
  const safeHost = host.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40);
  return `${kind}-${safeHost}-${randomBytes(3).toString('hex')}`;
}
