import type { ExecuteRequest } from '../api/execution-bridge.js';
import type { Program } from '../jobgraph/job-graph.js';
import { PlanningBridge } from './planning-bridge.js';
import { exclusively, startProgram } from './program-runner.js';

/**
 * Runs the program in `file` up to the execute() call that created a job and returns that job's
 * StreamGraph (design §4: TaskExecutors rebuild the graph in planning mode to find functions by uid).
 */
export function planProgram(
  file: string,
  program: Program,
  instance: string,
  timeoutMs = 30_000,
): Promise<ExecuteRequest> {
  return exclusively(async () => {
    const bridge = new PlanningBridge(program.executionIndex, program.parallelism);
    const handle = startProgram(file, program.args, bridge, instance);
    let timer: NodeJS.Timeout | undefined;
    try {
      const failed = handle.evaluated.then(
        () => new Promise<never>(() => {}),
        (err: unknown) => {
          throw new Error(
            `the job's main failed while planning: ${err instanceof Error ? err.message : String(err)}`,
            {
              cause: err,
            },
          );
        },
      );
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `the job's main did not reach execute() call #${program.executionIndex + 1} within ${timeoutMs} ms while planning`,
              ),
            ),
          timeoutMs,
        );
      });
      return await Promise.race([bridge.captured, failed, timedOut]);
    } finally {
      clearTimeout(timer);
      handle.restore();
    }
  });
}
