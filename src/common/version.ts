import { readFileSync } from 'node:fs';

/** Sluice's version, from package.json (two levels above both src/common/ and dist/). */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
