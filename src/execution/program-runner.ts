/**
 * Runs a job program (an ES module: a bundle, or a job file run directly) under an execution bridge,
 * with the program's arguments in `process.argv`. One program runs at a time in a process: the bridge
 * and argv are process-wide. The process's own Sluice API is provided to bundles first (host-api.ts).
 */
import { pathToFileURL } from 'node:url';
import {
  type ExecutionBridge,
  installExecutionBridge,
  resetExecutionIndex,
} from '../api/execution-bridge.js';
import { provideHostApi } from './host-api.js';

let queue: Promise<unknown> = Promise.resolve();

/** Serializes work that swaps the process-wide bridge and argv. */
export function exclusively<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.then(fn, fn);
  queue = run.catch(() => undefined);
  return run;
}

export interface ProgramHandle {
  /** Settles when the program's module has been evaluated (its top-level code ran to the end or threw). */
  evaluated: Promise<void>;
}

/**
 * Imports the program with the bridge installed and argv set. The caller decides what to wait for;
 * call `restore()` to put the previous bridge and argv back.
 */
export function startProgram(
  file: string,
  args: string[],
  bridge: ExecutionBridge,
  instance: string,
): ProgramHandle & { restore: () => void } {
  const previousArgv = process.argv;
  process.argv = [process.argv[0]!, file, ...args];
  installExecutionBridge(bridge);
  resetExecutionIndex();
  // A query string makes a fresh module instance: the program's main runs again for each plan.
  const url = `${pathToFileURL(file).href}?sluice=${encodeURIComponent(instance)}`;
  const evaluated = provideHostApi()
    .then(() => import(url))
    .then(() => undefined);
  evaluated.catch(() => undefined);
  return {
    evaluated,
    restore: () => {
      process.argv = previousArgv;
      installExecutionBridge(undefined);
    },
  };
}
