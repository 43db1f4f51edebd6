/**
 * Planning on a TaskManager: where a TaskExecutor finds the StreamGraph (with the user's functions) of a
 * job it runs — in memory for jobs of the local cluster, else by downloading the job's bundle and planning
 * it. Plans are cached per job: all subtasks of a job on one TaskManager share one planning run.
 */
import type { Program } from '../jobgraph/job-graph.js';
import type { StreamGraph } from '../jobgraph/stream-graph.js';
import type { ArtifactCache } from '../runtime/artifacts/artifact-store.js';
import type { PlanResolver } from '../runtime/taskexecutor/plan-resolver.js';
import { provideHostApi } from './host-api.js';
import { planProgram } from './planner.js';

/** Plans registered by the process that ran the program (local mode). */
export class InMemoryPlans {
  readonly #plans = new Map<string, StreamGraph>();

  register(jobId: string, graph: StreamGraph): void {
    this.#plans.set(jobId, graph);
  }

  get(jobId: string): StreamGraph | undefined {
    return this.#plans.get(jobId);
  }

  delete(jobId: string): void {
    this.#plans.delete(jobId);
  }
}

export class DefaultPlanResolver implements PlanResolver {
  readonly #memory: InMemoryPlans | undefined;
  readonly #artifacts: () => Promise<ArtifactCache>;
  readonly #cache = new Map<string, Promise<StreamGraph>>();
  #runs = 0;

  constructor(artifacts: () => Promise<ArtifactCache>, memory?: InMemoryPlans) {
    this.#artifacts = artifacts;
    this.#memory = memory;
  }

  /**
   * Loads the API bundles link against now rather than in the first job's deployment. For a thread of
   * its own (a slot worker): loading evaluates the whole API at once, which would hold up a TaskExecutor's
   * heartbeats. A failure here shows again, with its cause, when a plan needs the API.
   */
  warmUp(): void {
    provideHostApi().catch(() => undefined);
  }

  resolve(jobId: string, program: Program | undefined): Promise<StreamGraph> {
    const inMemory = this.#memory?.get(jobId);
    if (inMemory) return Promise.resolve(inMemory);
    let plan = this.#cache.get(jobId);
    if (!plan) {
      plan = this.#plan(jobId, program);
      this.#cache.set(jobId, plan);
      plan.catch(() => this.#cache.delete(jobId));
    }
    return plan;
  }

  release(jobId: string): void {
    this.#cache.delete(jobId);
  }

  async #plan(jobId: string, program: Program | undefined): Promise<StreamGraph> {
    if (!program?.artifact) throw new Error(`job ${jobId} has no program bundle to plan from`);
    const file = await (await this.#artifacts()).path(program.artifact);
    // Each planning run needs its own module instance: a job planned again (after a restart) must run
    // main again.
    return (await planProgram(file, program, `${jobId}-${++this.#runs}`)).graph;
  }
}
