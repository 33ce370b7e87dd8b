/** The call budget's waits, in memory and in Redis (src/store/): a cancelled wait gives its slot back, and a 429 pause holds calls already waiting. */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isToolError, type ToolError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { createMemoryState } from '../../src/store/memory.js';
import { connectRedisState } from '../../src/store/redis.js';
import type { SharedState } from '../../src/store/types.js';
import { describeWithRedis } from '../helpers/redis-server.js';

/** A call cancelled while it waits for its slot sends nothing and gives the slot back to the next call. */
function cancelledWaitGivesSlotBack(make: () => Promise<SharedState>) {
  it('a call cancelled while it waits for its slot fails at once and gives the slot back', async () => {
    const state = await make();
    try {
      const opts = { perMinute: 1, perHour: 100, maxWaitMs: 5_000, minuteMs: 400, hourMs: 10_000, perUserPerMinute: 5 };
      const budget = state.budget(opts);
      const t0 = Date.now();
      await budget.acquire({ user: 'u' });
      const controller = new AbortController();
      const waiting = budget.acquire({ user: 'u', signal: controller.signal }).then(() => 'granted', (e: unknown) => e);
      await new Promise((r) => setTimeout(r, 50));
      controller.abort();
      const error = await waiting;
      expect(isToolError(error, 'not_confirmed'), String(error)).toBe(true);
      expect((error as ToolError).message).toMatch(/cancelled.*Nothing was sent/);
      expect(Date.now() - t0).toBeLessThan(300);
      // The slot it held (about 400 ms after the first) goes to the next call, not one a window later.
      await budget.acquire({ user: 'u' });
      expect(Date.now() - t0).toBeLessThan(700);
      // Already cancelled: nothing reserved at all.
      const gone = new AbortController();
      gone.abort();
      expect(isToolError(await budget.acquire({ signal: gone.signal }).then(() => undefined, (e: unknown) => e), 'not_confirmed')).toBe(true);
    } finally {
      await state.close();
    }
  });
}

describe('in-memory budget, cancelled waits', () => {
  cancelledWaitGivesSlotBack(async () => createMemoryState());
});

describeWithRedis('Redis budget, cancelled waits', (redis) => {
  cancelledWaitGivesSlotBack(() => connectRedisState({ url: redis().url, namespace: randomUUID(), replicaId: 'r', logger: silentLogger }));
});
/** The pause after an upstream 429 holds calls already waiting for their slot, not only new ones. */
function pauseHoldsWaiters(make: () => Promise<SharedState[]>) {
  it('a 429 pause that begins while a call waits for its slot holds that call too', async () => {
    const [a, b] = await make();
    try {
      const opts = { perMinute: 1, perHour: 100, maxWaitMs: 5_000, minuteMs: 300, hourMs: 10_000 };
      const t0 = Date.now();
      await a!.budget(opts).acquire();
      const waiting = b!.budget(opts).acquire().then(() => Date.now() - t0);
      await new Promise((r) => setTimeout(r, 100));
      await a!.budget(opts).pauseFor(600); // until about 700 ms
      expect(await waiting).toBeGreaterThanOrEqual(680);
    } finally {
      await Promise.all([...new Set([a!, b!])].map((s) => s.close()));
    }
  });
}

describe('in-memory budget, 429 pause', () => {
  pauseHoldsWaiters(async () => {
    const s = createMemoryState();
    return [s, s];
  });
});

describeWithRedis('Redis budget, 429 pause', (redis) => {
  pauseHoldsWaiters(async () => {
    const namespace = randomUUID();
    return Promise.all(['a', 'b'].map((r) => connectRedisState({ url: redis().url, namespace, replicaId: r, logger: silentLogger })));
  });
});
