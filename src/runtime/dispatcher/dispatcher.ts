/**
 * The Dispatcher: the JobManager's front door. Accepts job submissions, starts one JobMaster per job,
 * answers list / status / cancel / overview, and keeps the details of ended jobs (bounded archive).
 */
import { Actor, type ActorContext, LaterReply } from '../../actors/actor.js';
import type { Subjects } from '../../actors/subjects.js';
import { isTerminalJobStatus } from '../../api/job-status.js';
import { ErrorCode, SluiceError } from '../../common/errors.js';
import type { JobId } from '../../common/ids.js';
import { VERSION } from '../../common/version.js';
import { DEFAULT_AUTOSCALER } from '../../config/autoscaler-config.js';
import { type CheckpointingConfig, DEFAULT_CHECKPOINTING } from '../../config/checkpointing-config.js';
import {
  GloballyTerminalStatus,
  type JobGraphStore,
  type JobResultStore,
  recoverableJobs,
} from '../../ha/job-stores.js';
import { type JobGraph, validateJobGraph } from '../../jobgraph/job-graph.js';
import { autoscalingFor, type JobAutoscalers } from '../autoscaler/job-autoscalers.js';
import type { StateStore } from '../checkpoint/state-store.js';
import { JobMaster } from '../jobmaster/job-master.js';
import type { ReactiveModeOptions } from '../jobmaster/reactive-mode.js';
import { createRestartStrategy, type RestartStrategyConfig } from '../jobmaster/restart-strategy.js';
import type { ResourceManager } from '../resourcemanager/resource-manager.js';
import {
  detailsFromResult,
  isApplicationJob,
  noCheckpoints,
  sameApplicationJob,
} from './application-jobs.js';
import {
  type CheckpointsReply,
  DispatcherProtocol,
  type JobDetails,
  type JobSummary,
  type Overview,
  type RescaleReply,
  type ResourceRequirementsReply,
  type SavepointReply,
} from './protocol.js';

export interface DispatcherOptions {
  jobManagerId: string;
  slotRequestTimeoutMs: number;
  cancelTimeoutMs: number;
  /** `heartbeat.interval`: how often TaskExecutors report their executions (reconciliation). */
  heartbeatIntervalMs?: number | undefined;
  /** `heartbeat.timeout`: a TaskExecutor silent about a job this long has lost its executions. */
  heartbeatTimeoutMs?: number | undefined;
  restartStrategy: RestartStrategyConfig;
  /** Cluster-wide checkpoint settings (a job's `enableCheckpointing` overrides interval and mode). */
  checkpointing?: CheckpointingConfig;
  /** Where checkpoints and savepoints go; without it jobs neither checkpoint nor take savepoints. */
  stateStore?: StateStore | undefined;
  /** `scheduler-mode: reactive`: every job uses all the slots it can have, rescaled as they change. */
  reactive?: ReactiveModeOptions | undefined;
  /** Ended jobs kept for `status` and `list --all`. */
  archiveSize?: number;
  /**
   * `job.autoscaler.*`: an autoscaler per job whose settings (the JobManager's, with the job's own keys
   * over them) enable it, started and stopped with its JobMaster.
   */
  autoscalers?: JobAutoscalers | undefined;
  /**
   * High availability: this Dispatcher runs for the leader of `epoch`. Submitted graphs go into `jobs`,
   * globally terminal results into `results` (both fenced by the epoch); JobMasters carry the epoch.
   */
  ha?:
    | { epoch: number; jobs: JobGraphStore; results: JobResultStore; stillLeading?: () => boolean }
    | undefined;
}

interface ArchivedJob {
  details: JobDetails;
  checkpoints: CheckpointsReply;
  graphJson: string;
}

export class Dispatcher extends Actor {
  readonly #subjects: Subjects;
  readonly #rm: ResourceManager;
  readonly #options: DispatcherOptions;
  readonly #running = new Map<string, { master: JobMaster; graphJson: string }>();
  readonly #archive = new Map<string, ArchivedJob>();

  constructor(ctx: ActorContext, subjects: Subjects, rm: ResourceManager, options: DispatcherOptions) {
    super(ctx, 'Dispatcher', subjects.dispatcher);
    this.#subjects = subjects;
    this.#rm = rm;
    this.#options = options;
    rm.onTaskManagerLost((taskManagerId, jobIds, reason) => {
      for (const jobId of jobIds) this.#running.get(jobId)?.master.taskManagerLost(taskManagerId, reason);
    });

    this.serve(DispatcherProtocol, {
      submit: ({ jobGraph, client }) => this.#submit(validateJobGraph(jobGraph), client, true),

      list: ({ all }) => {
        const jobs: JobSummary[] = [...this.#running.values()].map(({ master }) => master.summary());
        if (all) for (const { details } of this.#archive.values()) jobs.push(summaryOf(details));
        jobs.sort((a, b) => b.startTime - a.startTime);
        return { jobs };
      },

      status: ({ jobId }) => {
        const running = this.#running.get(jobId);
        if (running) return running.master.details();
        const archived = this.#archive.get(jobId);
        if (archived) return archived.details;
        throw unknownJob(jobId);
      },

      cancel: async ({ jobId }) => {
        const running = this.#running.get(jobId);
        if (running) return { jobId, status: await running.master.cancel() };
        const archived = this.#archive.get(jobId);
        if (archived) {
          throw new SluiceError(
            ErrorCode.IllegalState,
            `job ${jobId} has already ended (${archived.details.status}); nothing to cancel`,
          );
        }
        throw unknownJob(jobId);
      },

      savepoint: ({ jobId, dir, stop }): LaterReply<SavepointReply> => {
        const running = this.#running.get(jobId);
        if (!running) {
          const archived = this.#archive.get(jobId);
          if (archived) {
            throw new SluiceError(
              ErrorCode.IllegalState,
              `job ${jobId} has already ended (${archived.details.status})`,
            );
          }
          throw unknownJob(jobId);
        }
        return new LaterReply(
          running.master.triggerSavepoint(dir, stop).then((m) => ({
            jobId,
            path: m.target,
            checkpointId: m.checkpointId,
            sizeBytes: m.sizeBytes,
            durationMs: m.durationMs,
          })),
        );
      },

      rescale: (request): LaterReply<RescaleReply> => {
        const master = this.#runningMaster(request.jobId);
        const target: Record<string, number> = {};
        if (request.parallelism !== undefined) {
          for (const id of Object.keys(master.currentParallelism())) target[id] = request.parallelism;
        }
        Object.assign(target, request.vertices ?? {});
        return new LaterReply(
          master.rescale({ target, cause: request.cause, reason: request.reason }).then((r) => ({
            jobId: request.jobId,
            previous: { ...r.previous },
            target: { ...r.target },
            ...(r.downtimeMs === undefined ? {} : { downtimeMs: r.downtimeMs }),
          })),
        );
      },

      'resource-requirements': ({ jobId }): ResourceRequirementsReply => {
        const master = this.#runningMaster(jobId);
        return {
          jobId,
          parallelism: { ...master.currentParallelism() },
          maxParallelism: { ...master.maxParallelism() },
          schedulerMode: this.#options.reactive ? 'reactive' : 'default',
          rescales: master.rescaleHistory(),
        };
      },

      autoscaler: ({ jobId }) => {
        if (!this.#running.has(jobId) && !this.#archive.has(jobId)) throw unknownJob(jobId);
        return this.#autoscalerStatus(jobId);
      },

      checkpoints: ({ jobId }): CheckpointsReply => {
        const running = this.#running.get(jobId);
        if (running) return checkpointsOf(jobId, running.master);
        const archived = this.#archive.get(jobId);
        if (archived) return archived.checkpoints;
        throw unknownJob(jobId);
      },

      overview: async (): Promise<Overview> => {
        const taskManagers = await this.#rm.taskManagers();
        const jobs: Record<string, number> = {};
        for (const { master } of this.#running.values()) jobs[master.status] = (jobs[master.status] ?? 0) + 1;
        for (const { details } of this.#archive.values())
          jobs[details.status] = (jobs[details.status] ?? 0) + 1;
        return {
          jobManagerId: this.#options.jobManagerId,
          version: VERSION,
          taskManagers,
          slotsTotal: taskManagers.reduce((n, tm) => n + tm.slotsTotal, 0),
          slotsFree: taskManagers.reduce((n, tm) => n + tm.slotsFree, 0),
          jobs,
        };
      },
    });
  }

  /**
   * HA: submits again every job in the job graph store without a result (a former leader's jobs). They
   * restart from their latest checkpoint (from the beginning if they have none). Returns the recovered
   * job ids. A job that could not be read for a retryable reason (the store unavailable for a while) makes
   * it throw that error once the others are recovered: calling it again is safe (a job already recovered
   * is not submitted twice).
   */
  async recoverJobs(): Promise<string[]> {
    const ha = this.#options.ha;
    if (!ha) return [];
    const ids = await recoverableJobs(ha.jobs, ha.results);
    const recovered: string[] = [];
    let retryable: SluiceError | undefined;
    for (const jobId of ids) {
      try {
        const stored = await ha.jobs.get(jobId);
        if (!stored) continue;
        const graph = validateJobGraph(stored.jobGraph);
        this.log.info(
          { job: jobId, name: graph.name, storedUnderEpoch: stored.epoch, epoch: ha.epoch },
          'recovering job: it restarts from its latest checkpoint (from the beginning if it has none)',
        );
        await this.runInMailbox(() => this.#submit(graph, 'recovery', false));
        recovered.push(jobId);
      } catch (err) {
        if (err instanceof SluiceError && err.retryable) {
          retryable ??= err;
          continue;
        }
        this.log.error(
          { job: jobId, err: err instanceof Error ? err.message : String(err) },
          'job not recovered',
        );
      }
    }
    if (retryable !== undefined) throw retryable;
    return recovered;
  }

  async #submit(graph: JobGraph, client: string | undefined, store: boolean): Promise<{ jobId: string }> {
    const graphJson = JSON.stringify(graph);
    const known = this.#running.get(graph.jobId) ?? this.#archive.get(graph.jobId);
    if (known) {
      // A retried submission of the same job is answered as the first one was; so is an application's job
      // submitted again by its main, run again after a failover (the client attaches to the job).
      if (known.graphJson === graphJson) return { jobId: graph.jobId };
      if (sameApplicationJob(known.graphJson, graph)) {
        this.log.info(
          { job: graph.jobId, name: graph.name, client, application: graph.applicationId },
          'application job already known: the submission attaches to it',
        );
        return { jobId: graph.jobId };
      }
      throw new SluiceError(
        ErrorCode.JobAlreadyExists,
        `job id ${graph.jobId} is already used by another job`,
      );
    }
    // The job's autoscaler settings: its own keys over the JobManager's; refused before anything is stored.
    const autoscaling = autoscalingFor(this.#options.autoscalers?.defaults ?? DEFAULT_AUTOSCALER, graph, {
      reactive: this.#options.reactive !== undefined,
      recovering: !store,
    });
    const ha = this.#options.ha;
    if (ha && store) {
      const ended = await ha.results.get(graph.jobId);
      if (ended && isApplicationJob(graph) && !this.#running.has(graph.jobId)) {
        // It ended under a former leader: the main run again attaches to its result instead of re-running it.
        this.#archive.set(graph.jobId, {
          details: detailsFromResult(graph, ended),
          graphJson,
          checkpoints: noCheckpoints(graph.jobId),
        });
        this.log.info(
          {
            job: graph.jobId,
            name: graph.name,
            client,
            application: graph.applicationId,
            status: ended.status,
          },
          'application job already ended under a former leader: the submission attaches to its result',
        );
        return { jobId: graph.jobId };
      }
      if (ended) {
        throw new SluiceError(
          ErrorCode.JobAlreadyExists,
          `job ${graph.jobId} has already run in this cluster`,
        );
      }
      // Before the job starts: a leader that dies from now on leaves it to the next one.
      await ha.jobs.put(ha.epoch, graph.jobId, { jobGraph: graph });
    }
    const cluster = this.#options.checkpointing ?? DEFAULT_CHECKPOINTING;
    const checkpointing: CheckpointingConfig = {
      ...cluster,
      intervalMs: graph.checkpointing?.intervalMs ?? cluster.intervalMs,
      mode: graph.checkpointing?.mode ?? cluster.mode,
    };
    const stateStore = this.#options.stateStore;
    if (graph.savepoint && !stateStore) {
      throw new SluiceError(
        ErrorCode.IllegalState,
        'this JobManager has no state store: cannot start from a savepoint',
      );
    }
    const master = new JobMaster(this.ctx, this.#subjects, this.#rm, graph, {
      slotRequestTimeoutMs: this.#options.slotRequestTimeoutMs,
      cancelTimeoutMs: this.#options.cancelTimeoutMs,
      restartStrategy: createRestartStrategy(
        this.#options.restartStrategy,
        Math.random,
        stateStore !== undefined && checkpointing.intervalMs > 0,
      ),
      checkpointing: stateStore ? { config: checkpointing, store: stateStore } : undefined,
      stillLeading: ha?.stillLeading,
      heartbeatIntervalMs: this.#options.heartbeatIntervalMs,
      heartbeatTimeoutMs: this.#options.heartbeatTimeoutMs,
      reactive: this.#options.reactive,
      epoch: ha?.epoch,
      onTerminated: (jm) => void this.runInMailbox(() => this.#archiveJob(jm)).catch(() => undefined),
      onRescaled: ha
        ? (rescaled) =>
            void ha.jobs
              .put(ha.epoch, rescaled.jobId, { jobGraph: rescaled })
              .catch((err: unknown) =>
                this.log.warn(
                  { job: rescaled.jobId, err: err instanceof Error ? err.message : String(err) },
                  'could not store the rescaled job graph: a new leader would recover the job at its former parallelism',
                ),
              )
        : undefined,
    });
    this.#running.set(graph.jobId, { master, graphJson });
    this.log.info({ job: graph.jobId, name: graph.name, client }, 'job submitted');
    master.start();
    this.#options.autoscalers?.start(
      { graph, rescaler: master, view: () => master.details(), log: this.log.child({ job: graph.jobId }) },
      autoscaling,
    );
    return { jobId: graph.jobId };
  }

  /** The JobMaster of a job that runs; UNKNOWN_JOB, or ILLEGAL_STATE for a job that has ended. */
  #runningMaster(jobId: string): JobMaster {
    const running = this.#running.get(jobId);
    if (running) return running.master;
    const archived = this.#archive.get(jobId);
    if (archived) {
      throw new SluiceError(
        ErrorCode.IllegalState,
        `job ${jobId} has already ended (${archived.details.status})`,
      );
    }
    throw unknownJob(jobId);
  }

  /**
   * The JobMaster of a running job, for in-process callers (the autoscaler): undefined when the job does
   * not run here.
   */
  jobMaster(jobId: string): JobMaster | undefined {
    return this.#running.get(jobId)?.master;
  }

  #autoscalerStatus(jobId: string) {
    const autoscalers = this.#options.autoscalers;
    if (autoscalers) return autoscalers.status(jobId);
    return {
      jobId,
      enabled: false,
      reason: 'this JobManager runs no autoscaler',
      decisions: [],
      counts: {},
      rescales: 0,
      ineffective: {},
    };
  }

  /** Every running job's autoscaler state, for metrics. */
  autoscalersByJob(): Promise<ReturnType<JobAutoscalers['all']>> {
    return this.runInMailbox(() => this.#options.autoscalers?.all() ?? []);
  }

  /** Jobs by status (running and archived), for metrics. */
  jobCounts(): Promise<Record<string, number>> {
    return this.runInMailbox(() => {
      const counts: Record<string, number> = {};
      for (const { master } of this.#running.values())
        counts[master.status] = (counts[master.status] ?? 0) + 1;
      for (const { details } of this.#archive.values())
        counts[details.status] = (counts[details.status] ?? 0) + 1;
      return counts;
    });
  }

  /** Checkpoint statistics of each running job, for metrics. */
  checkpointsByJob(): Promise<Record<string, CheckpointsReply>> {
    return this.runInMailbox(() =>
      Object.fromEntries(
        [...this.#running.values()].map(({ master }) => [master.jobId, checkpointsOf(master.jobId, master)]),
      ),
    );
  }

  /** Restarts of each running job, for metrics. */
  restartsByJob(): Promise<Record<string, number>> {
    return this.runInMailbox(() =>
      Object.fromEntries(
        [...this.#running.values()].map(({ master }) => [master.jobId, master.details().restarts]),
      ),
    );
  }

  /** The JobManager is stopping: running jobs end SUSPENDED (their tasks are cancelled). */
  protected override async onStop(): Promise<void> {
    this.#options.autoscalers?.stopAll();
    const masters = [...this.#running.values()].map((r) => r.master);
    await Promise.allSettled(masters.map((m) => m.suspend('JobManager shut down')));
    // A job that ended just before may still be deleting its checkpoints: let that finish (bounded), or it
    // fails on the connection the JobManager drains next.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(masters.map((m) => m.terminated)),
      new Promise((resolve) => {
        timer = setTimeout(resolve, 10_000);
      }),
    ]);
    clearTimeout(timer);
    await Promise.allSettled(masters.map((m) => m.stop()));
  }

  /** HA: a globally terminal job gets its result stored (then its graph removed); SUSPENDED does not. */
  #storeResult(details: JobDetails): void {
    const ha = this.#options.ha;
    const status = GloballyTerminalStatus.safeParse(details.status);
    if (!ha || !status.success) return;
    const jobId = details.jobId;
    void (async () => {
      await ha.results.put(ha.epoch, jobId, {
        status: status.data,
        endedAt: details.endTime ?? Date.now(),
        ...(details.error ? { failure: details.error.message.slice(0, 60_000) } : {}),
      });
      await ha.jobs.remove(ha.epoch, jobId);
    })().catch((err: unknown) =>
      this.log.warn(
        { job: jobId, err: err instanceof Error ? err.message : String(err) },
        'job result not stored',
      ),
    );
  }

  #archiveJob(master: JobMaster): void {
    const running = this.#running.get(master.jobId);
    if (!running || !isTerminalJobStatus(master.status)) return;
    this.#running.delete(master.jobId);
    this.#options.autoscalers?.stop(master.jobId);
    const details = master.details();
    this.#archive.set(master.jobId, {
      details,
      graphJson: running.graphJson,
      checkpoints: checkpointsOf(master.jobId, master),
    });
    this.#storeResult(details);
    const limit = this.#options.archiveSize ?? 1_000;
    while (this.#archive.size > limit) {
      const oldest = this.#archive.keys().next().value as string;
      this.#archive.delete(oldest);
      this.#options.autoscalers?.forget(oldest);
    }
  }
}

function checkpointsOf(jobId: JobId, master: JobMaster): CheckpointsReply {
  const { intervalMs, counts, history, restored } = master.checkpointStats();
  return { jobId, intervalMs, counts, history, restored: restored ?? null };
}

function summaryOf(details: JobDetails): JobSummary {
  const { vertices: _v, edges: _g, error: _e, accumulators: _a, restarts: _r, ...summary } = details;
  return summary;
}

function unknownJob(jobId: string): SluiceError {
  return new SluiceError(ErrorCode.UnknownJob, `job ${jobId} is not known to this JobManager`);
}
