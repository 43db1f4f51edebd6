import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ErrorCode, SluiceError } from '../../src/common/errors.js';
import { bundleJob } from '../../src/execution/bundler.js';
import { liveServerCount, type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import {
  ArtifactCache,
  type ArtifactRef,
  ArtifactStore,
  artifactBucketName,
} from '../../src/runtime/artifacts/artifact-store.js';

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/jobs');

let server: NatsServerHandle;
let nc: NatsConnection;
let tempDir: string;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url, name: 'artifact-store-test' });
  tempDir = await mkdtemp(join(tmpdir(), 'sluice-artifact-test-'));
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
  await rm(tempDir, { recursive: true, force: true });
  expect(liveServerCount()).toBe(0);
});

let clusters = 0;
/** A store in a bucket of its own. */
function openStore(options?: Parameters<typeof ArtifactStore.open>[2]): Promise<ArtifactStore> {
  return ArtifactStore.open(nc, `test-${++clusters}`, options);
}

function bundleOf(code: Uint8Array): { code: Uint8Array; sha256: string } {
  return { code, sha256: createHash('sha256').update(code).digest('hex') };
}

const encode = (s: string) => new TextEncoder().encode(s);

async function failure(promise: Promise<unknown>): Promise<SluiceError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SluiceError);
  return err as SluiceError;
}

describe('ArtifactStore', () => {
  it('names the bucket after the cluster, with valid characters only', () => {
    expect(artifactBucketName('default')).toBe('sluice_default_artifacts');
    expect(artifactBucketName('a.b c')).toBe('sluice_a_b_c_artifacts');
  });

  it('stores a bundle under its sha256 and gives back identical bytes', async () => {
    const store = await openStore();
    const bundle = bundleOf(encode('export const answer = 42;\n'));
    const { ref, uploaded } = await store.put(bundle);
    expect(uploaded).toBe(true);
    expect(ref).toEqual({ sha256: bundle.sha256, sizeBytes: bundle.code.byteLength });
    const info = await (await new Objm(nc).open(store.bucket)).info(bundle.sha256);
    expect(info?.size).toBe(bundle.code.byteLength);
    expect(Buffer.from(await store.get(ref)).equals(Buffer.from(bundle.code))).toBe(true);
  });

  it('does not upload a bundle that is stored already', async () => {
    const store = await openStore();
    const bundle = bundleOf(randomBytes(300_000)); // three chunks
    const first = await store.put(bundle);
    expect(first.uploaded).toBe(true);
    const os = await new Objm(nc).open(store.bucket);
    const jsm = await jetstreamManager(nc);
    const before = await os.info(bundle.sha256);
    const messagesBefore = (await jsm.streams.info(`OBJ_${store.bucket}`)).state.messages;

    const second = await store.put({ code: Uint8Array.from(bundle.code), sha256: bundle.sha256 });
    expect(second).toEqual({ ref: first.ref, uploaded: false });
    const after = await os.info(bundle.sha256);
    expect(after?.nuid).toBe(before?.nuid);
    expect(after?.revision).toBe(before?.revision);
    expect(after?.mtime).toBe(before?.mtime);
    expect((await jsm.streams.info(`OBJ_${store.bucket}`)).state.messages).toBe(messagesBefore);
  });

  it('uploads and downloads a ~1 MB bundle', async () => {
    const store = await openStore();
    const bundle = bundleOf(randomBytes(1024 * 1024));
    let t = performance.now();
    const { ref, uploaded } = await store.put(bundle);
    const putMs = performance.now() - t;
    t = performance.now();
    const bytes = await store.get(ref);
    const getMs = performance.now() - t;
    t = performance.now();
    await store.put(bundle);
    const againMs = performance.now() - t;
    console.log(
      `1 MiB artifact: upload ${putMs.toFixed(0)} ms, download ${getMs.toFixed(0)} ms, second put ${againMs.toFixed(0)} ms`,
    );
    expect(uploaded).toBe(true);
    expect(Buffer.from(bytes).equals(Buffer.from(bundle.code))).toBe(true);
  });

  it('fails clearly, without retrying, for an unknown artifact', async () => {
    const store = await openStore();
    const sha256 = 'ab'.repeat(32);
    const started = performance.now();
    const err = await failure(store.get({ sha256, sizeBytes: 10 }));
    expect(err.code).toBe(ErrorCode.InvalidJob);
    expect(err.message).toBe(`artifact ${sha256} not found in ${store.bucket}`);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('fails verification of an object whose bytes do not match its sha256 name, and put repairs it', async () => {
    const store = await openStore();
    const bundle = bundleOf(encode('export const answer = 42;\n'));
    const os = await new Objm(nc).open(store.bucket);
    // Different bytes of the same size under the bundle's name.
    await os.putBlob({ name: bundle.sha256 }, encode('export const answer = 43;\n'));
    const ref: ArtifactRef = { sha256: bundle.sha256, sizeBytes: bundle.code.byteLength };
    const err = await failure(store.get(ref));
    expect(err.code).toBe(ErrorCode.InvalidJob);
    expect(err.message).toBe(`artifact ${bundle.sha256} is corrupted`);

    expect((await store.put(bundle)).uploaded).toBe(true);
    expect(Buffer.from(await store.get(ref)).equals(Buffer.from(bundle.code))).toBe(true);
  });

  it('rejects a bundle whose sha256 is not that of its bytes, and refs that are not a sha256', async () => {
    const store = await openStore();
    const err = await failure(store.put({ code: encode('a'), sha256: 'cd'.repeat(32) }));
    expect(err.code).toBe(ErrorCode.InvalidJob);
    expect(err.message).toMatch(/^artifact c{1}d.* does not match its bytes \(sha256 [0-9a-f]{64}\)$/);
    const err2 = await failure(store.get({ sha256: '../../etc/passwd', sizeBytes: 1 }));
    expect(err2.code).toBe(ErrorCode.InvalidJob);
    expect(err2.message).toContain('is not a sha256');
  });

  it('deletes an artifact; deleting a missing one does nothing', async () => {
    const store = await openStore();
    const bundle = bundleOf(encode('export default 1;\n'));
    const { ref } = await store.put(bundle);
    await store.delete(ref);
    expect((await failure(store.get(ref))).message).toContain('not found');
    await store.delete(ref);
    await store.delete({ sha256: 'ef'.repeat(32), sizeBytes: 0 });
    expect((await store.put(bundle)).uploaded).toBe(true);
  });

  it('opens an existing bucket', async () => {
    const a = await ArtifactStore.open(nc, 'shared');
    const bundle = bundleOf(encode('export const shared = true;\n'));
    await a.put(bundle);
    const b = await ArtifactStore.open(nc, 'shared');
    expect((await b.put(bundle)).uploaded).toBe(false);
  });
});

describe('ArtifactCache', () => {
  it('downloads once for concurrent callers and writes the verified bytes to <sha256>.mjs', async () => {
    const store = await openStore();
    const bundle = bundleOf(randomBytes(200_000));
    const { ref } = await store.put(bundle);
    const cacheDir = join(tempDir, 'cache-1');
    const cache = new ArtifactCache(store, cacheDir);
    const get = vi.spyOn(store, 'get');

    const [p1, p2] = await Promise.all([cache.path(ref), cache.path(ref)]);
    expect(p1).toBe(join(cacheDir, `${bundle.sha256}.mjs`));
    expect(p2).toBe(p1);
    expect(get).toHaveBeenCalledTimes(1);
    expect((await readFile(p1)).equals(Buffer.from(bundle.code))).toBe(true);
    expect(await readdir(cacheDir)).toEqual([`${bundle.sha256}.mjs`]); // no temp files left

    expect(await cache.path(ref)).toBe(p1);
    expect(get).toHaveBeenCalledTimes(1);

    await rm(p1); // e.g. by a temp-dir cleaner
    expect(await cache.path(ref)).toBe(p1);
    expect(get).toHaveBeenCalledTimes(2);
    expect((await readFile(p1)).equals(Buffer.from(bundle.code))).toBe(true);
  });

  it('serves a job bundle end to end: bundle, store, cache, import', async () => {
    const store = await openStore();
    const bundle = await bundleJob({
      entry: join(fixtures, 'simple-job.ts'),
      sluiceEntry: join(fixtures, 'fake-sluice-api.ts'),
    });
    const { ref } = await store.put(bundle);
    const file = await new ArtifactCache(store, join(tempDir, 'cache-e2e')).path(ref);
    const mod = (await import(/* @vite-ignore */ pathToFileURL(file).href)) as { answer: number };
    expect(mod.answer).toBe(42);
  });

  it('reuses a verified file from an earlier process and replaces a corrupted one', async () => {
    const store = await openStore();
    const bundle = bundleOf(encode('export const answer = 42;\n'));
    const { ref } = await store.put(bundle);
    const cacheDir = join(tempDir, 'cache-2');
    const file = await new ArtifactCache(store, cacheDir).path(ref);

    const get = vi.spyOn(store, 'get');
    expect(await new ArtifactCache(store, cacheDir).path(ref)).toBe(file);
    expect(get).not.toHaveBeenCalled();

    await writeFile(file, 'export const answer = 43;\n');
    expect(await new ArtifactCache(store, cacheDir).path(ref)).toBe(file);
    expect(get).toHaveBeenCalledTimes(1);
    expect(await readFile(file, 'utf8')).toBe('export const answer = 42;\n');
  });

  it('does not keep a failed download: the next call tries again', async () => {
    const store = await openStore();
    const bundle = bundleOf(encode('export const late = true;\n'));
    const ref: ArtifactRef = { sha256: bundle.sha256, sizeBytes: bundle.code.byteLength };
    const cache = new ArtifactCache(store, join(tempDir, 'cache-3'));
    expect((await failure(cache.path(ref))).message).toContain('not found');
    await store.put(bundle);
    expect(await readFile(await cache.path(ref), 'utf8')).toBe('export const late = true;\n');
  });
});

describe('ArtifactStore without a server', () => {
  it('gives up after its retries with a retryable error', async () => {
    const own = await startNatsServer();
    const conn = await connect({
      servers: own.url,
      name: 'artifact-store-test-down',
      maxReconnectAttempts: -1,
    });
    try {
      const store = await ArtifactStore.open(conn, 'down', { timeoutMs: 300, retries: 1 });
      const { ref } = await store.put(bundleOf(encode('export {};\n')));
      await own.stop();
      const started = performance.now();
      const err = await failure(store.get(ref));
      const ms = performance.now() - started;
      expect(err.code).toBe(ErrorCode.Timeout);
      expect(err.retryable).toBe(true);
      expect(err.message).toMatch(
        new RegExp(`^downloading artifact ${ref.sha256} (failed: .*|timed out .*)$`),
      );
      expect(ms).toBeGreaterThan(550); // two tries of 300 ms
      expect(ms).toBeLessThan(3_000);
    } finally {
      await conn.close().catch(() => {});
      await own.stop();
    }
  });
});
