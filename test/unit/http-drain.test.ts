/** What holds up shutdown (src/http/drain.ts): requests until they close, tool calls until they settle. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createDrain, type Drain } from '../../src/http/drain.js';

afterEach(() => void vi.useRealTimers());

/** A request whose response the test closes, carrying one tool call the test finishes. */
function requestWithCall(drain: Drain) {
  let close!: () => void;
  let finish!: () => void;
  const request = drain.begin((release) => (close = release));
  const call = request.run(() => drain.trackCall(new Promise<void>((r) => (finish = r))));
  return { close: () => close(), finish: () => finish(), call };
}

describe('createDrain', () => {
  it('a request counts until its response closed and every call it carried settled', async () => {
    const drain = createDrain();
    const { close, finish, call } = requestWithCall(drain);
    expect(drain.inFlight()).toBe(1);
    close();
    expect(drain.inFlight()).toBe(1); // the call it carried still runs (a write may be on its way)
    finish();
    await call;
    expect(drain.inFlight()).toBe(0);
    expect(await drain.drained(10)).toBe(true);
  });

  it('a call outside any request counts on its own; drained() gives up after the grace time', async () => {
    vi.useFakeTimers();
    const drain = createDrain();
    void drain.trackCall(new Promise(() => undefined));
    expect(drain.inFlight()).toBe(1);
    const waiting = drain.drained(5_000);
    await vi.advanceTimersByTimeAsync(4_999);
    let settled = false;
    void waiting.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await waiting).toBe(false);
  });

  it('a response closed twice is released once: the count never goes below what is in flight', async () => {
    const drain = createDrain();
    const { close, finish, call } = requestWithCall(drain);
    finish();
    await call;
    expect(drain.inFlight()).toBe(1);
    close();
    close();
    expect(drain.inFlight()).toBe(0);
    drain.begin(() => undefined);
    expect(drain.inFlight()).toBe(1);
  });
});
