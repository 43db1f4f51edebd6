/** Everything the bench started, stopped in reverse order. Idempotent. */
export class Resources {
  readonly #cleanups: Array<() => Promise<unknown>> = [];
  #done: Promise<void> | undefined;
  add(cleanup: () => Promise<unknown>): void {
    this.#cleanups.push(cleanup);
  }
  stopAll(): Promise<void> {
    this.#done ??= (async () => {
      for (const cleanup of this.#cleanups.reverse()) {
        await cleanup().catch((err: unknown) => console.error(`cleanup failed: ${String(err)}`));
      }
    })();
    return this.#done;
  }
}
