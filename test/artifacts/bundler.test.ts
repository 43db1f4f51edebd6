import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, SluiceError } from '../../src/common/errors.js';
import { bundleJob, type JobBundle } from '../../src/execution/bundler.js';
import { HOST_API_KEY } from '../../src/execution/host-api.js';
import { bundleJobFile } from '../../src/execution/job-program.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = resolve(here, '../fixtures/jobs');
const repoRoot = resolve(here, '../..');
const fixture = (name: string) => join(fixtures, name);
const sluiceEntry = fixture('fake-sluice-api.ts');

let tempDir: string;

beforeAll(async () => {
  tempDir = await mkdtemp(join(tmpdir(), 'sluice-bundler-test-'));
});

afterAll(async () => {
  await rm(tempDir, { recursive: true, force: true });
});

let loaded = 0;
/** Writes the bundle to a fresh .mjs file and imports it, as a TaskExecutor would. */
async function load(bundle: JobBundle): Promise<Record<string, unknown>> {
  const file = join(tempDir, `bundle-${loaded++}-${bundle.sha256.slice(0, 8)}.mjs`);
  await writeFile(file, bundle.code);
  return (await import(/* @vite-ignore */ pathToFileURL(file).href)) as Record<string, unknown>;
}

function text(bundle: JobBundle): string {
  return new TextDecoder().decode(bundle.code);
}

async function bundleError(promise: Promise<unknown>): Promise<SluiceError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SluiceError);
  expect((err as SluiceError).code).toBe(ErrorCode.InvalidJob);
  return err as SluiceError;
}

describe('bundleJob', () => {
  it('bundles a TypeScript job with a local helper and a Node builtin into a module that runs', async () => {
    const bundle = await bundleJob({ entry: fixture('simple-job.ts'), sluiceEntry });
    expect(bundle.entry).toBe(fixture('simple-job.ts'));
    expect(bundle.sizeBytes).toBe(bundle.code.byteLength);
    expect(bundle.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(text(bundle)).toContain('from "node:path"'); // builtins stay external
    const mod = await load(bundle);
    expect(mod.answer).toBe(42);
    expect(mod.joined).toBe(join('a', 'b'));
  });

  it('bundles CommonJS dependencies that require Node builtins, next to a job declaring its own require', async () => {
    const started = performance.now();
    const bundle = await bundleJob({ entry: fixture('cjs-job.ts'), sluiceEntry });
    const ms = performance.now() - started;
    console.log(`bundled cjs-job.ts (yaml + p-retry): ${bundle.sizeBytes} bytes in ${ms.toFixed(0)} ms`);
    expect(text(bundle)).toContain('__require("process")'); // yaml's CommonJS require of a builtin
    const mod = await load(bundle);
    expect(mod.answer).toBe(42);
    expect(mod.hasRequire).toBe(true);
    expect(mod.ownDirname).toBe(tempDir);
    await expect((mod.retried as () => Promise<string>)()).resolves.toBe('ok');
  });

  it('is deterministic and writes no absolute paths', async () => {
    const a = await bundleJob({ entry: fixture('cjs-job.ts'), sluiceEntry });
    const b = await bundleJob({ entry: fixture('cjs-job.ts'), sluiceEntry });
    expect(b.sha256).toBe(a.sha256);
    expect(Buffer.from(b.code).equals(Buffer.from(a.code))).toBe(true);
    const code = text(a);
    const map = /sourceMappingURL=data:application\/json;base64,(\S+)/.exec(code);
    expect(map).not.toBeNull();
    const sourceMap = JSON.parse(Buffer.from(map![1]!, 'base64').toString('utf8')) as {
      sources: string[];
      sourceRoot: string;
    };
    expect(sourceMap.sourceRoot).toBe('sluice-job:///');
    expect(sourceMap.sources).toContain('test/fixtures/jobs/cjs-job.ts');
    expect(code).not.toContain(repoRoot);
    expect(JSON.stringify(sourceMap)).not.toContain(repoRoot);
  });

  it("resolves 'sluice' to the given Sluice API entry", async () => {
    const bundle = await bundleJob({ entry: fixture('sluice-job.ts'), sluiceEntry });
    expect(text(bundle)).toContain('fake-sluice-api-marker-5d1c0e');
    expect((await load(bundle)).answer).toBe('fake-sluice-api-marker-5d1c0e');
  });

  describe("linked against the host's API (hostApi)", () => {
    const slot = Symbol.for(HOST_API_KEY);
    const global = globalThis as Record<symbol, unknown>;
    const linked = { exportNames: ['marker', 'default'], version: '0.1.0' };
    afterAll(() => {
      delete global[slot];
    });

    it("takes 'sluice' from the process that imports the bundle, and carries none of the API", async () => {
      const bundle = await bundleJob({ entry: fixture('sluice-job.ts'), sluiceEntry, hostApi: linked });
      expect(text(bundle)).not.toContain('fake-sluice-api-marker-5d1c0e');
      global[slot] = { api: { marker: 'host-marker' }, version: '0.1.9' };
      expect((await load(bundle)).answer).toBe('host-marker');
    });

    it('refuses a host of another major.minor version, naming both', async () => {
      const bundle = await bundleJob({ entry: fixture('sluice-job.ts'), sluiceEntry, hostApi: linked });
      global[slot] = { api: { marker: 'host-marker' }, version: '0.2.0' };
      await expect(load(bundle)).rejects.toThrow(
        'this job bundle was built against Sluice 0.1.0 and cannot run on Sluice 0.2.0',
      );
    });

    it('says so when the importing process provides no API', async () => {
      const bundle = await bundleJob({ entry: fixture('sluice-job.ts'), sluiceEntry, hostApi: linked });
      delete global[slot];
      await expect(load(bundle)).rejects.toThrow('this process provides none: run it with sluice');
    });

    it("keeps a real job's bundle small: the API is not in it", async () => {
      const bundle = await bundleJobFile(resolve(repoRoot, 'bench/jobs/four-vertices.ts'));
      expect(bundle.sizeBytes).toBeLessThan(64 * 1024);
      expect(text(bundle)).toContain('Symbol.for("sluice.host-api")');
    });
  });

  it('replaces stub modules, given by their .js or .ts path, with a runLocally that throws', async () => {
    const plain = await bundleJob({ entry: fixture('stubbed-job.ts'), sluiceEntry });
    expect(((await load(plain)).run as () => string)()).toBe('local-runner-was-bundled-9b27');

    for (const stub of [fixture('local-runner.js'), fixture('local-runner.ts')]) {
      const bundle = await bundleJob({ entry: fixture('stubbed-job.ts'), sluiceEntry, stubModules: [stub] });
      expect(text(bundle)).not.toContain('local-runner-was-bundled-9b27');
      const run = (await load(bundle)).run as () => string;
      expect(run).toThrow('the local runner is not available inside a job bundle');
    }
  });

  it('fails clearly when the job file does not exist', async () => {
    const missing = fixture('no-such-job.ts');
    const err = await bundleError(bundleJob({ entry: missing, sluiceEntry }));
    expect(err.message).toBe(`job file not found: ${missing}`);
  });

  it('fails clearly on a syntax error, with file:line:column', async () => {
    const broken = join(tempDir, 'broken-job.ts');
    await writeFile(broken, 'export const ok = 1;\nexport const answer = ;\n');
    const err = await bundleError(bundleJob({ entry: broken, sluiceEntry }));
    expect(err.message).toBe(`${broken}:2:23: Unexpected ";"`);
  });

  it('fails clearly on an import that cannot be resolved', async () => {
    const err = await bundleError(bundleJob({ entry: fixture('missing-import.ts'), sluiceEntry }));
    expect(err.message).toBe(
      `cannot resolve './does-not-exist.js' imported by ${fixture('missing-import.ts')}:3`,
    );

    const npm = join(tempDir, 'missing-package.ts');
    await writeFile(npm, "import thing from 'no-such-package-4e2a';\nexport default thing;\n");
    const err2 = await bundleError(bundleJob({ entry: npm, sluiceEntry }));
    expect(err2.message).toBe(`cannot resolve 'no-such-package-4e2a' imported by ${npm}:1`);
  });

  it('fails clearly when the bundle is larger than maxBytes', async () => {
    const err = await bundleError(bundleJob({ entry: fixture('simple-job.ts'), sluiceEntry, maxBytes: 100 }));
    expect(err.message).toMatch(/^job bundle of .*simple-job\.ts is \d+ bytes, over the limit of 100 bytes$/);
  });
});
