/**
 * A job file on the client: bundled (TypeScript and npm imports into one ES module, linked against the
 * Sluice API of whatever process runs it: host-api.ts), uploaded to the
 * cluster's artifact store under its SHA-256, and kept as a local file the client can run.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/transport-node';
import { type ArtifactRef, ArtifactStore } from '../runtime/artifacts/artifact-store.js';
import { bundleJob, type JobBundle } from './bundler.js';
import { linkedApi, SLUICE_ENTRY } from './host-api.js';

/** Modules that must never be inside a bundle: they start clusters or run esbuild. */
const STUBBED = [fileURLToPath(new URL('../minicluster/default-execution-targets.js', import.meta.url))];

export async function bundleJobFile(entry: string): Promise<JobBundle> {
  return bundleJob({ entry, sluiceEntry: SLUICE_ENTRY, stubModules: STUBBED, hostApi: await linkedApi() });
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

/**
 * Stores a bundle in the cluster's artifact bucket (`replicas`: `high-availability.replicas`, used when
 * this call creates the bucket; a JobManager with HA creates it at start).
 */
export async function uploadBundle(
  nc: NatsConnection,
  clusterId: string,
  bundle: JobBundle,
  replicas: number,
): Promise<{ ref: ArtifactRef; uploaded: boolean }> {
  const store = await ArtifactStore.open(nc, clusterId, { replicas });
  return store.put(bundle);
}
