/** The in-process call budget (the server's default, MemoryRateBudget) on a clock and a sleep that tests fake. */
import { MemoryRateBudget, type Clock } from '../../src/store/memory.js';
import type { BudgetOptions } from '../../src/store/types.js';

export type BudgetWithClock = BudgetOptions & Clock;

export function memoryBudget(opts: BudgetWithClock): MemoryRateBudget {
  const { now, sleep, ...options } = opts;
  return new MemoryRateBudget(options, { ...(now ? { now } : {}), ...(sleep ? { sleep } : {}) });
}
