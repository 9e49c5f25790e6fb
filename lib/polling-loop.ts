/**
 * The one polling loop: a tick every `everyMs`, never two at once (a tick
 * still running when the next is due is skipped), `runNow()` for a tick
 * right away, and `stop()` that waits for the tick that runs. A tick that
 * throws goes to `onError`; the loop carries on. The tick gets a signal that
 * is aborted when the loop stops, so a tick that loops (drain a queue) can end early.
 */
export interface PollingLoopOptions {
  everyMs: number;
  tick: (signal: AbortSignal) => Promise<unknown>;
  onError: (error: unknown) => void;
}

export class PollingLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private abort = new AbortController();

  constructor(private readonly options: PollingLoopOptions) {}

  /** Ticks every `everyMs` from now on (the first after `everyMs`: `runNow()` for one at once). Starting twice is harmless. */
  start(): void {
    if (this.timer) return;
    if (this.abort.signal.aborted) this.abort = new AbortController();
    this.timer = setInterval(() => this.runNow(), this.options.everyMs);
  }

  /** Stops ticking; resolves when the tick that runs (if any) has ended. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.abort.abort();
    await this.running;
  }

  /** A tick now, unless one runs or the loop is stopped. */
  runNow(): void {
    if (!this.timer || this.running) return;
    this.running = this.options
      .tick(this.abort.signal)
      .then(
        () => undefined,
        (error: unknown) => {
          try {
            this.options.onError(error);
          } catch {
            // A failing error callback must not stop the loop.
          }
        },
      )
      .finally(() => (this.running = undefined));
  }

  /** True from start() to stop(). */
  get started(): boolean {
    return this.timer !== undefined;
  }

  /** True while a tick runs. */
  get busy(): boolean {
    return this.running !== undefined;
  }
}
