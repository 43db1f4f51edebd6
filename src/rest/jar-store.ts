/**
 * Job files uploaded over REST (Flink's "jars"): each upload is written to a temp dir and bundled with
 * `bundleJobFile` (so a syntax error or an unresolvable import is refused at once); the bundle is stored in
 * the cluster's artifact store under its SHA-256, and the source is kept on this host under an id (the
 * first 16 hex characters of that SHA-256). The index is in memory: it is lost when the JobManager stops.
 *
 * Running a jar never runs user code in the JobManager's event loop: a child process runs
 * `sluice run -d [-p N] --cluster-id … <source> args…`, which bundles the source again (same bytes, so it
 * finds the bundle already stored), runs the job's main under a ClientBridge and prints `Job has been
 * submitted with JobID <id>` per execute(). Its exit status and stderr decide the answer.
 *
 * (Why the source and not the bundle: bundling a bundle again declares the bundler's banner imports twice,
 * which Node refuses with `Identifier '__sluiceCreateRequire' has already been declared`.)
 */
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { ErrorCode, isSluiceError, SluiceError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { SluiceConfig } from '../config/config.js';
import { jobAutoscalerConfig } from '../config/job-configuration.js';
import { bundleJobFile, uploadBundle } from '../execution/job-program.js';
import { type ProgramChild, runProgramInChild } from '../execution/run-program-in-child.js';
import { badRequest, notFound } from './errors.js';

/** The `sluice` launcher of this installation (it runs the compiled CLI in dist/). */

/** File name endings the bundler takes (esbuild picks its loader by extension). */
const JOB_FILE_EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];
/** How long a job's main may take to submit its jobs (`sluice run -d` returns once they are submitted). */
export const RUN_TIMEOUT_MS = 120_000;
/** Mains running at once; further runs wait their turn. */
const MAX_CONCURRENT_RUNS = 4;
/** Output kept from a run's child, per stream. */
const MAX_OUTPUT_CHARS = 64 * 1024;

export interface JarInfo {
  /** The first 16 hex characters of the bundle's SHA-256. */
  id: string;
  /** The uploaded file's name. */
  name: string;
  sha256: string;
  /** Size of the bundle in bytes. */
  sizeBytes: number;
  /** Upload time, ms since the epoch. */
  uploaded: number;
  /** The uploaded source on this host (what `sluice run` is given). */
  file: string;
}

export interface RunOptions {
  parallelism?: number;
  args: string[];
  /** Start from this savepoint (`sluice run -s`). */
  savepointPath?: string;
  allowNonRestoredState?: boolean;
  /** The jobs' own configuration keys (`flinkConfiguration`): checked here, passed as `-D` to the run. */
  configuration?: Record<string, string>;
}

export class JarStore {
  /** Created with the first upload (a JobManager that gets none leaves nothing behind, even when killed). */
  #dir: Promise<string> | undefined;
  readonly #config: SluiceConfig;
  readonly #nc: NatsConnection;
  readonly #log: Logger;
  readonly #jars = new Map<string, JarInfo>();
  readonly #children = new Set<ProgramChild>();
  readonly #queue: Array<() => void> = [];
  #running = 0;

  private constructor(config: SluiceConfig, nc: NatsConnection, log: Logger) {
    this.#config = config;
    this.#nc = nc;
    this.#log = log;
  }

  static create(config: SluiceConfig, nc: NatsConnection, log: Logger): JarStore {
    return new JarStore(config, nc, log);
  }

  list(): JarInfo[] {
    return [...this.#jars.values()].sort((a, b) => b.uploaded - a.uploaded);
  }

  get(id: string): JarInfo {
    const jar = this.#jars.get(id);
    if (jar === undefined) throw notFound(`jar ${id} not found`);
    return jar;
  }

  /** Bundles and stores an uploaded job file; 400 for a file that cannot be bundled. */
  async upload(filename: string, data: Buffer): Promise<JarInfo> {
    const name = checkFileName(filename);
    if (data.byteLength === 0) throw badRequest(`the uploaded file ${name} is empty`);
    this.#dir ??= mkdtemp(join(tmpdir(), 'sluice-rest-jars-'));
    const root = await this.#dir;
    const work = await mkdtemp(join(root, 'upload-'));
    let bundle: Awaited<ReturnType<typeof bundleJobFile>>;
    try {
      await writeFile(join(work, name), data);
      bundle = await bundleJobFile(join(work, name));
    } catch (err) {
      await rm(work, { recursive: true, force: true });
      // Messages name the temp file; the client knows it by its own name.
      if (isSluiceError(err)) throw badRequest(err.message.replaceAll(`${work}/`, ''));
      throw err;
    }
    const id = bundle.sha256.slice(0, 16);
    // The source is kept for `sluice run`, in a directory per id: bundled there again it gives the same bytes
    // (the bundle's paths are relative to the file's directory), so the run uploads nothing new. The same
    // bundle uploaded again (maybe under another name) replaces the entry; each step here is idempotent.
    const dir = join(root, id);
    const file = join(dir, name);
    try {
      await mkdir(dir, { recursive: true });
      await rename(join(work, name), file);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    const { uploaded: stored } = await uploadBundle(
      this.#nc,
      this.#config.clusterId,
      bundle,
      this.#config.highAvailability.replicas,
    );
    const jar: JarInfo = {
      id,
      name,
      sha256: bundle.sha256,
      sizeBytes: bundle.sizeBytes,
      uploaded: Date.now(),
      file,
    };
    this.#jars.set(id, jar);
    this.#log.info({ jar: id, name, bytes: bundle.sizeBytes, stored }, 'job file uploaded');
    return jar;
  }

  async delete(id: string): Promise<void> {
    const jar = this.get(id);
    this.#jars.delete(id);
    await rm(dirname(jar.file), { recursive: true, force: true });
    this.#log.info({ jar: id, name: jar.name }, 'job file deleted');
  }

  /** Runs the jar's main in a child process; resolves with the ids of the jobs it submitted. */
  async run(id: string, options: RunOptions): Promise<string[]> {
    const jar = this.get(id);
    // Refused before the main runs (INVALID_CONFIG: 400), as the Dispatcher would refuse each job.
    if (options.configuration) jobAutoscalerConfig(this.#config.autoscaler, options.configuration);
    await this.#turn();
    try {
      return await this.#runChild(jar, options);
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }

  /**
   * Resolves when no run is in flight or queued: a stopping JobManager lets them finish (each is bounded
   * by RUN_TIMEOUT_MS) before it closes the connections that wait for their answers.
   */
  async idle(): Promise<void> {
    while (this.#running > 0 || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 50));
  }

  /** Kills runs still going (the JobManager is stopping) and removes the bundles. */
  async close(): Promise<void> {
    for (const child of this.#children) child.kill();
    const dir = await this.#dir?.catch(() => undefined);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }

  #turn(): Promise<void> {
    if (this.#running < MAX_CONCURRENT_RUNS) {
      this.#running++;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.#queue.push(() => {
        this.#running++;
        resolve();
      }),
    );
  }

  async #runChild(jar: JarInfo, options: RunOptions): Promise<string[]> {
    const started = Date.now();
    const child = runProgramInChild({
      entry: jar.file,
      args: options.args,
      detached: true,
      config: this.#config,
      ...(options.configuration
        ? { clientArgs: Object.entries(options.configuration).flatMap(([k, v]) => ['-D', `${k}=${v}`]) }
        : {}),
      ...(options.parallelism !== undefined ? { parallelism: options.parallelism } : {}),
      ...(options.savepointPath !== undefined
        ? {
            savepoint: {
              path: options.savepointPath,
              allowNonRestoredState: options.allowNonRestoredState === true,
            },
          }
        : {}),
    });
    this.#children.add(child);
    this.#log.info({ jar: jar.id, name: jar.name }, 'job file run started');
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_OUTPUT_CHARS) stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_OUTPUT_CHARS) stderr += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill();
    }, RUN_TIMEOUT_MS);
    const code = await child.exited.finally(() => {
      clearTimeout(timer);
      this.#children.delete(child);
    });

    const jobIds = [...stdout.matchAll(/JobID ([0-9a-f]{32})/g)].map((m) => m[1]!);
    const log = { jar: jar.id, name: jar.name, code, jobs: jobIds, ms: Date.now() - started };
    if (timedOut) {
      this.#log.warn(log, 'job file run timed out');
      throw new SluiceError(
        ErrorCode.Timeout,
        `the main of ${jar.name} did not end within ${RUN_TIMEOUT_MS / 1000} s; its run was killed` +
          (jobIds.length > 0 ? ` after submitting ${jobIds.join(', ')}` : ''),
      );
    }
    if (code === 0 && jobIds.length > 0) {
      this.#log.info(log, 'job file run');
      return jobIds;
    }
    const message = runError(stderr, jar) || `sluice run of ${jar.name} exited with status ${code}`;
    this.#log.warn({ ...log, error: message }, 'job file run failed');
    throw badRequest(message);
  }
}

/** The uploaded name, checked: a job file's extension, no directory, nothing a shell or a path would mind. */
function checkFileName(filename: string): string {
  const name = filename.replace(/[^A-Za-z0-9._-]/g, '_');
  if (!JOB_FILE_EXTENSIONS.some((ext) => name.endsWith(ext)) || name.startsWith('.')) {
    throw badRequest(
      `'${filename}' is not a job file: upload a ${JOB_FILE_EXTENSIONS.join(', ')} file (Sluice runs TypeScript and JavaScript, not jars)`,
    );
  }
  return name;
}

/**
 * What `sluice run` said on stderr, without its progress lines (`Uploaded job bundle …`, timestamped job
 * events) and log lines, with the uploaded file named as the client named it.
 */
function runError(stderr: string, jar: JarInfo): string {
  return stderr
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('{'))
    .filter(
      (line) => !/^(Uploaded job bundle |Job bundle [0-9a-f]+ is already|\d{4}-\d\d-\d\dT\S+ {2})/.test(line),
    )
    .join('\n')
    .replaceAll(`${dirname(jar.file)}/`, '')
    .replace(/^sluice: /, '')
    .slice(0, 8_000)
    .trim();
}
