/**
 * The state replicas share, in Redis (MDE_REDIS_URL). Loaded only when configured: the `redis` client is
 * a lazy chunk that a single-replica server never pays for (@redis/client: node-redis 6 without the
 * RedisJSON/Search/Bloom/TimeSeries modules that the `redis` meta-package adds).
 *
 * Failure rule: every operation either gets Redis's answer or throws a store_unavailable ToolError at once (no
 * offline queue, a command timeout), and callers send nothing to Defender without that answer. The client
 * reconnects by itself; calls work again as soon as Redis is back.
 */
import { createHash, randomUUID } from 'node:crypto';
import { redactUrl } from '../errors.js';
import { isToolError, ToolError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { createRedisApprovalStore } from '../approval/redis-store.js';
import { budgetSpent, cancelledWait, waitUnlessAborted } from './budget.js';
import { BUDGET, LOCK_ACQUIRE, LOCK_RELEASE, LOCK_RENEW, PAUSE, RECHECK_PAUSE, USAGE, type Script } from './redis-scripts.js';
import {
  HOUR_MS,
  MINUTE_MS,
  type AcquireOptions,
  type BudgetOptions,
  type RateBudget,
  type SharedState,
  type SingleFlight,
  type SingleFlightContext,
  type SingleFlightResult,
  type TokenLedger,
} from './types.js';

export interface RedisStateOptions {
  /** redis://, rediss:// (TLS) or unix:///path/to/redis.sock; user and password may be in the URL. */
  url: string;
  /**
   * Namespace of every key. Replicas of one app registration must share it; different registrations on
   * one Redis must not (each has its own Defender budget).
   */
  namespace: string;
  /** Names this replica in lock owners (host name and process id). */
  replicaId: string;
  logger: Logger;
  /** A command that gets no answer within this fails the call (default 2 s). */
  commandTimeoutMs?: number;
  /** How long start-up waits for a first connection before going on without (default 3 s). */
  connectWaitMs?: number;
  /** Device locks: expiry, renewed while held (default 10 s). */
  lockTtlMs?: number;
  /** How long a caller waits for another replica's write to the same device (default 120 s). */
  lockWaitMs?: number;
  /** This replica's clock (tests: a replica whose clock differs from Redis's). */
  now?: () => number;
  /** Extra options for the node-redis client (tests: TLS material). */
  clientOptions?: Record<string, unknown>;
  /** Counts outages and failed commands (`mde_store_errors_total`). */
  metrics?: Metrics;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The parts of the node-redis client this module uses (typed here so the library stays a lazy import). */
interface Client {
  isReady: boolean;
  isOpen: boolean;
  connect(): Promise<unknown>;
  close(): Promise<void>;
  destroy(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  sendCommand(args: string[], options?: { timeout?: number }): Promise<unknown>;
}

export async function connectRedisState(opts: RedisStateOptions): Promise<SharedState> {
  // A CommonJS package: bundled, its exports may sit on the namespace or on its default export.
  const loaded = (await import('@redis/client')) as unknown as { createClient?: unknown; default?: { createClient?: unknown } };
  const createClient = (loaded.createClient ?? loaded.default?.createClient) as (options: Record<string, unknown>) => unknown;
  const where = redactUrl(opts.url);
  const timeoutMs = opts.commandTimeoutMs ?? 2_000;
  const client = createClient({
    url: opts.url,
    // A command while disconnected fails at once instead of waiting in a queue for a reconnect.
    disableOfflineQueue: true,
    socket: { connectTimeout: timeoutMs, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000) },
    ...opts.clientOptions,
  }) as unknown as Client;

  // node-redis emits 'error' on every failed (re)connection attempt: log the first of each outage only.
  let down = false;
  client.on('error', (error) => {
    if (down) return;
    down = true;
    opts.metrics?.storeError('connect');
    opts.logger.warning(
      `Redis at ${where} is unavailable (${(error as Error).message}); calls that need the shared state fail with store_unavailable until it is back. Reconnecting.`,
    );
  });
  client.on('ready', () => {
    if (down) opts.logger.info(`Redis at ${where} is reachable again.`);
    down = false;
    void checkEviction();
  });

  // Every key here has an expiry, so any policy but noeviction (Azure Cache for Redis defaults to
  // volatile-lru) may drop spent-token markers and device locks under memory pressure: a replayed token,
  // a second POST. Warn once; a managed Redis that refuses INFO is not an error.
  let evictionWarned = false;
  async function checkEviction(): Promise<void> {
    if (evictionWarned) return;
    try {
      const info = String(await client.sendCommand(['INFO', 'memory'], { timeout: timeoutMs }));
      const policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
      if (!policy || policy === 'noeviction') return;
      evictionWarned = true;
      opts.logger.warning(
        `Redis at ${where} runs with maxmemory-policy ${policy}: under memory pressure it may evict spent confirmation tokens and device locks (a token redeemed twice, two POSTs for one device). Set maxmemory-policy to noeviction.`,
      );
    } catch {
      // INFO disabled or Redis gone again: nothing to learn.
    }
  }

  const connecting = client.connect().catch(() => undefined);
  await Promise.race([connecting, sleep(opts.connectWaitMs ?? 3_000)]);
  if (!client.isReady) {
    opts.logger.warning(`Redis at ${where} is not reachable yet; the server starts anyway and uses it once it is.`);
  }

  const unavailable = (reason: string) =>
    new ToolError(
      'store_unavailable',
      `The shared state store (Redis at ${where}) could not be used (${reason}), so nothing was sent to Defender: without the shared budget and device lock no replica sends anything.`,
      'Check that Redis is running and reachable at MDE_REDIS_URL (host, port or socket path, TLS, user and password), then call again: the server reconnects by itself.',
    );

  /** One command, with the failure rule applied. */
  async function command(args: string[]): Promise<unknown> {
    const op = (args[0] ?? 'command').toLowerCase();
    if (!client.isReady) {
      opts.metrics?.storeError(op);
      throw unavailable('not connected');
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        client.sendCommand(args, { timeout: timeoutMs }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (error) {
      // NOSCRIPT is Redis asking for the script's source (run() sends it): not a failure of the store.
      if (!(error as Error).message.includes('NOSCRIPT')) opts.metrics?.storeError(op);
      throw unavailable((error as Error).message.slice(0, 200));
    } finally {
      clearTimeout(timer);
    }
  }

  /** EVALSHA, falling back to EVAL when Redis has not seen the script (first use, or after a restart). */
  async function run(s: Script, keys: string[], args: (string | number)[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args.map(String)];
    try {
      return await command(['EVALSHA', s.sha1, ...tail]);
    } catch (error) {
      if (!isToolError(error, 'store_unavailable') || !error.message.includes('NOSCRIPT')) throw error;
      return command(['EVAL', s.source, ...tail]);
    }
  }

  // A hash tag keeps all keys of one namespace in one slot, as multi-key scripts need on a cluster.
  const prefix = `mde:{${opts.namespace}}:`;
  const hashed = (text: string) => createHash('sha256').update(text).digest('base64url').slice(0, 22);

  let members = 0;
  const budget = (options: BudgetOptions): RateBudget => {
    // The guard lengthens both windows, as in planSlot (src/store/budget.ts).
    const minute = (options.minuteMs ?? MINUTE_MS) + (options.guardMs ?? 0);
    const hour = (options.hourMs ?? HOUR_MS) + (options.guardMs ?? 0);
    return {
      async acquire(acquire: AcquireOptions = {}) {
        const start = Date.now();
        const user = acquire.user !== undefined && options.perUserPerMinute ? acquire.user : undefined;
        const keys = [`${prefix}budget:slots`, `${prefix}budget:pause`, `${prefix}budget:user:${hashed(user ?? '')}`];
        if (acquire.signal?.aborted) throw cancelledWait();
        for (;;) {
          const remaining = options.maxWaitMs - (Date.now() - start);
          const member = `${opts.replicaId}:${++members}:${randomUUID()}`;
          const reply = (await run(
            BUDGET,
            keys,
            [options.perMinute, options.perHour, Math.max(0, remaining), member, user ? options.perUserPerMinute! : 0, minute, hour],
          )) as number[];
          const [status, waitMs] = [Number(reply[0]), Number(reply[1])];
          if (status === 0) throw budgetSpent(options, waitMs, Date.now(), 'shared');
          if (status === 2 && waitMs > remaining) throw budgetSpent(options, waitMs, Date.now(), 'user');
          if (waitMs > 0) {
            options.onWait?.(waitMs);
            if (await waitUnlessAborted(sleep(waitMs), acquire.signal)) {
              // Give the slot back to every replica (a subset of the schedule keeps the limits); if Redis
              // cannot be reached it lapses as a spent slot, which wastes budget but never exceeds it.
              if (status === 1) {
                await command(['ZREM', keys[0]!, member]).catch(() => undefined);
                if (user) await command(['ZREM', keys[2]!, member]).catch(() => undefined);
              }
              throw cancelledWait();
            }
            // A 429 on any replica while this call waited holds it too: reserve again after the pause.
            if (status === 1 && Number(await run(RECHECK_PAUSE, keys, [member])) === 1) continue;
          }
          if (status === 1) return;
        }
      },
      async pauseFor(ms: number) {
        await run(PAUSE, [`${prefix}budget:pause`], [Math.max(0, Math.ceil(ms))]);
      },
      async usage() {
        const reply = (await run(USAGE, [`${prefix}budget:slots`], [minute, hour])) as number[];
        return { minute: Number(reply[0]), hour: Number(reply[1]) };
      },
    };
  };

  // Kept past the token's own expiry, so a replica whose clock lags this one's cannot see it lapse early.
  // The expiry is relative (PX, the token's remaining life on this replica's clock, which just accepted
  // it): an absolute PXAT from a clock behind Redis's would lie in Redis's past, and the marker would
  // vanish at once, leaving the token redeemable again and again.
  const LEDGER_MARGIN_MS = 120_000;
  const localNow = opts.now ?? Date.now;
  // Keyed by a hash of the nonce: nothing in Redis helps rebuild or recognise a token.
  const tokens: TokenLedger = {
    async isSpent(nonce) {
      return Number(await command(['EXISTS', `${prefix}token:${hashed(nonce)}`])) === 1;
    },
    async spend(nonce, expiresAtMs) {
      const ttl = Math.max(0, Math.ceil(expiresAtMs - localNow())) + LEDGER_MARGIN_MS;
      const reply = await command(['SET', `${prefix}token:${hashed(nonce)}`, '1', 'NX', 'PX', String(ttl)]);
      return reply === 'OK';
    },
  };

  const lockTtl = opts.lockTtlMs ?? 10_000;
  const lockWait = opts.lockWaitMs ?? 120_000;
  const devices: SingleFlight = {
    async run<T>(key: string, fn: (ctx: SingleFlightContext) => Promise<T>, shareable: (value: T) => boolean = () => true): Promise<SingleFlightResult<T>> {
      const keys = [`${prefix}lock:${key}`, `${prefix}dirty:${key}`, `${prefix}result:${key}`, `${prefix}locks-known`];
      const owner = `${opts.replicaId}:${randomUUID()}`;
      const deadline = Date.now() + lockWait;
      let waitingSince = '';
      let pollMs = 20;
      let reply: unknown[];
      for (;;) {
        reply = (await run(LOCK_ACQUIRE, keys, [owner, lockTtl, HOUR_MS, waitingSince])) as unknown[];
        if (reply[0] === 2) return { joined: true, value: JSON.parse(String(reply[1])) as T };
        if (reply[0] === 1) break;
        // Held: wait, and take the result of any write that finishes from now on (Redis's clock).
        if (waitingSince === '') waitingSince = String(reply[1]);
        if (Date.now() > deadline) {
          throw new ToolError(
            'store_unavailable',
            `Another call for this device has held its lock for over ${Math.round(lockWait / 1000)} s, so nothing was sent.`,
            'List the device\'s machine actions to see whether an action is pending, then call again if none is.',
          );
        }
        await sleep(pollMs);
        pollMs = Math.min(pollMs * 1.5, 250);
      }
      // Renewed while held; if this process dies the lock lapses within one TTL.
      const renew = setInterval(() => {
        run(LOCK_RENEW, [keys[0]!], [owner, lockTtl]).catch(() => undefined);
      }, Math.max(50, Math.floor(lockTtl / 3)));
      renew.unref();
      let value: T;
      try {
        value = await fn({ recovering: reply[1] != null });
      } catch (error) {
        clearInterval(renew);
        // Not clean: the write may have reached Defender, so the next holder looks before sending.
        await run(LOCK_RELEASE, keys, [owner, '', 0, '0']).catch(() => undefined);
        throw error;
      }
      clearInterval(renew);
      const shared = shareable(value) ? JSON.stringify(value) : '';
      await run(LOCK_RELEASE, keys, [owner, shared, 60_000, '1']).catch((error: unknown) =>
        opts.logger.warning(`Device lock release failed (${(error as Error).message.slice(0, 200)}); it lapses by itself within ${Math.ceil(lockTtl / 1000)} s.`),
      );
      return { joined: false, value };
    },
  };

  // The two-person rule's approvals: decided once by a Lua script, kept a week after they expire.
  const approvals = createRedisApprovalStore({ command, run, prefix });

  return {
    kind: 'redis',
    description: `Redis at ${where}`,
    budget,
    tokens,
    devices,
    approvals,
    ready: () => client.isReady,
    async close() {
      if (client.isOpen) await client.close().catch(() => client.destroy());
      else client.destroy();
    },
  };
}
