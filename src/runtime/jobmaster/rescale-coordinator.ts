/**
 * One job's rescales (the JobMaster's {@link Rescaler}; contract in rescale.ts), one at a time:
 *
 * 1. checks the request (INVALID_RESCALE, ILLEGAL_STATE, RESCALE_IN_PROGRESS: nothing changes);
 * 2. reserves the slots the new parallelism needs (NO_RESOURCE_AVAILABLE: nothing changes);
 * 3. takes a checkpoint and waits for it to commit (CHECKPOINT_FAILED: nothing changes, the reserved slots
 *    are given back);
 * 4. pauses checkpointing and waits for commits under way, so that no checkpoint commits after the one the
 *    new tasks restore from (their sinks would publish what the new tasks replay);
 * 5. tells the old tasks to stop and, at once, builds the new attempt at the new parallelism and deploys
 *    it to its slots (the job's own first): the old tasks' channels and reports are of the old attempt, so
 *    both may overlap for the moment the old ones take to stop;
 * 6. resolves once every new task runs, with the downtime (from 5 until then).
 * A failure or cancel of the job meanwhile fails the rescale with the job's status; new tasks that cannot
 * get their slots restart the job per its restart strategy, at its old parallelism (reactive mode: at what
 * its slots allow). The last {@link RESCALE_HISTORY} rescales are kept for REST and the dashboard.
 *
 * Does no NATS I/O itself: the JobMaster passes a {@link RescaleHost}.
 */
import { JobStatus } from '../../api/job-status.js';
import { ErrorCode, isSluiceError, SluiceError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { JobGraph } from '../../jobgraph/job-graph.js';
import type { CheckpointCoordinator } from '../checkpoint/checkpoint-coordinator.js';
import type { RestoreSpec } from '../checkpoint/protocol.js';
import type { ResourceManager, SlotAssignment } from '../resourcemanager/resource-manager.js';
import { sameParallelism } from './reactive-mode.js';
import {
  describeRescale,
  maxParallelismOf,
  parallelismOf,
  type RescaleRecord,
  type RescaleRequest,
  type RescaleResult,
  type Rescaler,
  resolveRescaleTarget,
  type VertexParallelism,
} from './rescale.js';

/** Rescales kept for REST and the dashboard. */
export const RESCALE_HISTORY = 10;

/** What the rescale coordinator needs of its JobMaster. */
export interface RescaleHost {
  jobId: string;
  log: Logger;
  rm: ResourceManager;
  /** Undefined when the JobManager has no state store (a rescale is then refused). */
  coordinator: CheckpointCoordinator | undefined;
  slotRequestTimeoutMs: number;
  /** The job graph of the current attempt. */
  jobGraph(): JobGraph;
  status(): JobStatus;
  /** Every task of the current attempt runs. */
  allRunning(): boolean;
  /** The slots the current attempt was deployed to. */
  slots(): readonly SlotAssignment[];
  /** Step 5: stop the old tasks, build the new attempt at `target` restoring from `restore`. */
  startNewAttempt(target: VertexParallelism, restore: RestoreSpec, message: string): boolean;
  /** Deploys the new attempt to `slots`. */
  deploy(slots: SlotAssignment[]): void;
  /** The new attempt got no slots: restart the job (at `fallback` unless reactive). */
  newAttemptFailed(message: string, fallback: VertexParallelism): void;
  publish(message: string): void;
  runInMailbox<T>(fn: () => T): Promise<T>;
  /** A rescale ended (completed or failed): reactive mode may look again. */
  onRescaleEnded(): void;
}

interface InFlight {
  request: RescaleRequest;
  previous: VertexParallelism;
  target: VertexParallelism;
  record: RescaleRecord;
  /** checkpointing: the old tasks run; deploying: they were told to stop, the new ones deploy. */
  phase: 'checkpointing' | 'deploying';
  /** When the old tasks were told to stop (performance.now). */
  stoppedAt: number;
  resolve: (result: RescaleResult) => void;
  reject: (err: Error) => void;
}

export class RescaleCoordinator implements Rescaler {
  readonly #host: RescaleHost;
  #inFlight: InFlight | undefined;
  readonly #history: RescaleRecord[] = [];

  constructor(host: RescaleHost) {
    this.#host = host;
  }

  currentParallelism(): VertexParallelism {
    return parallelismOf(this.#host.jobGraph());
  }

  maxParallelism(): VertexParallelism {
    return maxParallelismOf(this.#host.jobGraph());
  }

  /** Whether a rescale is under way. */
  get inProgress(): boolean {
    return this.#inFlight !== undefined;
  }

  /** The rescale under way (if any) and the last ones, oldest first. */
  history(): RescaleRecord[] {
    return this.#history.map((r) => ({ ...r }));
  }

  /** Call in the JobMaster's mailbox (the checks and the start are one step). */
  rescale(request: RescaleRequest): Promise<RescaleResult> {
    const host = this.#host;
    const previous = this.currentParallelism();
    const running = this.#inFlight;
    if (running) {
      throw new SluiceError(
        ErrorCode.RescaleInProgress,
        `job ${host.jobId} is already being rescaled (${running.request.cause}: ${describeRescale(running.previous, running.target)}); ask again once it is done`,
      );
    }
    const status = host.status();
    if (status !== JobStatus.RUNNING) {
      throw new SluiceError(
        ErrorCode.IllegalState,
        `job ${host.jobId} is ${status}: only a RUNNING job can be rescaled`,
      );
    }
    const target = resolveRescaleTarget(host.jobGraph(), request.target);
    if (sameParallelism(target, previous)) {
      return Promise.resolve({ jobId: host.jobId, previous, target });
    }
    if (!host.coordinator) {
      throw new SluiceError(
        ErrorCode.IllegalState,
        `job ${host.jobId} cannot be rescaled: this JobManager has no state store, and a rescale moves the job's state through a checkpoint`,
      );
    }
    if (!host.allRunning()) {
      throw new SluiceError(
        ErrorCode.IllegalState,
        `job ${host.jobId} cannot be rescaled yet: not every task runs (a rescale starts from a checkpoint)`,
      );
    }
    let resolve: (r: RescaleResult) => void = () => undefined;
    let reject: (e: Error) => void = () => undefined;
    const done = new Promise<RescaleResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const record: RescaleRecord = {
      cause: request.cause,
      reason: request.reason,
      previous,
      target,
      status: 'IN_PROGRESS',
      startTime: Date.now(),
      endTime: null,
      checkpointId: null,
      downtimeMs: null,
    };
    this.#history.push(record);
    if (this.#history.length > RESCALE_HISTORY) this.#history.shift();
    const inFlight: InFlight = {
      request,
      previous,
      target,
      record,
      phase: 'checkpointing',
      stoppedAt: 0,
      resolve,
      reject,
    };
    this.#inFlight = inFlight;
    host.log.info(
      { cause: request.cause, reason: request.reason, previous, target },
      `rescaling: ${describeRescale(previous, target)}`,
    );
    void this.#run(inFlight, host.coordinator);
    return done;
  }

  /** Every task of the current attempt runs: a rescale deploying it is done. In the mailbox. */
  onAllRunning(): void {
    const inFlight = this.#inFlight;
    if (inFlight?.phase !== 'deploying') return;
    this.#inFlight = undefined;
    const downtimeMs = Math.round(performance.now() - inFlight.stoppedAt);
    inFlight.record.status = 'COMPLETED';
    inFlight.record.endTime = Date.now();
    inFlight.record.downtimeMs = downtimeMs;
    this.#host.log.info(
      { cause: inFlight.request.cause, downtimeMs, checkpointId: inFlight.record.checkpointId },
      `rescaled: ${describeRescale(inFlight.previous, inFlight.target)} (${downtimeMs} ms from stopping the old tasks until every new one ran)`,
    );
    inFlight.resolve({
      jobId: this.#host.jobId,
      previous: inFlight.previous,
      target: inFlight.target,
      downtimeMs,
    });
    this.#host.onRescaleEnded();
  }

  /** The job is stopping its tasks (failure, cancel) or ended: a rescale under way fails. In the mailbox. */
  onJobStopping(status: JobStatus, why: string | undefined): void {
    if (!this.#inFlight) return;
    this.#fail(
      this.#inFlight,
      new SluiceError(
        ErrorCode.IllegalState,
        `job ${this.#host.jobId} is ${status}${why ? ` (${why})` : ''}`,
      ),
    );
  }

  async #run(inFlight: InFlight, coordinator: CheckpointCoordinator): Promise<void> {
    const host = this.#host;
    const needed = Math.max(...Object.values(inFlight.target));
    try {
      // Before anything stops: a rescale the cluster cannot give slots for leaves the job as it was.
      await host.rm.reserveSlots(host.jobId, needed);
      try {
        await coordinator.triggerCheckpoint();
      } catch (err) {
        await host.runInMailbox(() => {
          if (host.status() === JobStatus.RUNNING) void host.rm.releaseSlotsExcept(host.jobId, host.slots());
        });
        throw err;
      }
      await host.runInMailbox(() => {
        if (this.#inFlight === inFlight && host.status() === JobStatus.RUNNING)
          coordinator.pause('rescaling');
      });
      await coordinator.settle();
      const started = await host.runInMailbox(() => this.#startNewAttempt(inFlight, coordinator));
      if (!started) return;
      let slots: SlotAssignment[];
      try {
        slots = await host.rm.reassignSlots(host.jobId, needed, host.slotRequestTimeoutMs, (_, message) =>
          host.publish(message),
        );
      } catch (err) {
        await host.runInMailbox(() => {
          if (this.#inFlight !== inFlight) return;
          const message = `rescale failed: ${err instanceof Error ? err.message : String(err)}`;
          this.#fail(inFlight, err);
          host.newAttemptFailed(message, inFlight.previous);
        });
        return;
      }
      await host.runInMailbox(() => {
        if (this.#inFlight === inFlight && host.status() === JobStatus.RESTARTING) host.deploy(slots);
      });
    } catch (err) {
      await host.runInMailbox(() => this.#fail(inFlight, err)).catch(() => undefined);
    }
  }

  /** Step 5, in the mailbox; false when the rescale is no longer going on. */
  #startNewAttempt(inFlight: InFlight, coordinator: CheckpointCoordinator): boolean {
    if (this.#inFlight !== inFlight) return false;
    const status = this.#host.status();
    if (status !== JobStatus.RUNNING) {
      this.#fail(
        inFlight,
        new SluiceError(ErrorCode.IllegalState, `job ${this.#host.jobId} became ${status}`),
      );
      return false;
    }
    const restore = coordinator.latestCompleted();
    if (!restore) {
      this.#fail(
        inFlight,
        new SluiceError(ErrorCode.CheckpointFailed, 'no completed checkpoint to restore from'),
      );
      return false;
    }
    inFlight.phase = 'deploying';
    inFlight.stoppedAt = performance.now();
    inFlight.record.checkpointId = restore.checkpointId;
    const { request } = inFlight;
    const message = `rescaling (${request.cause}: ${request.reason}): ${describeRescale(inFlight.previous, inFlight.target)}, from checkpoint ${restore.checkpointId}`;
    if (!this.#host.startNewAttempt(inFlight.target, restore, message)) {
      this.#fail(
        inFlight,
        new SluiceError(ErrorCode.IllegalState, `job ${this.#host.jobId} stopped running`),
      );
      return false;
    }
    return true;
  }

  #fail(inFlight: InFlight, err: unknown): void {
    if (this.#inFlight !== inFlight) return;
    this.#inFlight = undefined;
    const message = err instanceof Error ? err.message : String(err);
    inFlight.record.status = 'FAILED';
    inFlight.record.endTime = Date.now();
    inFlight.record.failure = message;
    this.#host.log.warn({ cause: inFlight.request.cause, err: message }, 'rescale failed');
    inFlight.reject(
      isSluiceError(err)
        ? err
        : new SluiceError(ErrorCode.IllegalState, `rescale of job ${this.#host.jobId} failed: ${message}`),
    );
    this.#host.onRescaleEnded();
  }
}
