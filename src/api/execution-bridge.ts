/**
 * Who runs a program's jobs: the contract between the API and `src/execution/`, which implements it.
 *
 * - A process that runs user programs (the `sluice run` client, a TaskExecutor planning a job, an
 *   application-mode JobManager) installs a bridge before it imports the program.
 * - A program run directly with node/tsx finds no bridge and uses the registered execution targets:
 *   `local` (a private cluster in this process) for getExecutionEnvironment()/createLocalEnvironment(),
 *   `remote` for createRemoteEnvironment(). The package entry (`src/index.ts`) registers them; the API
 *   never imports execution code itself (docs/architecture.md, "Layers").
 *
 * Both live on `globalThis` under registered symbols, so a program bundled with its own copy of the API
 * still finds the host's bridge and targets.
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

/** Where createRemoteEnvironment() submits to. */
export interface RemoteEnvironmentOptions {
  /** NATS server URL(s) of the cluster. */
  nats: string;
  clusterId?: string;
  /** The job file to ship; default: the program's entry script (process.argv[1]). */
  jobFile?: string;
}

/** How environments without an installed bridge reach a cluster (filled by the package entry). */
export interface ExecutionTargets {
  /** A private cluster in this process (its own nats-server unless `natsUrl`). */
  local(options: { natsUrl?: string }): ExecutionBridge;
  /** A running cluster, the program's entry file shipped as the job's code. */
  remote(options: RemoteEnvironmentOptions): ExecutionBridge;
}

const KEY = Symbol.for('sluice.execution-bridge');
const TARGETS = Symbol.for('sluice.execution-targets');

export function registerExecutionTargets(targets: ExecutionTargets): void {
  (globalThis as Record<symbol, unknown>)[TARGETS] = targets;
}

export function registeredExecutionTargets(): ExecutionTargets | undefined {
  return (globalThis as Record<symbol, unknown>)[TARGETS] as ExecutionTargets | undefined;
}

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
