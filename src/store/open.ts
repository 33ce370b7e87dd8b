/**
 * The shared state a server entry (stdio cli.ts, or an HTTP entry) builds once: Redis when MDE_REDIS_URL
 * is set (the client is loaded only then), else this process's memory. Its `ready()` is what a readiness
 * probe answers from.
 */
import { createHash } from 'node:crypto';
import { REPLICA } from '../audit.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { createMemoryState } from './memory.js';
import type { BudgetOptions, RateBudget, SharedState } from './types.js';

/**
 * Replicas reach Defender by different network paths: with Redis, slots a full window apart are spaced
 * 250 ms more, so a burst a minute after another never lands inside Defender's window (99.6 % of the
 * budget stays usable; BENCHMARKS.md measures it).
 */
export const SHARED_BUDGET_GUARD_MS = 250;

export async function openSharedState(config: Config, logger: Logger, metrics?: Metrics): Promise<SharedState> {
  if (!config.redisUrl) return createMemoryState();
  const { connectRedisState } = await import('./redis.js');
  return connectRedisState({
    url: config.redisUrl,
    // The Defender budget is the app registration's: replicas of one registration share keys, others not.
    namespace: createHash('sha256').update(`${config.tenantId}/${config.clientId}`).digest('base64url').slice(0, 16),
    replicaId: `${REPLICA.host}:${REPLICA.pid}`,
    logger,
    ...(metrics ? { metrics } : {}),
  });
}

/** The budget every Defender client of this server takes its slots from. */
export function callBudget(state: SharedState, config: Config, onWait?: BudgetOptions['onWait']): RateBudget {
  return state.budget({
    ...config.rateLimit,
    guardMs: state.kind === 'redis' ? SHARED_BUDGET_GUARD_MS : 0,
    ...(onWait ? { onWait } : {}),
  });
}
