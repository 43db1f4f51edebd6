/**
 * The client's view of a session cluster: submit, list, status, cancel, overview, and following a
 * job's events until it ends. Everything goes over NATS to the Dispatcher.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { decodeEnvelope } from '../actors/envelope.js';
import { type Gateway, gateway } from '../actors/protocol.js';
import { Rpc } from '../actors/rpc.js';
import { Subjects } from '../actors/subjects.js';
import { isTerminalJobStatus, type JobStatus } from '../api/job-status.js';
import { ErrorCode, isSluiceError, SluiceError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { SluiceConfig } from '../config/config.js';
import type { JobGraph } from '../jobgraph/job-graph.js';
import { connectNats } from '../nats/connection.js';
import type { AutoscalerReply } from '../runtime/autoscaler/protocol.js';
import {
  type CheckpointsReply,
  DispatcherProtocol,
  type JobDetails,
  type JobEvent,
  JobEventSchema,
  type JobSummary,
  type Overview,
  type RescaleReply,
  type ResourceRequirementsReply,
  type SavepointReply,
} from '../runtime/dispatcher/protocol.js';

export interface FollowOptions {
  onEvent?: (event: JobEvent) => void;
  /** Status poll period, a fallback for missed events. */
  pollIntervalMs?: number;
  /** Give up when the JobManager has not answered for this long. */
  lostContactMs?: number;
  signal?: AbortSignal;
}

export class ClusterClient {
  readonly subjects: Subjects;
  readonly #nc: NatsConnection;
  readonly #dispatcher: Gateway<(typeof DispatcherProtocol)['messages']>;
  readonly #ownsConnection: boolean;
  readonly #maxMessageBytes: number;

  private constructor(nc: NatsConnection, config: SluiceConfig, ownsConnection: boolean, log?: Logger) {
    this.#nc = nc;
    this.#ownsConnection = ownsConnection;
    this.#maxMessageBytes = config.rpc.maxMessageBytes;
    this.subjects = new Subjects(config.clusterId);
    // With high availability, idempotent asks (submit, list, status, cancel) ride out a failover: while
    // no leader serves dispatcher.* they get "no responders" and retry with backoff for a while.
    const ha = config.highAvailability.type !== 'none';
    const rpc = new Rpc(nc, {
      maxMessageBytes: config.rpc.maxMessageBytes,
      askTimeoutMs: config.rpc.askTimeoutMs,
      askRetries: ha ? Math.max(config.rpc.askRetries, 20) : config.rpc.askRetries,
      ...(ha ? { askRetryMaxTimeMs: Math.max(10_000, 3 * config.highAvailability.leaseMs) } : {}),
      from: 'client',
      ...(log ? { log } : {}),
    });
    this.#dispatcher = gateway(rpc, this.subjects, DispatcherProtocol);
  }

  get nc(): NatsConnection {
    return this.#nc;
  }

  static async connect(config: SluiceConfig, log?: Logger): Promise<ClusterClient> {
    const nc = await connectNats(config.nats, {
      name: 'sluice-client',
      reconnect: false,
      ...(log ? { log } : {}),
    });
    return new ClusterClient(nc, config, true, log);
  }

  /** A client on a connection someone else owns (e.g. the local cluster's). */
  static on(nc: NatsConnection, config: SluiceConfig, log?: Logger): ClusterClient {
    return new ClusterClient(nc, config, false, log);
  }

  async close(): Promise<void> {
    if (this.#ownsConnection) await this.#nc.close();
  }

  /** Submits a job graph (idempotent: the job id is chosen by the client). */
  async submit(graph: JobGraph): Promise<string> {
    const reply = await this.#ask(() =>
      this.#dispatcher.ask('submit', { jobGraph: graph, client: `pid ${process.pid}` }),
    );
    return reply.jobId;
  }

  async list(all = false): Promise<JobSummary[]> {
    return (await this.#ask(() => this.#dispatcher.ask('list', { all }))).jobs;
  }

  async status(jobId: string): Promise<JobDetails> {
    return this.#ask(() => this.#dispatcher.ask('status', { jobId }));
  }

  async cancel(jobId: string): Promise<JobStatus> {
    return (await this.#ask(() => this.#dispatcher.ask('cancel', { jobId }))).status;
  }

  /**
   * Triggers a savepoint (with `stop`, stop-with-savepoint: the job finishes after it) and waits for it.
   * Not retried: a second savepoint is not what a retry should make.
   */
  async savepoint(
    jobId: string,
    options: { dir?: string; stop?: boolean; timeoutMs?: number } = {},
  ): Promise<SavepointReply> {
    return this.#ask(() =>
      this.#dispatcher.ask(
        'savepoint',
        { jobId, stop: options.stop === true, ...(options.dir === undefined ? {} : { dir: options.dir }) },
        { timeoutMs: options.timeoutMs ?? 600_000 },
      ),
    );
  }

  /**
   * Rescales a running job (every vertex to `parallelism`, and/or single `vertices`) and waits until its
   * new tasks run. Not retried: a rescale is not idempotent while it runs (a second one is refused).
   */
  async rescale(
    jobId: string,
    options: { parallelism?: number; vertices?: Record<string, number>; reason?: string; timeoutMs?: number },
  ): Promise<RescaleReply> {
    return this.#ask(() =>
      this.#dispatcher.ask(
        'rescale',
        {
          jobId,
          ...(options.parallelism === undefined ? {} : { parallelism: options.parallelism }),
          ...(options.vertices === undefined ? {} : { vertices: options.vertices }),
          cause: 'user',
          reason: options.reason ?? 'asked by a user',
        },
        { timeoutMs: options.timeoutMs ?? 600_000 },
      ),
    );
  }

  /** A running job's parallelism per vertex, its bounds and its last rescales. */
  async resourceRequirements(jobId: string): Promise<ResourceRequirementsReply> {
    return this.#ask(() => this.#dispatcher.ask('resource-requirements', { jobId }));
  }

  /** The job's autoscaler: its state and recent decisions (`enabled: false` and why when there is none). */
  async autoscaler(jobId: string): Promise<AutoscalerReply> {
    return this.#ask(() => this.#dispatcher.ask('autoscaler', { jobId }));
  }

  async checkpoints(jobId: string): Promise<CheckpointsReply> {
    return this.#ask(() => this.#dispatcher.ask('checkpoints', { jobId }));
  }

  async overview(timeoutMs?: number): Promise<Overview> {
    // With a deadline of its own (a probe), not retried.
    return this.#ask(() =>
      this.#dispatcher.ask('overview', {}, timeoutMs === undefined ? {} : { timeoutMs, idempotent: false }),
    );
  }

  /**
   * Subscribes to a job's events; call before submitting so no event is missed. `done` resolves with the
   * job's final details (from the JobManager) when it reaches a terminal status.
   */
  follow(jobId: string, options: FollowOptions = {}): { done: Promise<JobDetails>; stop: () => void } {
    const pollMs = options.pollIntervalMs ?? 2_000;
    const lostContactMs = options.lostContactMs ?? 30_000;
    let sub: Subscription | undefined;
    let poller: NodeJS.Timeout | undefined;
    let settled = false;
    let lastContact = Date.now();
    const stop = () => {
      settled = true;
      sub?.unsubscribe();
      clearInterval(poller);
    };
    const done = new Promise<JobDetails>((resolve, reject) => {
      const finish = async () => {
        if (settled) return;
        stop();
        try {
          resolve(await this.status(jobId));
        } catch (err) {
          reject(err);
        }
      };
      const fail = (err: SluiceError) => {
        if (settled) return;
        stop();
        reject(err);
      };
      sub = this.#nc.subscribe(this.subjects.jobEvents(jobId), {
        callback: (_err, msg) => {
          try {
            const event = JobEventSchema.parse(decodeEnvelope(msg.data, this.#maxMessageBytes).body);
            lastContact = Date.now();
            options.onEvent?.(event);
            if (isTerminalJobStatus(event.status)) void finish();
          } catch {
            // A malformed event is not ours to act on; the status poll covers us.
          }
        },
      });
      poller = setInterval(() => {
        this.status(jobId).then(
          (details) => {
            lastContact = Date.now();
            if (isTerminalJobStatus(details.status)) void finish();
          },
          (err: unknown) => {
            if (isSluiceError(err) && !err.retryable) return fail(err);
            if (Date.now() - lastContact > lostContactMs) {
              fail(
                new SluiceError(
                  ErrorCode.Timeout,
                  `lost contact with the JobManager: no answer about job ${jobId} for ${lostContactMs} ms`,
                ),
              );
            }
          },
        );
      }, pollMs);
      poller.unref();
      options.signal?.addEventListener('abort', () =>
        fail(new SluiceError(ErrorCode.IllegalState, 'interrupted')),
      );
    });
    return { done, stop };
  }

  /** Runs a Dispatcher ask; "no responders" says which cluster has no JobManager. */
  async #ask<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (isSluiceError(err, ErrorCode.NoResponders)) {
        throw new SluiceError(
          ErrorCode.NoResponders,
          `no JobManager answers for cluster '${this.subjects.prefix.slice('sluice.'.length)}' (start one with 'sluice cluster start' or 'sluice jobmanager')`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}
