/**
 * A pool of TaskManagers the ResourceManager can grow (Flink's active ResourceManager and its driver):
 * implemented by the standalone provider (`sluice cluster start --taskmanagers MIN..MAX`, processes on this
 * host) and passed in by the `jobmanager` command; absent otherwise (TaskManagers come and go on their own,
 * e.g. a Kubernetes Deployment scaled by a HorizontalPodAutoscaler).
 *
 * The ResourceManager tells it when a slot request cannot be served (`requestSlots`); the pool itself
 * watches the registered TaskManagers and stops its idle ones (`resourcemanager.taskmanager-timeout`).
 * Only the leading JobManager's pool acts: `activate` on leadership, `deactivate` when it ends (the pool's
 * TaskManagers keep running for the next leader).
 */
import type { TaskManagerInfo } from '../dispatcher/protocol.js';

/** What a pool reads of the ResourceManager. */
export interface WorkerPoolCluster {
  taskManagers(): Promise<TaskManagerInfo[]>;
  /** Slots wanted by slot requests that wait. */
  pendingSlots(): Promise<number>;
}

export interface WorkerPool {
  /** Starts managing: brings the pool to its minimum, watches for idle TaskManagers. */
  activate(cluster: WorkerPoolCluster): void;
  /** Stops managing (leadership ended, or the JobManager stops); its TaskManagers keep running. */
  deactivate(): void;
  /** `missing` more slots are wanted now than the registered TaskManagers have free. */
  requestSlots(missing: number): void;
  /**
   * Slots the pool can still add to the registered TaskManagers': those of TaskManagers it may start and of
   * those it is starting (0 when all it may have are registered).
   */
  headroomSlots(): number;
}
