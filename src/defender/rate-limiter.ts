/**
 * The budget every Defender call takes a slot from: at most `perMinute` in any rolling minute and
 * `perHour` in any rolling hour (Defender documents 100 and 1,500 per app). Each call reserves the
 * earliest slot that keeps both limits, so calls run in order and as early as the budget allows, never
 * earlier. A call whose slot is further away than `maxWaitMs` is refused at once with the time the budget
 * frees up. One process: RateLimiter below; several replicas of one app registration: the Redis store's
 * budget (src/store/redis.ts), the same decision in a Lua script.
 */
import { MemoryRateBudget } from '../store/memory.js';
import type { BudgetOptions, RateBudget } from '../store/types.js';

/** What the Defender client needs of a budget: `acquire({ user })` and `pauseFor(ms)` after a 429. */
export type CallBudget = RateBudget;

export interface RateLimiterOptions extends BudgetOptions {
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** The in-process budget, with a clock and a sleep that tests can fake. */
export class RateLimiter extends MemoryRateBudget {
  constructor(opts: RateLimiterOptions) {
    const { now, sleep, ...options } = opts;
    super(options, { ...(now ? { now } : {}), ...(sleep ? { sleep } : {}) });
  }

  /** Hold every call until `time` (epoch ms on this limiter's clock). */
  pauseUntil(time: number): void {
    void this.pauseFor(time - this.now());
  }
}
