/**
 * Every NATS subject Sluice uses, in one place (design §2). All live under `sluice.<clusterId>.`.
 */
export class Subjects {
  readonly prefix: string;

  constructor(clusterId: string) {
    this.prefix = `sluice.${clusterId}`;
  }

  /** Dispatcher: `.submit`, `.list`, `.status`, `.cancel`, `.overview` (client → JobManager, ask). */
  get dispatcher(): string {
    return `${this.prefix}.dispatcher`;
  }

  /** ResourceManager: `.register` (ask), `.heartbeat`, `.unregister` (tell), from TaskExecutors. */
  get resourceManager(): string {
    return `${this.prefix}.rm`;
  }

  /**
   * A new leader's ResourceManager → every TaskExecutor (plain publish, no body): heartbeat now. Without it
   * the new ResourceManager would know no TaskManager until each one's next heartbeat.
   */
  get heartbeatRequest(): string {
    return `${this.prefix}.tms.heartbeat-request`;
  }

  /** A JobMaster: `.task-state` (TaskExecutor → JobMaster, tell). */
  jobMaster(jobId: string): string {
    return `${this.prefix}.jm.${jobId}`;
  }

  /** A TaskExecutor: `.deploy` (ask), `.cancel` (tell), from JobMasters. */
  taskExecutor(taskManagerId: string): string {
    return `${this.prefix}.tm.${taskManagerId}`;
  }

  /** Results of `executeAndCollect` (collect sink → client, ask). */
  collect(jobId: string): string {
    return `${this.prefix}.collect.${jobId}`;
  }

  /** Job status events (JobMaster → clients, UI). */
  jobEvents(jobId: string): string {
    return `${this.prefix}.events.job.${jobId}`;
  }

  /**
   * Data channel of one target subtask of a job edge: every source subtask of the edge publishes its data
   * frames here and connects here (request). The target's InputGate subscribes. `attempt` is the job's
   * execution attempt, so frames of an earlier attempt never reach a later one.
   */
  dataSubject(jobId: string, attempt: number, edgeId: string, targetSubtask: number): string {
    return `${this.prefix}.data.${jobId}.${attempt}.${edgeId}.${targetSubtask}`;
  }

  /** Credit grants for one source subtask of a job edge, from all its target subtasks. */
  creditSubject(jobId: string, attempt: number, edgeId: string, sourceSubtask: number): string {
    return `${this.prefix}.credit.${jobId}.${attempt}.${edgeId}.${sourceSubtask}`;
  }
}

export { SUBJECT_TOKEN } from '../common/ids.js';
