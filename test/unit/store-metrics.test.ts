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
  it('counts an outage once and every command refused while Redis is away; nothing while it works', async () => {
    const metrics = createPrometheusMetrics({ processMetrics: false });
    const state = await connectRedisState({ url: redis().url, namespace: randomUUID(), replicaId: 'metrics-test', logger: silentLogger, metrics });
    try {
      const budget = state.budget({ perMinute: 100, perHour: 1000, maxWaitMs: 0 });
      await budget.acquire(); // first use of the script: NOSCRIPT, then EVAL
      await state.approvals.get('x');
      expect(family(parseExposition(await metrics.scrape()), 'mde_store_errors_total')).toEqual({});

      await redis().stop({ crash: true });
      try {
        for (let i = 0; i < 100 && state.ready(); i++) await sleep(20);
        for (const attempt of [budget.acquire(), budget.acquire(), state.approvals.get('x')]) {
          expect(isToolError(await attempt.then(() => undefined, (e: unknown) => e), 'store_unavailable')).toBe(true);
        }
        const errors = family(parseExposition(await metrics.scrape()), 'mde_store_errors_total');
        expect(errors['operation=connect']).toBe(1);
        expect(errors['operation=evalsha']).toBe(2);
        expect(Object.values(errors).reduce((a, b) => a + b, 0)).toBe(4); // + the approval read's command
      } finally {
        await redis().restart();
      }
    } finally {
      await state.close();
    }
  });
});
