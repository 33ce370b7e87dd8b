import { afterEach, describe, expect, it, vi } from 'vitest';
import { memoryBudget } from '../helpers/budget.js';
import { ToolError } from '../../src/errors.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;

function fakeClock(start = Date.parse('2026-01-01T00:00:00Z')) {
  const clock = { now: start, slept: 0 };
  return {
    clock,
    now: () => clock.now,
    // Sleeping on the fake clock moves it: no real time passes.
    sleep: async (ms: number) => {
      clock.now += ms;
      clock.slept += ms;
    },
  };
}

/** The largest number of timestamps inside any window [t, t + width). */
function maxInWindow(times: number[], width: number): number {
  let best = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= width) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe('the in-process call budget (MemoryRateBudget)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a burst of 2,000 calls never exceeds 100 a minute or 1,500 an hour, and finishes as early as the budget allows', async () => {
    // Fake timers fake both the clock and setTimeout, so concurrent waiters wake in time order.
    const start = Date.parse('2026-01-01T00:00:00Z');
    vi.useFakeTimers({ now: start });
    const limiter = memoryBudget({ perMinute: 100, perHour: 1500, maxWaitMs: Number.MAX_SAFE_INTEGER });
    const granted: number[] = [];
    const all = Promise.all(
      Array.from({ length: 2000 }, async () => {
        await limiter.acquire();
        granted.push(Date.now());
      }),
    );
    await vi.runAllTimersAsync();
    await all;
    const times = [...granted].sort((a, b) => a - b);
    expect(times).toHaveLength(2000);
    expect(maxInWindow(times, MINUTE)).toBe(100);
    expect(maxInWindow(times, HOUR)).toBe(1500);
    // No needless waiting: 1,500 calls in the first 15 minutes (100 per minute), the other 500 in the
    // five minutes after the first hour's calls start leaving the window.
    expect(times[99]! - start).toBe(0);
    expect(times[100]! - start).toBe(MINUTE);
    expect(times[1499]! - start).toBe(14 * MINUTE);
    expect(times[1500]! - start).toBe(HOUR);
    expect(times[1999]! - start).toBe(HOUR + 4 * MINUTE);
  });

  it('refuses a call whose wait would pass the bound, saying when the budget frees up, and reserves nothing', async () => {
    const { clock, now, sleep } = fakeClock();
    const limiter = memoryBudget({ perMinute: 2, perHour: 10, maxWaitMs: 10_000, now, sleep });
    await limiter.acquire();
    await limiter.acquire();
    const error = await limiter.acquire().catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'rate_limited' });
    expect((error as ToolError).details.retryAfterSeconds).toBe(60);
    expect((error as ToolError).nextStep).toContain(new Date(clock.now + MINUTE).toISOString());
    expect(limiter.usage()).toEqual({ minute: 2, hour: 2 });
    clock.now += MINUTE;
    await limiter.acquire();
    expect(clock.slept).toBe(0);
  });

  it('waits within the bound', async () => {
    const { clock, now, sleep } = fakeClock();
    const limiter = memoryBudget({ perMinute: 1, perHour: 10, maxWaitMs: MINUTE, now, sleep });
    await limiter.acquire();
    clock.now += 15_000;
    await limiter.acquire();
    expect(clock.slept).toBe(45_000);
  });

  it('holds every call after an upstream Retry-After', async () => {
    const { clock, now, sleep } = fakeClock();
    const limiter = memoryBudget({ perMinute: 100, perHour: 1500, maxWaitMs: MINUTE, now, sleep });
    void limiter.pauseFor(7_000);
    await limiter.acquire();
    expect(clock.slept).toBe(7_000);
  });
});
