/**
 * The Sluice API a job bundle links against: the host's own, as a Flink job's jar leaves flink-dist
 * "provided". A bundle does not carry the API (it would be 5 MB of Sluice and its connectors' clients,
 * compiled afresh by every TaskManager for every job); its `import … from 'sluice'` reads the API from
 * the process that runs the bundle.
 *
 * - Bundling side: `linkedApi()` gives the names the package entry exports and its version; the
 *   bundler (`bundler.ts`, option `hostApi`) writes a module that takes each name from the host.
 * - Running side: `provideHostApi()` loads the package entry of this process and publishes its namespace
 *   under a global symbol before a bundle is imported (program-runner.ts does it for every program).
 * - A bundle built against another major.minor version of Sluice than the host's refuses to run, with a
 *   message naming both versions; a bundle imported where no host provided the API says so.
 *
 * The package entry is found next to this file (`../index.js` in dist/, `../index.ts` under tsx), the
 * same file the client's `import … from 'sluice'` resolves to, so the client and the bundle it builds
 * agree on one API.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { VERSION } from '../common/version.js';

/** The global slot a host publishes its API namespace in (read by the bundle's `sluice` module). */
export const HOST_API_KEY = 'sluice.host-api';

/** The API entry: the one this process runs (compiled in dist/, or the TypeScript source under tsx). */
export const SLUICE_ENTRY = [fileURLToPath(new URL('../index.js', import.meta.url))].map((js) =>
  existsSync(js) ? js : js.replace(/\.js$/, '.ts'),
)[0]!;

export interface LinkedApi {
  /** Every name the package entry exports (types are gone at run time and need no binding). */
  exportNames: readonly string[];
  /** The Sluice version the bundle is built against. */
  version: string;
}

let namespace: Promise<Record<string, unknown>> | undefined;

function loadEntry(): Promise<Record<string, unknown>> {
  namespace ??= import(pathToFileURL(SLUICE_ENTRY).href) as Promise<Record<string, unknown>>;
  return namespace;
}

/** What a bundle built in this process links against. */
export async function linkedApi(): Promise<LinkedApi> {
  const api = await loadEntry();
  return { exportNames: Object.keys(api).sort(), version: VERSION };
}

/** Publishes this process's API for bundles to link against (idempotent). */
export async function provideHostApi(): Promise<void> {
  const api = await loadEntry();
  const slot = globalThis as Record<symbol, unknown>;
  slot[Symbol.for(HOST_API_KEY)] ??= { api, version: VERSION };
}

/** The source of the `sluice` module inside a bundle linked against `linked`. */
export function hostApiModuleSource(linked: LinkedApi): string {
  const [major, minor] = linked.version.split('.');
  const lines = [
    `const host = globalThis[Symbol.for(${JSON.stringify(HOST_API_KEY)})];`,
    'if (host === undefined) {',
    `  throw new Error("this job bundle links the Sluice API of the process that runs it, and this process provides none: run it with sluice");`,
    '}',
    `if (host.version.split('.').slice(0, 2).join('.') !== ${JSON.stringify(`${major}.${minor}`)}) {`,
    `  throw new Error("this job bundle was built against Sluice ${linked.version} and cannot run on Sluice " + host.version + " (the major and minor versions must match)");`,
    '}',
    'const api = host.api;',
  ];
  for (const name of linked.exportNames) {
    if (name === 'default' || !/^[A-Za-z_$][\w$]*$/.test(name)) continue;
    lines.push(`export const ${name} = api.${name};`);
  }
  return `${lines.join('\n')}\n`;
}
