/** The Redis shared state (src/store/redis.ts) when Redis misbehaves: scripts flushed, keys that must expire, a password that never shows, eviction, Redis down, slow or losing its state, clocks apart. */
import { randomUUID } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { isToolError, redactUrl } from '../../src/errors.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { connectRedisState } from '../../src/store/redis.js';
import type { SharedState } from '../../src/store/types.js';
import { describeWithRedis, freePort } from '../helpers/redis-server.js';

describeWithRedis('Redis shared state: scripts and expiry', (redis) => {
  const open: SharedState[] = [];
  const connect = async (overrides: Partial<Parameters<typeof connectRedisState>[0]> = {}) => {
    const state = await connectRedisState({ url: redis().url, namespace: randomUUID(), replicaId: 'test', logger: silentLogger, ...overrides });
    open.push(state);
    return state;
  };
  afterAll(async () => {
    await Promise.all(open.map((s) => s.close()));
  });

  it('works on after Redis forgets its scripts (SCRIPT FLUSH, as after a restart)', async () => {
    const a = await connect();
    const budget = a.budget({ perMinute: 10, perHour: 10, maxWaitMs: 0 });
    await budget.acquire();
    expect(await redis().command('SCRIPT FLUSH')).toMatch(/^\+OK/);
    await budget.acquire();
    await budget.pauseFor(1);
    expect(await a.devices.run('dev-flush', async () => 'ok')).toEqual({ joined: false, value: 'ok' });
  });

  it('every key it writes expires: nothing grows without bound', async () => {
    await redis().command('FLUSHALL');
    const a = await connect();
    const budget = a.budget({ perMinute: 10, perHour: 10, maxWaitMs: 0, perUserPerMinute: 5 });
    await budget.acquire({ user: 'u1' });
    await budget.pauseFor(50);
    await a.tokens.spend('n-1', Date.now() + 60_000);
    await a.devices.run('dev-ttl', async () => 'ok');
    await a.devices.run('dev-ttl-fail', async () => { throw new Error('x'); }).catch(() => undefined);
    // The two-person rule's approvals: the record and the set of pending ones.
    const now = Date.now();
    await a.approvals.create({
      id: 'ap-1',
      status: 'pending',
      action: 'unrestrict',
      tool: 'remove_app_restriction',
      machineId: 'm',
      comment: 'c',
      preview: { machineId: 'm', hostName: null, osPlatform: null, osVersion: null, deviceGroup: null, healthStatus: null, lastSeen: null, tags: [] },
      requestedBy: { kind: 'user', principal: 'user:t:ada', name: 'ada' },
      requestedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 60_000).toISOString(),
    });
    const keys = (await redis().command('KEYS *')).split('\r\n').filter((l) => l.startsWith('mde:'));
    expect(keys.length).toBeGreaterThanOrEqual(7);
    for (const key of keys) {
      const ttl = await redis().command(`PTTL ${key}`);
      expect(Number(ttl.replace(/^:/, '')), key).toBeGreaterThan(0);
    }
  });
});

it('a Redis password with a raw "@" never shows in messages', async () => {
  expect(redactUrl('redis://user:p@ss@127.0.0.1:6379/0')).toBe('redis://127.0.0.1:6379/0');
  expect(redactUrl('rediss://:s3cr@t@redis.example.com:6380')).toBe('rediss://redis.example.com:6380');
  const port = await freePort();
  const logs: string[] = [];
  const logger: Logger = { ...silentLogger, warning: (m) => logs.push(m), info: (m) => logs.push(m) };
  const state = await connectRedisState({ url: `redis://user:p@ss@127.0.0.1:${port}`, namespace: 'n', replicaId: 'r', logger, connectWaitMs: 300 });
  try {
    const error = await state.budget({ perMinute: 1, perHour: 1, maxWaitMs: 0 }).acquire().then(() => undefined, (e: unknown) => e);
    const text = [state.description, ...logs, (error as Error).message, JSON.stringify(error)].join('\n');
    expect(text).toMatch(/127\.0\.0\.1/);
    expect(text).not.toMatch(/p@ss|ss@|user:/);
  } finally {
    await state.close();
  }
});

describeWithRedis('Redis shared state, eviction', (redis) => {
  it('warns when Redis may evict keys (any maxmemory-policy but noeviction): spent tokens and locks would go', async () => {
    expect(await redis().command('CONFIG SET maxmemory-policy volatile-lru')).toMatch(/^\+OK/);
    const logs: string[] = [];
    const logger: Logger = { ...silentLogger, warning: (m) => logs.push(m) };
    const state = await connectRedisState({ url: redis().url, namespace: randomUUID(), replicaId: 'r', logger });
    try {
      for (let i = 0; i < 40 && logs.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(logs.join('\n')).toMatch(/maxmemory-policy volatile-lru.*Set maxmemory-policy to noeviction/);
    } finally {
      await state.close();
    }
    // With noeviction, nothing to say.
    expect(await redis().command('CONFIG SET maxmemory-policy noeviction')).toMatch(/^\+OK/);
    const quiet: string[] = [];
    const calm = await connectRedisState({ url: redis().url, namespace: randomUUID(), replicaId: 'r', logger: { ...silentLogger, warning: (m) => quiet.push(m) } });
    await new Promise((r) => setTimeout(r, 200));
    await calm.close();
    expect(quiet).toEqual([]);
  });
});
describeWithRedis('Redis down at start', (redis) => {
  it('a replica started while Redis is down refuses calls at once, then works when Redis comes up', async () => {
    const server = redis();
    await server.stop();
    const state = await connectRedisState({ url: server.url, namespace: randomUUID(), replicaId: 'r', logger: silentLogger, connectWaitMs: 200 });
    try {
      expect(state.ready()).toBe(false);
      const t0 = Date.now();
      const error = await state.tokens.spend('n', Date.now() + 1000).then(() => undefined, (e: unknown) => e);
      expect(isToolError(error, 'store_unavailable')).toBe(true);
      expect(Date.now() - t0).toBeLessThan(200);
      await server.restart();
      for (let i = 0; i < 100 && !state.ready(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(state.ready()).toBe(true);
      expect(await state.tokens.spend('n', Date.now() + 1000)).toBe(true);
      expect(await state.tokens.spend('n', Date.now() + 1000)).toBe(false);
    } finally {
      await state.close();
    }
  });
});

describeWithRedis('slow Redis', (redis) => {
  it('a Redis that does not answer fails the call within the command timeout, and the state recovers', async () => {
    const state = await connectRedisState({ url: redis().url, namespace: randomUUID(), replicaId: 'r', logger: silentLogger, commandTimeoutMs: 300 });
    try {
      const budget = state.budget({ perMinute: 100, perHour: 1000, maxWaitMs: 0 });
      await budget.acquire();
      const paused = redis().command('CLIENT PAUSE 1200 ALL');
      await new Promise((r) => setTimeout(r, 50));
      const t0 = Date.now();
      const error = await budget.acquire().then(() => undefined, (e: unknown) => e);
      expect(isToolError(error, 'store_unavailable'), String(error)).toBe(true);
      expect(Date.now() - t0).toBeLessThan(800);
      await paused;
      for (let i = 0; i < 40; i++) {
        if (await budget.acquire().then(() => true, () => false)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await budget.acquire();
    } finally {
      await state.close();
    }
  });
});

describeWithRedis('Redis loses its state while a device lock is held', (redis) => {
  it('the next holder is told to look for a pending action before sending', async () => {
    const namespace = randomUUID();
    const [a, b] = await Promise.all(['a', 'b'].map((r) => connectRedisState({ url: redis().url, namespace, replicaId: r, logger: silentLogger })));
    try {
      await a!.devices.run('dev-warm', async () => 'ok'); // the namespace has taken locks before
      const seen: boolean[] = [];
      await b!.devices.run('dev-warm', async ({ recovering }) => void seen.push(recovering));
      expect(seen).toEqual([false]);
      let release!: () => void;
      const inFlight = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const started = new Promise<void>((resolve) => (entered = resolve));
      const slow = a!.devices.run('dev-lost', async () => (entered(), await inFlight, 'first'));
      await started;
      expect(await redis().command('FLUSHALL')).toMatch(/^\+OK/); // a restart without persistence
      await b!.devices.run('dev-lost', async ({ recovering }) => void seen.push(recovering));
      expect(seen).toEqual([false, true]);
      release();
      await slow;
    } finally {
      await Promise.all([a!.close(), b!.close()]);
    }
  });
});
describeWithRedis('Redis token ledger, clocks apart', (redis) => {
  it('a replica whose clock is 10 minutes behind Redis\'s still spends a token once', async () => {
    const now = () => Date.now() - 10 * 60_000;
    const state = await connectRedisState({ url: redis().url, namespace: randomUUID(), replicaId: 'late', logger: silentLogger, now });
    try {
      const expiresAt = now() + 60_000; // valid for another minute on this replica's clock
      expect(await state.tokens.spend('nonce-late', expiresAt)).toBe(true);
      expect(await state.tokens.isSpent('nonce-late')).toBe(true);
      expect(await state.tokens.spend('nonce-late', expiresAt)).toBe(false);
    } finally {
      await state.close();
    }
  });
});
