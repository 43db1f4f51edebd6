/**
 * A program's main run for an application's JobManager (`runProgramInChild` with `exitWithParent`) exits
 * when that JobManager is gone: a killed leader's main must not go on submitting jobs for it (the next
 * leader runs main again). Watches the parent pid; does nothing when the variable is not set.
 */
import { EXIT_WITH_PARENT_VARIABLE } from '../execution/run-program-in-child.js';

const WATCH_INTERVAL_MS = 250;

export function exitWithParent(): void {
  const parent = Number(process.env[EXIT_WITH_PARENT_VARIABLE]);
  if (!Number.isInteger(parent) || parent <= 0) return;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    process.stderr.write(`the JobManager (pid ${parent}) that ran this main is gone; main exits\n`);
    process.exit(1);
  }, WATCH_INTERVAL_MS);
  timer.unref();
}
