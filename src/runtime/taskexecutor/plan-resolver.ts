/**
 * Where a TaskExecutor finds the StreamGraph (with the user's functions) of a job it runs. The
 * TaskExecutor only knows this interface; the process that assembles the TaskManager passes an
 * implementation (`src/execution/plan-resolver.ts`: in memory for the local cluster, else by planning the
 * job's bundle), so the runtime never imports program-running code.
 */
import type { Program } from '../../jobgraph/job-graph.js';
import type { StreamGraph } from '../../jobgraph/stream-graph.js';

export interface PlanResolver {
  resolve(jobId: string, program: Program | undefined): Promise<StreamGraph>;
  /** The job ended on this TaskManager: drop its plan. */
  release(jobId: string): void;
}
