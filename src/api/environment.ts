/**
 * StreamExecutionEnvironment: where a job is assembled and from where it is executed.
 *
 * `getExecutionEnvironment()` returns the environment of the context the program runs in: submitted by
 * `sluice run` (or planned on a TaskExecutor) it executes through that host; run directly with node/tsx
 * it executes on a private local cluster. `createLocalEnvironment()` and `createRemoteEnvironment()`
 * choose explicitly.
 */

import { ErrorCode, SluiceError } from '../common/errors.js';
import { reportMainErrorsInOneLine } from '../common/main-errors.js';
import { buildStreamGraph, type StreamGraph } from '../jobgraph/stream-graph.js';
import type { Source } from './connector.js';
import { DataStream } from './datastream.js';
import {
  currentExecutionBridge,
  type ExecuteRequest,
  type ExecutionBridge,
  nextExecutionIndex,
  type RemoteEnvironmentOptions,
  registeredExecutionTargets,
} from './execution-bridge.js';
import type { JobClient, JobExecutionResult } from './job-client.js';
import { CollectionSource } from './sources/collection-source.js';
import { type StreamEnvironment, Transformation, type TransformationSpec } from './transformation.js';
import type { WatermarkStrategy } from './watermarks.js';

export type { RemoteEnvironmentOptions };

type Target =
  | { kind: 'context' }
  | { kind: 'local'; natsUrl?: string }
  | { kind: 'remote'; options: RemoteEnvironmentOptions };

export class StreamExecutionEnvironment implements StreamEnvironment {
  readonly #target: Target;
  #transformations: Transformation[] = [];
  #nextId = 0;
  #parallelism: number;
  #maxParallelism = 128;
  #bufferTimeoutMs: number | undefined;
  #checkpointing: { intervalMs: number; mode: 'EXACTLY_ONCE' | 'AT_LEAST_ONCE' } | undefined;

  private constructor(target: Target, parallelism: number) {
    this.#target = target;
    this.#parallelism = parallelism;
  }

  /** The environment of the context this program runs in (see the module comment). */
  static getExecutionEnvironment(): StreamExecutionEnvironment {
    const bridge = currentExecutionBridge();
    // Run directly (no host): a main that throws prints one line, as under `sluice run`.
    if (bridge === undefined) reportMainErrorsInOneLine();
    return new StreamExecutionEnvironment({ kind: 'context' }, bridge?.defaultParallelism ?? 1);
  }

  /** Runs jobs on a private local cluster in this process (its own nats-server unless `natsUrl`). */
  static createLocalEnvironment(parallelism = 1, natsUrl?: string): StreamExecutionEnvironment {
    return new StreamExecutionEnvironment(
      natsUrl === undefined ? { kind: 'local' } : { kind: 'local', natsUrl },
      parallelism,
    );
  }

  /** Submits jobs to a running cluster; the job file is bundled and shipped like a jar. */
  static createRemoteEnvironment(options: RemoteEnvironmentOptions): StreamExecutionEnvironment {
    return new StreamExecutionEnvironment({ kind: 'remote', options }, 1);
  }

  setParallelism(parallelism: number): this {
    if (!Number.isInteger(parallelism) || parallelism < 1) {
      throw new RangeError(`parallelism must be a positive integer, got ${parallelism}`);
    }
    this.#parallelism = parallelism;
    return this;
  }

  getParallelism(): number {
    return this.#parallelism;
  }

  setMaxParallelism(maxParallelism: number): this {
    if (!Number.isInteger(maxParallelism) || maxParallelism < 1 || maxParallelism > 32_768) {
      throw new RangeError(`maxParallelism must be an integer from 1 to 32768, got ${maxParallelism}`);
    }
    this.#maxParallelism = maxParallelism;
    return this;
  }

  /**
   * Takes a checkpoint every `intervalMs` (as Flink's `enableCheckpointing`): state is stored in JetStream,
   * a failed job restarts from the latest checkpoint, exactly-once sinks commit on checkpoints. Overrides
   * the cluster's `execution.checkpointing.interval` and `.mode` for this job.
   */
  enableCheckpointing(intervalMs: number, mode: 'EXACTLY_ONCE' | 'AT_LEAST_ONCE' = 'EXACTLY_ONCE'): this {
    if (!Number.isInteger(intervalMs) || intervalMs < 10) {
      throw new RangeError(`checkpoint interval must be an integer >= 10 ms, got ${intervalMs}`);
    }
    if (mode !== 'EXACTLY_ONCE' && mode !== 'AT_LEAST_ONCE') {
      throw new RangeError(`checkpointing mode must be EXACTLY_ONCE or AT_LEAST_ONCE, got ${String(mode)}`);
    }
    this.#checkpointing = { intervalMs, mode };
    return this;
  }

  /** Milliseconds a network buffer may wait before it is sent (0: every record at once). */
  setBufferTimeout(ms: number): this {
    if (!Number.isInteger(ms) || ms < 0)
      throw new RangeError(`buffer timeout must be an integer >= 0, got ${ms}`);
    this.#bufferTimeoutMs = ms;
    return this;
  }

  fromElements<T>(...elements: T[]): DataStream<T> {
    return this.fromCollection(elements);
  }

  fromCollection<T>(elements: Iterable<T>): DataStream<T> {
    return this.fromSource(new CollectionSource<T>(elements), undefined, 'Source: Collection Source');
  }

  fromSource<T>(source: Source<T>, watermarks?: WatermarkStrategy<T>, name?: string): DataStream<T> {
    const t = this.addTransformation(
      name ?? `Source: ${source.name}`,
      {
        kind: 'source',
        source: source as Source<unknown>,
        watermarks: watermarks as WatermarkStrategy<unknown>,
      },
      [],
    );
    return new DataStream<T>(this, t);
  }

  /** @internal Used by DataStream to record a transformation. */
  addTransformation(name: string, spec: TransformationSpec, inputs: Transformation[]): Transformation {
    const t = new Transformation(this.#nextId++, name, spec, inputs);
    this.#transformations.push(t);
    return t;
  }

  /** The StreamGraph of what has been defined so far (for `sluice info` and tests). */
  getStreamGraph(): StreamGraph {
    return buildStreamGraph(this.#transformations, {
      parallelism: this.#parallelism,
      maxParallelism: this.#maxParallelism,
      bufferTimeoutMs: this.#bufferTimeoutMs,
      checkpointing: this.#checkpointing,
    });
  }

  /** Runs the job and waits for it to end; rejects with JobExecutionError when it fails. */
  async execute(jobName = 'Sluice Streaming Job'): Promise<JobExecutionResult> {
    const client = await this.#submit(jobName, false);
    return client.getJobExecutionResult();
  }

  /** Submits the job and returns at once with a client to follow or cancel it. */
  async executeAsync(jobName = 'Sluice Streaming Job'): Promise<JobClient> {
    return this.#submit(jobName, false);
  }

  /** @internal Runs the job and returns what its collect sinks received. */
  async executeCollecting(jobName = 'Sluice Streaming Job'): Promise<unknown[]> {
    const client = await this.#submit(jobName, true);
    const [records] = await Promise.all([client.collected!(), client.getJobExecutionResult()]);
    return records;
  }

  async #submit(jobName: string, collect: boolean) {
    const graph = this.getStreamGraph();
    // As in Flink, execute() consumes what was defined: the next job starts from an empty program.
    this.#transformations = [];
    const request: ExecuteRequest = { graph, jobName, executionIndex: nextExecutionIndex(), collect };
    const bridge = await this.#bridge();
    return bridge.submit(request);
  }

  async #bridge(): Promise<ExecutionBridge> {
    const target = this.#target;
    const installed = currentExecutionBridge();
    if (installed && (target.kind === 'context' || installed.capturesAllEnvironments)) return installed;
    const targets = registeredExecutionTargets();
    if (!targets) {
      throw new SluiceError(
        ErrorCode.InvalidJob,
        "no execution targets are registered in this process: import the API from 'sluice' (the package entry), which registers the local and remote targets",
      );
    }
    if (target.kind === 'remote') return targets.remote(target.options);
    return targets.local(
      target.kind === 'local' && target.natsUrl !== undefined ? { natsUrl: target.natsUrl } : {},
    );
  }
}
