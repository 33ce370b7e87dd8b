// Rate budget efficiency on a fake clock: the real DefenderClient and MemoryRateBudget against the simulator
// (which answers 429 past 100 calls in any rolling minute). Bundled and run by scripts/bench.mjs.
import { simulatorTokenProvider } from '../../src/auth/msal.js';
import { DefenderClient } from '../../src/defender/client.js';
import { MemoryRateBudget } from '../../src/store/memory.js';
import { silentLogger } from '../../src/log.js';
import { DefenderSimulator } from '../../src/simulator/simulator.js';

export async function rateBudget(calls: number) {
  const clock = { now: Date.UTC(2026, 0, 1) };
  const start = clock.now;
  const sleep = async (ms: number) => {
    clock.now += ms;
  };
  const sim = new DefenderSimulator({ now: () => clock.now, rateLimitPerMinute: 100 });
  const baseUrl = await sim.listen();
  let upstream429 = 0;
  const countingFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (res.status === 429) upstream429++;
    return res;
  };
  const limiter = new MemoryRateBudget({ perMinute: 100, perHour: 1500, maxWaitMs: Number.MAX_SAFE_INTEGER }, { now: () => clock.now, sleep });
  const api = new DefenderClient({ baseUrl, tokens: simulatorTokenProvider(sim.token), timeoutMs: 5000, logger: silentLogger, limiter, fetch: countingFetch, sleep, now: () => clock.now });
  const grantedAt: number[] = [];
  for (let i = 0; i < calls; i++) {
    await api.getMachine('1e5bc9d7e413ddd7902c2932e418702b84d0cc07');
    grantedAt.push(clock.now - start);
  }
  await sim.close();
  // The fastest schedule the budget allows: 100 per minute, and no call sooner than an hour after the
  // call 1,500 places earlier.
  const ideal: number[] = [];
  for (let i = 0; i < calls; i++) ideal.push(Math.max(Math.floor(i / 100) * 60_000, i >= 1500 ? ideal[i - 1500]! + 3_600_000 : 0));
  const firstHour = grantedAt.filter((t) => t < 60 * 60_000).length;
  return {
    calls,
    upstream429,
    lastCallMinutes: grantedAt.at(-1)! / 60_000,
    idealLastCallMinutes: ideal.at(-1)! / 60_000,
    callsInFirst15Minutes: grantedAt.filter((t) => t < 15 * 60_000).length,
    callsInFirstHour: firstHour,
  };
}
