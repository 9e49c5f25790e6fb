/** The one polling loop (lib/polling-loop.ts), with fake ticks whose end each test decides. */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { PollingLoop } from "../../lib/polling-loop";

/** A promise the test resolves or rejects when it chooses. */
function deferred() {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

/** A loop whose ticks each wait for their own deferred; `ticks` lists them in order. */
function fakeLoop() {
  const ticks: { done: ReturnType<typeof deferred>; signal: AbortSignal }[] = [];
  const errors: unknown[] = [];
  const loop = new PollingLoop({
    everyMs: 1000,
    tick: (signal) => {
      const done = deferred();
      ticks.push({ done, signal });
      return done.promise;
    },
    onError: (error) => errors.push(error),
  });
  return { loop, ticks, errors };
}

/** Lets the promise callbacks queued so far run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

beforeEach(() => vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] }));
afterEach(() => vi.useRealTimers());

describe("PollingLoop", () => {
  it("ticks every interval once started, and not before", async () => {
    const { loop, ticks } = fakeLoop();
    loop.runNow();
    vi.advanceTimersByTime(5000);
    expect(ticks).toHaveLength(0);
    loop.start();
    vi.advanceTimersByTime(1000);
    expect(ticks).toHaveLength(1);
    ticks[0]!.done.resolve();
    await settle();
    vi.advanceTimersByTime(1000);
    expect(ticks).toHaveLength(2);
    ticks[1]!.done.resolve();
    await loop.stop();
  });

  it("never runs two ticks at once: a tick due while one runs is skipped", async () => {
    const { loop, ticks } = fakeLoop();
    loop.start();
    loop.runNow();
    expect(loop.busy).toBe(true);
    loop.runNow();
    vi.advanceTimersByTime(3000);
    expect(ticks).toHaveLength(1);
    ticks[0]!.done.resolve();
    await settle();
    expect(loop.busy).toBe(false);
    loop.runNow();
    expect(ticks).toHaveLength(2);
    ticks[1]!.done.resolve();
    await loop.stop();
  });

  it("stop waits for the running tick, aborts its signal, and ticks no more", async () => {
    const { loop, ticks } = fakeLoop();
    loop.start();
    loop.runNow();
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await settle();
    expect(ticks[0]!.signal.aborted).toBe(true);
    expect(stopped).toBe(false);
    ticks[0]!.done.resolve();
    await stopping;
    expect(stopped).toBe(true);
    expect(loop.started).toBe(false);
    loop.runNow();
    vi.advanceTimersByTime(5000);
    expect(ticks).toHaveLength(1);
  });

  it("a failed tick goes to onError and the loop carries on; it can start again after a stop", async () => {
    const { loop, ticks, errors } = fakeLoop();
    loop.start();
    loop.runNow();
    ticks[0]!.done.reject(new Error("database unreachable"));
    await settle();
    expect(errors).toEqual([new Error("database unreachable")]);
    vi.advanceTimersByTime(1000);
    expect(ticks).toHaveLength(2);
    ticks[1]!.done.resolve();
    await loop.stop();
    loop.start();
    loop.runNow();
    expect(ticks).toHaveLength(3);
    expect(ticks[2]!.signal.aborted).toBe(false);
    ticks[2]!.done.resolve();
    await loop.stop();
  });

  it("an error callback that throws does not stop the loop", async () => {
    const ticks: ReturnType<typeof deferred>[] = [];
    const loop = new PollingLoop({
      everyMs: 1000,
      tick: () => {
        ticks.push(deferred());
        return ticks.at(-1)!.promise;
      },
      onError: () => {
        throw new Error("the log is gone");
      },
    });
    loop.start();
    loop.runNow();
    ticks[0]!.reject(new Error("tick failed"));
    await settle();
    expect(loop.busy).toBe(false);
    loop.runNow();
    expect(ticks).toHaveLength(2);
    ticks[1]!.resolve();
    await loop.stop();
  });
});
