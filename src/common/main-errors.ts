/**
 * How a program run directly (`node job.js`, `tsx job.ts`: the local run path) reports a main that throws,
 * as the CLI does: one line on stderr — the error's name and message — and exit status 1; the stack only
 * with `SLUICE_DEBUG=1`. Installed once, by the first `getExecutionEnvironment()` outside any host, and
 * only when the program has no `uncaughtException` handler of its own (it then keeps full control).
 * Unhandled rejections reach it too (Node raises them as uncaught exceptions).
 */

let installed = false;

/** One line for `err`: `Name: message` (the first line of it), or the whole stack with SLUICE_DEBUG=1. */
export function describeMainError(err: unknown): string {
  if (process.env.SLUICE_DEBUG === '1' && err instanceof Error && err.stack !== undefined) return err.stack;
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.split('\n')[0]!;
}

export function reportMainErrorsInOneLine(): void {
  if (installed || process.listenerCount('uncaughtException') > 0) return;
  installed = true;
  process.on('uncaughtException', (err) => {
    // Another handler added since: it decides.
    if (process.listenerCount('uncaughtException') > 1) return;
    process.stderr.write(`${describeMainError(err)}\n`);
    process.exit(1);
  });
}
