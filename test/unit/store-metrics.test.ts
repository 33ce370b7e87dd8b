/**
 * Store errors as an operator sees them: a real redis-server goes away, and mde_store_errors_total counts
 * the outage once and each command that failed; the calls fail with store_unavailable. NOSCRIPT (Redis
 * asking for a script's source, on first use) is not a failure.
 */
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { isToolError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { createPrometheusMetrics } from '../../src/metrics/prometheus.js';
import { connectRedisState } from '../../src/store/redis.js';
import { describeWithRedis } from '../helpers/redis-server.js';
import { family, parseExposition } from '../helpers/scrape.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describeWithRedis('store errors in metrics', (redis) => {
  it('counts an outage once and every command refused while Redis is away; reads the shared budget while it works', async () => {
    const metrics = createPrometheusMetrics({ processMetrics: false });
    const NAMESPACE = randomUUID();
    const state = await connectRedisState({ url: redis().url, namespace: NAMESPACE, replicaId: 'metrics-test', logger: silentLogger, metrics });
    try {
      const budget = state.budget({ perMinute: 100, perHour: 1000, maxWaitMs: 0 });
      await budget.acquire(); // first use of the script: NOSCRIPT, then EVAL
      await state.approvals.get('x');
      expect(family(parseExposition(await metrics.scrape()), 'mde_store_errors_total')).toEqual({});
      // The shared budget's use, read from Redis at scrape time (what every replica has taken).
      const other = await connectRedisState({ url: redis().url, namespace: NAMESPACE, replicaId: 'other-replica', logger: silentLogger });
      await other.budget({ perMinute: 100, perHour: 1000, maxWaitMs: 0 }).acquire();
      await other.close();
      metrics.watchBudget(() => budget.usage!(), { perMinute: 100, perHour: 1000 });
      expect(family(parseExposition(await metrics.scrape()), 'mde_budget_used')).toEqual({ 'window=minute': 2, 'window=hour': 2 });

      await redis().stop({ crash: true });
      try {
        for (let i = 0; i < 100 && state.ready(); i++) await sleep(20);
        for (const attempt of [budget.acquire(), budget.acquire(), state.approvals.get('x')]) {
          expect(isToolError(await attempt.then(() => undefined, (e: unknown) => e), 'store_unavailable')).toBe(true);
        }
        const samples = parseExposition(await metrics.scrape());
        const errors = family(samples, 'mde_store_errors_total');
        expect(errors['operation=connect']).toBe(1);
        // Two acquires, and the scrape's own budget read: each refused at once.
        expect(errors['operation=evalsha']).toBe(3);
        expect(Object.values(errors).reduce((a, b) => a + b, 0)).toBe(5); // + the approval read's command
        // The scrape still answers; the budget it cannot read has no value rather than a stale one.
        expect(family(samples, 'mde_budget_used')).toEqual({});
      } finally {
        await redis().restart();
      }
    } finally {
      await state.close();
    }
  });
});
