/**
 * The execution targets of a program run directly with node/tsx (`src/api/execution-bridge.ts`):
 * `local` runs its jobs on a cluster in this process (`./local-cluster.ts` through
 * `src/execution/local-bridge.ts`), `remote` submits to a running cluster
 * (`src/execution/remote-bridge.ts`). Both load their code on first use, so importing the API stays cheap.
 *
 * The package entry calls `registerDefaultExecutionTargets()`. Inside a job bundle this module is
 * replaced by a stub (`src/execution/job-program.ts`): a bundle runs under its host's bridge and never
 * starts clusters of its own.
 */
import type { ExecutionBridge } from '../api/execution-bridge.js';
import { registerExecutionTargets } from '../api/execution-bridge.js';

/** A bridge whose implementation is imported on the first submit. */
function lazyBridge(load: () => Promise<ExecutionBridge>): ExecutionBridge {
  let bridge: Promise<ExecutionBridge> | undefined;
  return {
    submit: async (request) => {
      bridge ??= load();
      return (await bridge).submit(request);
    },
  };
}

export function registerDefaultExecutionTargets(): void {
  registerExecutionTargets({
    local: (options) =>
      lazyBridge(async () => {
        const [{ runLocally }, { startLocalCluster }] = await Promise.all([
          import('../execution/local-bridge.js'),
          import('./local-cluster.js'),
        ]);
        return runLocally({ ...options, startCluster: startLocalCluster });
      }),
    remote: (options) =>
      lazyBridge(async () => (await import('../execution/remote-bridge.js')).runRemotely(options)),
  });
}
