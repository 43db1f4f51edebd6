/**
 * Bundles a user's job file (TypeScript or JavaScript, with the npm packages it imports) into one ES
 * module, the way a Flink job travels as a jar: the client bundles, the bundle is stored in the JetStream
 * object store under its SHA-256 (`src/runtime/artifacts/`), and TaskExecutors download and `import()` it.
 *
 * - esbuild, `platform: 'node'`, `format: 'esm'`, `target: 'node20'`; Node builtins stay external, every
 *   other import is bundled. There is no type checking (esbuild strips types): only syntax errors and
 *   unresolvable imports fail a bundle.
 * - `import ... from 'sluice'` links the API of the process that runs the bundle when `hostApi` is given
 *   (host-api.ts: a small module that takes each exported name from the host and checks the version),
 *   else it resolves to `sluiceEntry`, the Sluice API module of the submitting side, which is bundled.
 * - A banner defines `require` (from `createRequire(import.meta.url)`), `__filename` and `__dirname`, so
 *   bundled CommonJS packages that `require('fs')` or read `__dirname` work inside the ES module. They are
 *   declared with `var`: esbuild turns a bundle's top-level `const`/`let`/`class` into `var`, so a job that
 *   declares its own `__dirname` (the usual ESM idiom) redeclares the variable instead of colliding with it,
 *   and a job's own `require` is renamed by esbuild (the name is reserved once a bundled CommonJS module
 *   needs `require`).
 * - `stubModules` are replaced by a stub whose `runLocally` / `runRemotely` throw: runners never travel.
 * - Deterministic: the same files give the same bytes and the same SHA-256, whatever the current
 *   directory. esbuild writes no timestamps; the paths it writes (`// path` comments before each module,
 *   `sources` of the inline source map) are relative to the nearest directory above the entry holding a
 *   `package.json`, so a checkout at another place gives the same bytes too. Only files outside that
 *   directory (a `sluiceEntry` installed elsewhere) show up as `../..` paths that depend on the machine.
 * - The inline source map has no `sourcesContent` (smaller bundles) and the source root `sluice-job:///`:
 *   Node applies it to stack traces when run with `--enable-source-maps` (or
 *   `process.setSourceMapsEnabled(true)`), which then name `sluice-job:///src/my-job.ts:12:5` (relative to
 *   the job's project directory) rather than a made-up path next to the downloaded bundle.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { build, type Message, type Plugin } from 'esbuild';
import { ErrorCode, SluiceError } from '../common/errors.js';
import { hostApiModuleSource, type LinkedApi } from './host-api.js';

export interface BundleOptions {
  /** The job file: `.ts`, `.mts`, `.js`, `.mjs`, … (relative paths are taken from the current directory). */
  entry: string;
  /** Absolute path of the Sluice API entry the bundle must use for `import ... from 'sluice'`. */
  sluiceEntry: string;
  /**
   * Module paths replaced by a stub whose `runLocally` / `runRemotely` throw if called (runners must never be
   * bundled). A path matches the resolved file exactly, or with `.ts` ↔ `.js` (`.mts` ↔ `.mjs`, `.cts` ↔
   * `.cjs`) swapped. The stub exports `runLocally` and `runRemotely` only.
   */
  stubModules?: string[];
  /**
   * Link `import … from 'sluice'` against the API of the process that runs the bundle instead of
   * bundling `sluiceEntry` (see host-api.ts). What job bundles sent to a cluster use.
   */
  hostApi?: LinkedApi;
  /** Largest bundle accepted, in bytes. Default 64 MiB. */
  maxBytes?: number;
}

export interface JobBundle {
  /** The ES module, UTF-8. */
  code: Uint8Array;
  /** SHA-256 of `code`, lowercase hex. */
  sha256: string;
  sizeBytes: number;
  /** Absolute path of the bundled job file. */
  entry: string;
}

export const DEFAULT_MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

// `var` and no imports: a bundle can be bundled again (the banner then appears twice, which `var`
// allows). process.getBuiltinModule exists from Node 20.16.
const BANNER = [
  "var require = process.getBuiltinModule('node:module').createRequire(import.meta.url);",
  "var __filename = process.getBuiltinModule('node:url').fileURLToPath(import.meta.url);",
  "var __dirname = process.getBuiltinModule('node:path').dirname(__filename);",
].join('\n');

/** Stack traces (with source maps on) show `sluice-job:///src/my-job.ts:12:5`: project-relative, stable. */
const SOURCE_ROOT = 'sluice-job:///';

const STUB_SOURCE =
  "export function runLocally() { throw new Error('the local runner is not available inside a job bundle'); }\n" +
  "export function runRemotely() { throw new Error('the remote runner is not available inside a job bundle'); }\n" +
  '// A bundle runs under its host: the host registered the execution targets already.\n' +
  'export function registerDefaultExecutionTargets() {}\n';

/** Bundles `options.entry` into one ES module; see the module comment. Errors are `INVALID_JOB`. */
export async function bundleJob(options: BundleOptions): Promise<JobBundle> {
  const entry = resolve(options.entry);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BUNDLE_BYTES;
  const entryStat = statSync(entry, { throwIfNoEntry: false });
  if (entryStat === undefined) throw new SluiceError(ErrorCode.InvalidJob, `job file not found: ${entry}`);
  if (!entryStat.isFile()) throw new SluiceError(ErrorCode.InvalidJob, `job file is not a file: ${entry}`);
  const sluiceEntry = resolve(options.sluiceEntry);
  if (!statSync(sluiceEntry, { throwIfNoEntry: false })?.isFile()) {
    throw new SluiceError(ErrorCode.Internal, `Sluice API entry not found: ${sluiceEntry}`);
  }

  const workDir = projectRoot(entry);
  const plugins: Plugin[] = [
    options.hostApi === undefined ? sluicePlugin(sluiceEntry) : hostApiPlugin(options.hostApi),
  ];
  if (options.stubModules !== undefined && options.stubModules.length > 0) {
    plugins.push(stubPlugin(options.stubModules));
  }

  let text: string;
  try {
    const result = await build({
      entryPoints: [entry],
      absWorkingDir: workDir,
      // Only names the output for the source map's relative `sources`; nothing is written.
      outfile: join(workDir, 'sluice-job-bundle.mjs'),
      bundle: true,
      write: false,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'inline',
      sourcesContent: false,
      sourceRoot: SOURCE_ROOT,
      keepNames: true,
      logLevel: 'silent',
      banner: { js: BANNER },
      plugins,
    });
    const out = result.outputFiles.find((f) => f.path.endsWith('.mjs')) ?? result.outputFiles[0];
    if (out === undefined)
      throw new SluiceError(ErrorCode.Internal, `esbuild produced no output for ${entry}`);
    text = out.text;
  } catch (err) {
    throw toBundleError(err, workDir, entry);
  }

  const code = new TextEncoder().encode(text);
  if (code.byteLength > maxBytes) {
    throw new SluiceError(
      ErrorCode.InvalidJob,
      `job bundle of ${entry} is ${code.byteLength} bytes, over the limit of ${maxBytes} bytes`,
    );
  }
  const sha256 = createHash('sha256').update(code).digest('hex');
  return { code, sha256, sizeBytes: code.byteLength, entry };
}

/** The nearest directory at or above the entry's that holds a package.json; else the entry's directory. */
function projectRoot(entry: string): string {
  const start = dirname(entry);
  for (let dir = start; ; ) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return start;
    dir = parent;
  }
}

/** `import ... from 'sluice'` → the given Sluice API entry. */
function sluicePlugin(sluiceEntry: string): Plugin {
  return {
    name: 'sluice-api',
    setup(b) {
      b.onResolve({ filter: /^sluice$/ }, () => ({ path: sluiceEntry }));
    },
  };
}

const HOST_API_NAMESPACE = 'sluice-host-api';

/** `import ... from 'sluice'` → a module that takes the API from the host (host-api.ts). */
function hostApiPlugin(linked: LinkedApi): Plugin {
  const contents = hostApiModuleSource(linked);
  return {
    name: 'sluice-host-api',
    setup(b) {
      b.onResolve({ filter: /^sluice$/ }, () => ({ path: 'sluice', namespace: HOST_API_NAMESPACE }));
      b.onLoad({ filter: /.*/, namespace: HOST_API_NAMESPACE }, () => ({ contents, loader: 'js' }));
    },
  };
}

const SWAPPED_EXTENSIONS: Record<string, string> = {
  '.ts': '.js',
  '.js': '.ts',
  '.mts': '.mjs',
  '.mjs': '.mts',
  '.cts': '.cjs',
  '.cjs': '.cts',
};

/** Replaces the modules at `paths` (resolved files, any of the swapped extensions) by the stub. */
function stubPlugin(paths: string[]): Plugin {
  const variants = new Set<string>();
  for (const p of paths) {
    const abs = resolve(p);
    variants.add(abs);
    const ext = /\.[cm]?[jt]s$/.exec(abs)?.[0];
    const swapped = ext === undefined ? undefined : SWAPPED_EXTENSIONS[ext];
    if (ext !== undefined && swapped !== undefined) variants.add(abs.slice(0, -ext.length) + swapped);
  }
  // esbuild evaluates the filter (Go regexp syntax) itself, so other files never cross into JavaScript.
  const filter = new RegExp(`^(?:${[...variants].map(escapeRegExp).join('|')})$`);
  return {
    name: 'sluice-stub-modules',
    setup(b) {
      b.onLoad({ filter }, () => ({ contents: STUB_SOURCE, loader: 'js' }));
    },
  };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

interface EsbuildFailure {
  errors: Message[];
}

function isEsbuildFailure(err: unknown): err is EsbuildFailure {
  return typeof err === 'object' && err !== null && Array.isArray((err as { errors?: unknown }).errors);
}

/** One clear `INVALID_JOB` message from esbuild's first error. */
function toBundleError(err: unknown, workDir: string, entry: string): SluiceError {
  if (err instanceof SluiceError) return err;
  if (!isEsbuildFailure(err) || err.errors.length === 0) {
    const message = err instanceof Error ? err.message : String(err);
    return new SluiceError(ErrorCode.InvalidJob, `cannot bundle ${entry}: ${message}`, { cause: err });
  }
  const first = err.errors[0]!;
  const loc = first.location;
  const details = { errors: err.errors.map((m) => formatMessage(m, workDir)) };
  const unresolved = /^Could not resolve "(.*)"$/.exec(first.text);
  if (unresolved !== null && loc !== null) {
    return new SluiceError(
      ErrorCode.InvalidJob,
      `cannot resolve '${unresolved[1]}' imported by ${resolve(workDir, loc.file)}:${loc.line}`,
      { cause: err, details },
    );
  }
  return new SluiceError(ErrorCode.InvalidJob, formatMessage(first, workDir), { cause: err, details });
}

/** `file:line:column: text` with an absolute file and a 1-based column (esbuild's is 0-based). */
function formatMessage(m: Message, workDir: string): string {
  const loc = m.location;
  if (loc === null) return m.text;
  return `${resolve(workDir, loc.file)}:${loc.line}:${loc.column + 1}: ${m.text}`;
}
