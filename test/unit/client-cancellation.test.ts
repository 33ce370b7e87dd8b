/** The Defender client (src/defender/client.ts): cancellation before, during and after a request, the budget wait on cancel, and the shared 429 pause. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DefenderClient } from '../../src/defender/client.js';
import { memoryBudget } from '../helpers/budget.js';
import { silentLogger } from '../../src/log.js';

const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';

describe('the Defender client: cancellation and the shared pause', () => {
  afterEach(() => vi.useRealTimers());
  const tokens = { getToken: async () => 't', invalidate() {}, description: 'fake' } as never;
  const created = JSON.stringify({ id: 'a', type: 'UnrestrictCodeExecution', status: 'Pending', machineId: DEVICE, requestorComment: 'INC-1', creationDateTimeUtc: new Date().toISOString() });

  it('sends nothing once the signal fired: not before the request, not after a Retry-After sleep', async () => {
    const sent: string[] = [];
    const fetch = (async (url: string, init: RequestInit) => {
      sent.push(`${init.method} ${url}`);
      return new Response('', { status: 429, headers: { 'Retry-After': '5' } });
    }) as typeof globalThis.fetch;
    const controller = new AbortController();
    let sleeping!: () => void;
    const asleep = new Promise<void>((r) => (sleeping = r));
    const client = new DefenderClient({ baseUrl: 'http://127.0.0.1:1', tokens, timeoutMs: 1000, logger: silentLogger, fetch, sleep: () => (sleeping(), new Promise(() => undefined)) });
    const call = client.unrestrictCodeExecution(DEVICE, 'INC-1', controller.signal);
    await asleep;
    controller.abort();
    await expect(call).rejects.toThrow(/cancelled/);
    expect(sent).toHaveLength(1);

    const aborted = new AbortController();
    aborted.abort();
    await expect(client.unrestrictCodeExecution(DEVICE, 'INC-1', aborted.signal)).rejects.toMatchObject({ kind: 'not_confirmed' });
    expect(sent).toHaveLength(1);
  });

  it('a cancel while the request is on the wire aborts it; for a write the outcome is unknown', async () => {
    const fetch = ((_url: string, init: RequestInit) =>
      new Promise<Response>((_, reject) => init.signal!.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))))) as typeof globalThis.fetch;
    const client = new DefenderClient({ baseUrl: 'http://127.0.0.1:1', tokens, timeoutMs: 60_000, logger: silentLogger, fetch });
    const controller = new AbortController();
    const call = client.unrestrictCodeExecution(DEVICE, 'INC-1', controller.signal);
    setTimeout(() => controller.abort(), 10);
    await expect(call).rejects.toMatchObject({ kind: 'outcome_unknown' });
  });

  it('the budget wait ends on cancel and gives its slot back', async () => {
    const clock = { now: 0 };
    const limiter = memoryBudget({ perMinute: 1, perHour: 100, maxWaitMs: 120_000, now: () => clock.now, sleep: () => new Promise(() => undefined) });
    await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire({ signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ kind: 'not_confirmed' });
    expect(limiter.usage(60_000)).toEqual({ minute: 0, hour: 1 });
  });

  it('after an upstream 429, a second concurrent call waits too (the pause is shared)', async () => {
    const clock = { now: 1_000_000 };
    const limiterSleeps: number[] = [];
    // The budget's sleep ends when the test moves the clock on (a waiting call checks the pause again on
    // waking, so a sleep that returned at once, with the clock standing still, would sleep again forever).
    const limiterWakes: Array<() => void> = [];
    const limiter = memoryBudget({
      perMinute: 100,
      perHour: 1500,
      maxWaitMs: 60_000,
      now: () => clock.now,
      sleep: (ms) => {
        limiterSleeps.push(ms);
        return new Promise<void>((wake) => limiterWakes.push(wake));
      },
    });
    let first = true;
    const fetch = (async () => {
      if (first) {
        first = false;
        return new Response('', { status: 429, headers: { 'Retry-After': '10' } });
      }
      return new Response(created, { status: 201 });
    }) as typeof globalThis.fetch;
    let release!: () => void;
    const client = new DefenderClient({ baseUrl: 'http://127.0.0.1:1', tokens, timeoutMs: 1000, logger: silentLogger, fetch, limiter, now: () => clock.now, sleep: () => new Promise<void>((r) => (release = r)) });
    const a = client.unrestrictCodeExecution(DEVICE, 'INC-1');
    await vi.waitFor(() => expect(release).toBeDefined());
    // While A sleeps out its Retry-After, B starts: it must wait for the same pause.
    const b = client.getMachineAction('8af71966-4671-4734-a777-a855875c0ec4').catch(() => undefined);
    await vi.waitFor(() => expect(limiterSleeps).toEqual([10_000]));
    clock.now += 10_000;
    release();
    for (const wake of limiterWakes) wake();
    await a;
    await b;
    expect(limiterSleeps).toEqual([10_000]);
  });
});
