/** What holds up shutdown (src/http/drain.ts): requests until they close, tool calls until they settle. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createDrain } from '../../src/http/drain.js';

afterEach(() => void vi.useRealTimers());

describe('createDrain', () => {
  it('a request counts until its response closed and every call it carried settled', async () => {
    const drain = createDrain();
    let close!: () => void;
    const request = drain.begin((release) => (close = release));
    let finish!: () => void;
    const call = request.run(() => drain.trackCall(new Promise<void>((r) => (finish = r))));
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

  it('a release called twice counts once', async () => {
    const drain = createDrain();
    let close!: () => void;
    const request = drain.begin((release) => (close = release));
    let finish!: () => void;
    const call = request.run(() => drain.trackCall(new Promise<void>((r) => (finish = r))));
    finish();
    await call;
    expect(drain.inFlight()).toBe(1);
    close();
    close();
    expect(drain.inFlight()).toBe(0);
    const other = drain.begin(() => undefined);
    void other;
    expect(drain.inFlight()).toBe(1);
  });
});
