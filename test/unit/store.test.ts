/**
 * The shared state: one contract, run against the in-memory store and against a real redis-server, then
 * what only Redis can show (several clients as replicas, Redis going away and coming back, a replica
 * dying with a device lock).
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isToolError, type ToolError } from '../../src/errors.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { createMemoryState } from '../../src/store/memory.js';
import { connectRedisState } from '../../src/store/redis.js';
import type { BudgetOptions, SharedState } from '../../src/store/types.js';
import { describeWithRedis, type RedisServer } from '../helpers/redis-server.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The largest number of times inside any window [t, t + width). */
function maxInWindow(times: number[], width: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= width) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

/** What both stores promise. `make` gives a fresh, empty state; `peers` several views of one state. */
function contract(make: () => Promise<SharedState[]>) {
  let states: SharedState[] = [];
  const fresh = async () => (states = await make());
  afterEach(async () => {
    await Promise.all(states.map((s) => s.close()));
  });
  const limits = (o: Partial<BudgetOptions> = {}): BudgetOptions => ({ perMinute: 3, perHour: 100, maxWaitMs: 0, ...o });

  it('grants the budget, then refuses at once with when it frees up, reserving nothing', async () => {
    const [a, b] = await fresh();
    const budgetA = a!.budget(limits());
    const budgetB = b!.budget(limits());
    await budgetA.acquire();
    await budgetB.acquire();
    await budgetA.acquire();
    const error = await errorOf(budgetB.acquire());
    expect(isToolError(error, 'rate_limited')).toBe(true);
    expect((error as ToolError).message).toMatch(/3 calls a minute, 100 an hour\); nothing was sent/);
    expect((error as ToolError).details.retryAfterSeconds).toBeGreaterThanOrEqual(59);
    expect((error as ToolError).details.retryAfterSeconds).toBeLessThanOrEqual(60);
    // The refusal reserved nothing: with a short minute the fourth call fits as soon as the first leaves.
  });

  it('waits within the bound for the earliest slot, in order', async () => {
    const [a, b] = await fresh();
    const opts = limits({ perMinute: 1, minuteMs: 300, hourMs: 10_000, maxWaitMs: 2_000 });
    const t0 = Date.now();
    const done: number[] = [];
    await Promise.all([a!.budget(opts), b!.budget(opts), a!.budget(opts)].map((budget) => budget.acquire().then(() => done.push(Date.now() - t0))));
    done.sort((x, y) => x - y);
    expect(done[0]).toBeLessThan(250);
    expect(done[1]).toBeGreaterThanOrEqual(295);
    expect(done[2]).toBeGreaterThanOrEqual(595);
  });

  it('the pause after an upstream 429 holds every caller', async () => {
    const [a, b] = await fresh();
    await a!.budget(limits()).pauseFor(300);
    const t0 = Date.now();
    await b!.budget(limits({ maxWaitMs: 1_000 })).acquire();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(295);
    // A pause longer than the bound refuses at once.
    await a!.budget(limits()).pauseFor(5_000);
    expect(isToolError(await errorOf(b!.budget(limits({ maxWaitMs: 1_000 })).acquire()), 'rate_limited')).toBe(true);
  });

  it('a user\'s fair share: one user cannot spend the whole budget, others still get theirs', async () => {
    const [a, b] = await fresh();
    const opts = limits({ perMinute: 10, perUserPerMinute: 2 });
    await a!.budget(opts).acquire({ user: 'alice' });
    await b!.budget(opts).acquire({ user: 'alice' });
    const error = await errorOf(a!.budget(opts).acquire({ user: 'alice' }));
    expect(isToolError(error, 'rate_limited')).toBe(true);
    expect((error as ToolError).message).toMatch(/Your share of the Defender API budget is spent \(2 calls a minute per user\)/);
    await a!.budget(opts).acquire({ user: 'bob' });
    await b!.budget(opts).acquire({ user: 'bob' });
    // Calls without a user (stdio) count only against the shared budget.
    await a!.budget(opts).acquire();
  });

  it('a waiting user does not hold other users behind them', async () => {
    const [a, b] = await fresh();
    const opts = limits({ perMinute: 10, perUserPerMinute: 1, minuteMs: 400, maxWaitMs: 1_000 });
    await a!.budget(opts).acquire({ user: 'alice' });
    const t0 = Date.now();
    const alice = a!.budget(opts).acquire({ user: 'alice' }).then(() => Date.now() - t0);
    const bob = await b!.budget(opts).acquire({ user: 'bob' }).then(() => Date.now() - t0);
    expect(bob).toBeLessThan(300); // queued behind alice it would wait 400 ms or more
    expect(await alice).toBeGreaterThanOrEqual(350);
  });

  it('a confirmation token is spent once, wherever it is redeemed', async () => {
    const [a, b] = await fresh();
    const id = `c-${randomUUID()}`;
    const expiresAt = Date.now() + 60_000;
    const results = await Promise.all([a!.tokens.spend(id, expiresAt), b!.tokens.spend(id, expiresAt), a!.tokens.spend(id, expiresAt)]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await b!.tokens.spend(`c-${randomUUID()}`, expiresAt)).toBe(true);
  });

  it('one write per device at a time: concurrent callers join the first one\'s result', async () => {
    const [a, b] = await fresh();
    let runs = 0;
    const write = async () => {
      runs++;
      await sleep(150);
      return { id: 'action-1' };
    };
    const results = await Promise.all([a!.devices.run('dev-1', write), b!.devices.run('dev-1', write), a!.devices.run('dev-1', write)]);
    expect(runs).toBe(1);
    expect(results.filter((r) => !r.joined)).toHaveLength(1);
    expect(results.map((r) => r.value)).toEqual([{ id: 'action-1' }, { id: 'action-1' }, { id: 'action-1' }]);
    // Another device is not held up; a later call for the same device runs again.
    expect(await b!.devices.run('dev-2', write)).toEqual({ joined: false, value: { id: 'action-1' } });
    expect((await a!.devices.run('dev-1', write)).joined).toBe(false);
    expect(runs).toBe(3);
  });

  it('when the holder fails, one waiter runs the write itself, and nobody gets a result that is not shareable', async () => {
    const [a, b] = await fresh();
    let runs = 0;
    const first = a!.devices.run('dev-3', async () => {
      runs++;
      await sleep(100);
      throw new Error('upstream failed');
    });
    await sleep(20);
    const waiters = [b!.devices.run('dev-3', async () => (runs++, { id: 'x' })), a!.devices.run('dev-3', async () => (runs++, { id: 'x' }))];
    await expect(first).rejects.toThrow('upstream failed');
    const results = await Promise.all(waiters);
    expect(runs).toBe(2);
    expect(results.filter((r) => r.joined)).toHaveLength(1);
    const unshared = await Promise.all([
      a!.devices.run('dev-4', async () => (await sleep(100), { id: undefined }), (v) => v.id !== undefined),
      (await sleep(20), b!.devices.run('dev-4', async () => ({ id: 'mine' }), (v) => v.id !== undefined)),
    ]);
    expect(unshared.map((r) => r.joined)).toEqual([false, false]);
  });

  it('keeps pending approvals with an expiry, taken once', async () => {
    const [a, b] = await fresh();
    await a!.approvals.put('ap-1', { machineId: 'm', by: 'alice' }, 60_000);
    expect(await b!.approvals.get('ap-1')).toEqual({ machineId: 'm', by: 'alice' });
    const taken = await Promise.all([a!.approvals.take('ap-1'), b!.approvals.take('ap-1')]);
    expect(taken.filter(Boolean)).toEqual([{ machineId: 'm', by: 'alice' }]);
    await a!.approvals.put('ap-2', { x: 1 }, 50);
    await sleep(80);
    expect(await b!.approvals.get('ap-2')).toBeUndefined();
  });
}

describe('in-memory shared state (one replica)', () => {
  // Two "replicas" of the memory store are the same object: it is shared only inside one process.
  contract(async () => {
    const state = createMemoryState();
    return [state, state];
  });
});

const NAMESPACES = new WeakMap<SharedState, string>();

/** Several replicas of one state: separate Redis connections in one namespace. */
async function replicas(redis: RedisServer, n: number, overrides: Partial<Parameters<typeof connectRedisState>[0]> = {}) {
  const namespace = randomUUID();
  const states = await Promise.all(
    Array.from({ length: n }, (_, i) => connectRedisState({ url: redis.url, namespace, replicaId: `test-${i}`, logger: silentLogger, ...overrides })),
  );
  for (const state of states) NAMESPACES.set(state, namespace);
  return states;
}

describeWithRedis('Redis shared state', (redis) => {
  describe('the same contract', () => {
    contract(() => replicas(redis(), 2));
  });

  const open: SharedState[] = [];
  const connect = async (n: number, overrides: Partial<Parameters<typeof connectRedisState>[0]> = {}) => {
    const states = await replicas(redis(), n, overrides);
    open.push(...states);
    return states;
  };
  afterAll(async () => {
    await Promise.all(open.map((s) => s.close()));
  });

  it('property: several replicas bursting together never reserve more than the budget in any rolling minute or hour, and waste none of it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 4 }),
        fc.integer({ min: 3, max: 5 }),
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 4, maxLength: 4 }),
        async (clientCount, perMinute, bursts) => {
          const clients = await connect(clientCount);
          // Short windows, so a run takes about a second; the script is the same for any length.
          const minuteMs = 100;
          const opts: BudgetOptions = { perMinute, perHour: perMinute * 4, maxWaitMs: 60_000, minuteMs, hourMs: 6 * minuteMs };
          const granted: number[] = [];
          await Promise.all(
            bursts.map((count, i) =>
              Promise.all(Array.from({ length: count }, () => clients[i % clientCount]!.budget(opts).acquire().then(() => granted.push(Date.now())))),
            ),
          );
          const total = bursts.reduce((x, y) => x + y, 0);
          expect(granted).toHaveLength(total);
          // The reservations as Redis holds them (its clock): the exact check.
          const raw = await redis().command(`ZRANGE mde:{${NAMESPACES.get(clients[0]!)}}:budget:slots 0 -1 WITHSCORES`);
          const slots = parseScores(raw);
          expect(slots).toHaveLength(total);
          expect(maxInWindow(slots, minuteMs)).toBeLessThanOrEqual(perMinute);
          expect(maxInWindow(slots, opts.hourMs!)).toBeLessThanOrEqual(opts.perHour);
          // No needless waiting: the last slot is where the fastest schedule allowed by the budget puts it.
          const sorted = [...slots].sort((x, y) => x - y);
          const ideal: number[] = [];
          for (let i = 0; i < total; i++) {
            ideal.push(Math.max(sorted[0]!, ideal[i - 1] ?? 0, i >= perMinute ? ideal[i - perMinute]! + minuteMs : 0, i >= opts.perHour ? ideal[i - opts.perHour]! + opts.hourMs! : 0));
          }
          // Calls arrive over a few milliseconds, so the schedule may start a little later than the first slot.
          expect(sorted.at(-1)! - ideal.at(-1)!).toBeLessThan(50);
          expect(sorted.at(-1)! - ideal.at(-1)!).toBeGreaterThanOrEqual(0);
          await Promise.all(clients.map((c) => c.close()));
        },
      ),
      { numRuns: 5 },
    );
  }, 60_000);

  it('when Redis goes away, calls fail at once with store_unavailable; when it is back, they work again', async () => {
    const server = redis();
    const logs: string[] = [];
    const logger: Logger = { ...silentLogger, warning: (m) => logs.push(m), info: (m) => logs.push(m) };
    const [a] = await connect(1, { logger });
    const budget = a!.budget({ perMinute: 100, perHour: 1000, maxWaitMs: 0 });
    await budget.acquire();
    expect(a!.ready()).toBe(true);
    await server.stop({ crash: true });
    try {
      const t0 = Date.now();
      for (const attempt of [budget.acquire(), a!.tokens.spend('c-1', Date.now() + 1000), a!.devices.run('dev', async () => 1), a!.approvals.get('x')]) {
        const error = await errorOf(attempt);
        expect(isToolError(error, 'store_unavailable')).toBe(true);
        expect((error as ToolError).nextStep).toMatch(/MDE_REDIS_URL/);
      }
      expect(Date.now() - t0).toBeLessThan(500);
      expect(a!.ready()).toBe(false);
      expect(logs.join('\n')).toMatch(/unavailable/);
    } finally {
      await server.restart();
    }
    for (let i = 0; i < 100 && !a!.ready(); i++) await sleep(50);
    expect(a!.ready()).toBe(true);
    await budget.acquire();
    expect(logs.join('\n')).toMatch(/reachable again/);
    // The password never shows: messages name the URL without it.
  });

  it('a replica that dies holding a device lock: the lock lapses and the next holder is told to look first', async () => {
    const [dying, next] = await connect(2, { lockTtlMs: 300 });
    let entered!: () => void;
    const started = new Promise<void>((resolve) => (entered = resolve));
    void dying!.devices.run('dev-9', () => (entered(), new Promise<never>(() => undefined))).catch(() => undefined);
    await started;
    await dying!.close(); // no release, no renewal: as if the process were killed
    const t0 = Date.now();
    const seen: boolean[] = [];
    const result = await next!.devices.run('dev-9', async ({ recovering }) => (seen.push(recovering), 'sent'));
    expect(result).toEqual({ joined: false, value: 'sent' });
    expect(seen).toEqual([true]);
    expect(Date.now() - t0).toBeLessThan(1_500);
    // Finished cleanly: the one after that is not told to look.
    await next!.devices.run('dev-9', async ({ recovering }) => void seen.push(recovering));
    expect(seen).toEqual([true, false]);
  });

  it('a held lock is renewed while the write runs longer than its expiry', async () => {
    const [a, b] = await connect(2, { lockTtlMs: 150 });
    let runs = 0;
    const slow = async () => (runs++, await sleep(500), 'slow');
    const [first, second] = await Promise.all([a!.devices.run('dev-10', slow), (await sleep(30), b!.devices.run('dev-10', slow))]);
    expect(runs).toBe(1);
    expect(first).toEqual({ joined: false, value: 'slow' });
    expect(second).toEqual({ joined: true, value: 'slow' });
  });

  it('keeps no secret in Redis: keys and values hold ids, times and shared results only', async () => {
    const [a] = await connect(1);
    await a!.tokens.spend('nonce-of-a-token', Date.now() + 60_000);
    expect(await a!.tokens.isSpent('nonce-of-a-token')).toBe(true);
    await a!.budget({ perMinute: 10, perHour: 10, maxWaitMs: 0, perUserPerMinute: 5 }).acquire({ user: 'alice@example.com' });
    const keys = await redis().command('KEYS *');
    expect(keys).toMatch(/:token:/);
    expect(keys).toMatch(/:budget:user:/);
    expect(keys).not.toMatch(/nonce-of-a-token|alice/);
  });
});


/** Parse a RESP array reply of ZRANGE … WITHSCORES into the scores. */
function parseScores(raw: string): number[] {
  const lines = raw.split('\r\n').filter((l) => l !== '' && !l.startsWith('*') && !l.startsWith('$'));
  const scores: number[] = [];
  for (let i = 1; i < lines.length; i += 2) scores.push(Number(lines[i]));
  return scores;
}
