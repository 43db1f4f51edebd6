/**
 * A job file on the client: bundled (TypeScript and npm imports into one ES module), uploaded to the
 * cluster's artifact store under its SHA-256, and kept as a local file the client can run.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/transport-node';
import { type ArtifactRef, ArtifactStore } from '../runtime/artifacts/artifact-store.js';
import { bundleJob, type JobBundle } from './bundler.js';

/**
 * The API entry bundles use for `import … from 'sluice'`: the one this process runs (compiled in
 * dist/, or the TypeScript source when the process runs from src/ under tsx).
 */
const SLUICE_ENTRY = [fileURLToPath(new URL('../index.js', import.meta.url))].map((js) =>
  existsSync(js) ? js : js.replace(/\.js$/, '.ts'),
)[0]!;
/** Modules that must never be inside a bundle: they start clusters or run esbuild. */
const STUBBED = [fileURLToPath(new URL('../minicluster/default-execution-targets.js', import.meta.url))];

export async function bundleJobFile(entry: string): Promise<JobBundle> {
  return bundleJob({ entry, sluiceEntry: SLUICE_ENTRY, stubModules: STUBBED });
}

/** Writes the bundle where this process can import it (content-addressed, written atomically). */
export async function localBundleFile(bundle: JobBundle): Promise<string> {
  const dir = join(tmpdir(), 'sluice-artifacts');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${bundle.sha256}.mjs`);
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, bundle.code);
  await rename(temp, file);
  return file;
}

export async function uploadBundle(
  nc: NatsConnection,
  clusterId: string,
  bundle: JobBundle,
): Promise<{ ref: ArtifactRef; uploaded: boolean }> {
  const store = await ArtifactStore.open(nc, clusterId);
  return store.put(bundle);
}
