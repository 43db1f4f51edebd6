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

  /** A JobMaster: `.task-state` (TaskExecutor → JobMaster, tell). */
  jobMaster(jobId: string): string {
    return `${this.prefix}.jm.${jobId}`;
  }

  /** A TaskExecutor: `.deploy` (ask), `.cancel` (tell), from JobMasters. */
  taskExecutor(taskManagerId: string): string {
    return `${this.prefix}.tm.${taskManagerId}`;
  }

  /** Job status events (JobMaster → clients, UI). */
  jobEvents(jobId: string): string {
    return `${this.prefix}.events.job.${jobId}`;
  }
}

/** Tokens used as ids in subjects: no dots, wildcards or spaces. */
export const SUBJECT_TOKEN = /^[A-Za-z0-9_-]{1,64}$/;
