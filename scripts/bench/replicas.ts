// Scale-out benchmarks against a real redis-server (started by scripts/bench.mjs): the cost the shared
// store adds to each Defender call, and three replicas (each its own Redis connection, budget and
// DefenderClient, as three processes would have) draining a burst against the simulator, which answers
// 429 past 100 calls in any rolling minute. Bundled and run by scripts/bench.mjs.
import { simulatorTokenProvider } from '../../src/auth/msal.js';
import { DefenderClient } from '../../src/defender/client.js';
import { silentLogger } from '../../src/log.js';
import { DefenderSimulator } from '../../src/simulator/simulator.js';
import { createMemoryState } from '../../src/store/memory.js';
import { SHARED_BUDGET_GUARD_MS } from '../../src/store/open.js';
import { connectRedisState } from '../../src/store/redis.js';
import type { SharedState } from '../../src/store/types.js';

const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

/**
 * What the store adds to one write: a budget slot, the device lock (take and release) and, for a token,
 * the ledger (check and spend). Memory and Redis measured in the same run, interleaved.
 */
export async function storeCost(redisUrl: string, rounds: number) {
  const memory = createMemoryState();
  const redis = await connectRedisState({ url: redisUrl, namespace: `bench-${process.pid}`, replicaId: 'bench', logger: silentLogger });
  // A generous bound: the wall clock may step back a little (NTP), which must not fail a round.
  const limits = { perMinute: 1_000_000, perHour: 100_000_000, maxWaitMs: 10_000 };
  const one = async (state: SharedState, budget: ReturnType<SharedState['budget']>, i: number) => {
    const t0 = process.hrtime.bigint();
    await budget.acquire();
    await state.devices.run(`device-${i}`, async () => ({ id: 'x' }));
    await state.tokens.isSpent(`nonce-${i}`);
    await state.tokens.spend(`nonce-${i}`, Date.now() + 300_000);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const mb = memory.budget(limits);
  const rb = redis.budget(limits);
  for (let i = 0; i < 200; i++) await one(redis, rb, -i - 1); // warm-up (script cache, JIT)
  const times = { memory: [] as number[], redis: [] as number[], budgetOnly: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    times.memory.push(await one(memory, mb, i));
    times.redis.push(await one(redis, rb, i));
    const t0 = process.hrtime.bigint();
    await rb.acquire();
    times.budgetOnly.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await redis.close();
  return {
    rounds,
    memoryMedian: median(times.memory),
    redisMedian: median(times.redis),
    redisP99: quantile(times.redis, 0.99),
    budgetOnlyMedian: median(times.budgetOnly),
  };
}

/**
 * Three replicas share Defender's real budget (100 a minute, 1,500 an hour, the 250 ms guard the server
 * uses with Redis) and drain `calls` reads fired at once, in real time (300 calls take two minutes).
 */
export async function drain(redisUrl: string, calls: number, onProgress: (text: string) => void) {
  const sim = new DefenderSimulator({ rateLimitPerMinute: 100 });
  const baseUrl = await sim.listen();
  let upstream429 = 0;
  const arrivals: number[] = [];
  const countingFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (res.status === 429) upstream429++;
    else arrivals.push(Date.now());
    return res;
  };
  const namespace = `bench-drain-${process.pid}`;
  const replicas = await Promise.all(
    [0, 1, 2].map(async (i) => {
      const state = await connectRedisState({ url: redisUrl, namespace, replicaId: `bench-${i}`, logger: silentLogger });
      const limiter = state.budget({ perMinute: 100, perHour: 1500, maxWaitMs: 10 * 60_000, guardMs: SHARED_BUDGET_GUARD_MS });
      const api = new DefenderClient({ baseUrl, tokens: simulatorTokenProvider(sim.token), timeoutMs: 10_000, logger: silentLogger, limiter, fetch: countingFetch });
      return { state, api };
    }),
  );
  const start = Date.now();
  const timer = setInterval(() => onProgress(`  drain: ${arrivals.length}/${calls} calls answered after ${Math.round((Date.now() - start) / 1000)} s`), 15_000);
  await Promise.all(Array.from({ length: calls }, (_, i) => replicas[i % 3]!.api.getMachine(DEVICE)));
  clearInterval(timer);
  const elapsed = Date.now() - start;
  await Promise.all(replicas.map((r) => r.state.close()));
  await sim.close();
  // Budget used: the calls made, against what the budget allowed in the time they took (the last window
  // counted whole: its calls all went out at its start).
  const windows = Math.floor(elapsed / 60_000) + 1;
  const sorted = [...arrivals].sort((a, b) => a - b);
  let maxInMinute = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= 60_000) j++;
    maxInMinute = Math.max(maxInMinute, i - j + 1);
  }
  const ideal = (Math.ceil(calls / 100) - 1) * 60_000;
  return { calls, upstream429, elapsedMs: elapsed, idealMs: ideal, budgetUsed: ideal / elapsed, windows, maxInMinute };
}
