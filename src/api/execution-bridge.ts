/**
 * Who runs a program's jobs. A process that runs user programs (the `sluice run` client, a TaskExecutor
 * planning a job, an application-mode JobManager) installs a bridge before it imports the program; a
 * program run directly with node/tsx finds none and runs on a local cluster.
 *
 * The bridge lives on `globalThis` under a registered symbol, so a program bundled with its own copy of
 * the API still finds the host's bridge.
 */
import type { StreamGraph } from '../jobgraph/stream-graph.js';
import type { JobClient } from './job-client.js';

export interface ExecuteRequest {
  graph: StreamGraph;
  jobName: string;
  /** 0 for the program's first execute/executeAsync call, 1 for the second, … */
  executionIndex: number;
  /** Collect sink records come back to the caller (executeAndCollect). */
  collect: boolean;
}

export interface ExecutionBridge {
  /** Default parallelism for environments created by getExecutionEnvironment (e.g. `sluice run -p`). */
  readonly defaultParallelism?: number;
  /**
   * True for a bridge that must see every execute() of the program, whatever environment it created
   * (planning on a TaskExecutor rebuilds the graph of a program that uses createRemoteEnvironment too).
   */
  readonly capturesAllEnvironments?: boolean;
  submit(request: ExecuteRequest): Promise<JobClient & { collected?: () => Promise<unknown[]> }>;
}

const KEY = Symbol.for('sluice.execution-bridge');

export function installExecutionBridge(bridge: ExecutionBridge | undefined): void {
  (globalThis as Record<symbol, unknown>)[KEY] = bridge;
}

export function currentExecutionBridge(): ExecutionBridge | undefined {
  return (globalThis as Record<symbol, unknown>)[KEY] as ExecutionBridge | undefined;
}

const COUNTER = Symbol.for('sluice.execution-index');

/** Numbers the execute calls of one program run (bridges reset it before they start a program). */
export function nextExecutionIndex(): number {
  const g = globalThis as Record<symbol, number | undefined>;
  const index = g[COUNTER] ?? 0;
  g[COUNTER] = index + 1;
  return index;
}

export function resetExecutionIndex(): void {
  (globalThis as Record<symbol, number | undefined>)[COUNTER] = 0;
}
