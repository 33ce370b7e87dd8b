/**
 * SessionManager of remote mode, driven by an injected clock (`now`) and vitest's fake interval timer:
 * owner binding, the per-owner cap, the idle sweep and its boundary, begin/end of requests, closeAll.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_MAX_SESSIONS_PER_USER, DEFAULT_SESSION_IDLE_MS, SessionManager } from '../../src/http/sessions.js';

function handle(opts: { fail?: boolean } = {}) {
  const h = {
    closed: 0,
    close: async () => {
      h.closed++;
      if (opts.fail) throw new Error('transport already gone');
    },
  };
  return h;
}

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('SessionManager settings', () => {
  it('defaults to 30 minutes idle and 10 sessions per owner', () => {
    expect(DEFAULT_SESSION_IDLE_MS).toBe(1_800_000);
    expect(DEFAULT_MAX_SESSIONS_PER_USER).toBe(10);
    const m = new SessionManager();
    expect(m.idleMs).toBe(1_800_000);
    expect(m.maxPerOwner).toBe(10);
  });

  it('uses the idle time and cap it is given', () => {
    const m = new SessionManager({ idleMs: 5_000, maxPerOwner: 2 });
    expect(m.idleMs).toBe(5_000);
    expect(m.maxPerOwner).toBe(2);
  });
});

describe('SessionManager ownership and cap', () => {
  it('binds a session to the owner that created it', () => {
    const m = new SessionManager();
    const h = handle();
    m.add('s1', 'alice', h);
    expect(m.lookup('s1', 'alice')).toEqual({ kind: 'ok', handle: h });
    expect(m.lookup('s1', 'bob')).toEqual({ kind: 'not_owner' });
    expect(m.lookup('nope', 'alice')).toEqual({ kind: 'unknown' });
    m.remove('s1');
    expect(m.lookup('s1', 'alice')).toEqual({ kind: 'unknown' });
    expect(m.size).toBe(0);
  });

  it('caps sessions per owner, not in total', () => {
    const m = new SessionManager({ maxPerOwner: 2 });
    m.add('a1', 'alice', handle());
    expect(m.canOpen('alice')).toBe(true);
    m.add('a2', 'alice', handle());
    expect(m.countFor('alice')).toBe(2);
    expect(m.canOpen('alice')).toBe(false);
    expect(m.canOpen('bob')).toBe(true);
    m.remove('a1');
    expect(m.canOpen('alice')).toBe(true);
  });
});

describe('SessionManager idle sweep', () => {
  it('closes a session idle for exactly the idle time (the boundary), not one a millisecond younger', async () => {
    const c = clock();
    const closedIds: [string, string][] = [];
    const m = new SessionManager({ idleMs: 10_000, now: c.now, onIdleClose: (id, owner) => closedIds.push([id, owner]) });
    const old = handle();
    const young = handle();
    m.add('old', 'alice', old);
    c.t += 1;
    m.add('young', 'bob', young);
    c.t += 9_999; // old: idle 10 000 ms, young: 9 999 ms
    expect(await m.sweep()).toEqual(['old']);
    expect(closedIds).toEqual([['old', 'alice']]);
    expect(old.closed).toBe(1);
    expect(young.closed).toBe(0);
    expect(m.lookup('old', 'alice')).toEqual({ kind: 'unknown' });
    expect(m.size).toBe(1);
    // A second sweep does not close it again.
    c.t += 1;
    expect(await m.sweep()).toEqual(['young']);
    expect(old.closed).toBe(1);
    expect(closedIds).toEqual([
      ['old', 'alice'],
      ['young', 'bob'],
    ]);
  });

  it('sweeps without an onIdleClose callback, and a handle whose close fails does not stop it', async () => {
    const c = clock();
    const m = new SessionManager({ idleMs: 1_000, now: c.now });
    const bad = handle({ fail: true });
    const good = handle();
    m.add('bad', 'alice', bad);
    m.add('good', 'alice', good);
    c.t += 1_000;
    await expect(m.sweep()).resolves.toEqual(['bad', 'good']);
    expect(bad.closed).toBe(1);
    expect(good.closed).toBe(1);
    expect(m.size).toBe(0);
  });

  it('never sweeps a session with a request in progress, however long it runs', async () => {
    const c = clock();
    const m = new SessionManager({ idleMs: 1_000, now: c.now });
    const h = handle();
    m.add('s', 'alice', h);
    const end = m.begin('s');
    c.t += 1_000_000;
    expect(await m.sweep()).toEqual([]);
    expect(h.closed).toBe(0);
    end();
    // The end of the request counts as activity: idle from now on.
    c.t += 999;
    expect(await m.sweep()).toEqual([]);
    c.t += 1;
    expect(await m.sweep()).toEqual(['s']);
    expect(h.closed).toBe(1);
  });

  it('begin counts as activity', async () => {
    const c = clock();
    const m = new SessionManager({ idleMs: 1_000, now: c.now });
    m.add('s', 'alice', handle());
    c.t += 900;
    m.begin('s')();
    c.t += 900; // 1 800 ms since add, 900 since the request
    expect(await m.sweep()).toEqual([]);
  });

  it('ending the same request twice counts once: a concurrent request still protects the session', async () => {
    const c = clock();
    const m = new SessionManager({ idleMs: 1_000, now: c.now });
    const h = handle();
    m.add('s', 'alice', h);
    const endA = m.begin('s');
    m.begin('s'); // B is still running
    endA();
    endA();
    c.t += 5_000;
    expect(await m.sweep()).toEqual([]);
    expect(h.closed).toBe(0);
  });

  it('ending twice does not leave the session unsweepable', async () => {
    const c = clock();
    const m = new SessionManager({ idleMs: 1_000, now: c.now });
    m.add('s', 'alice', handle());
    const end = m.begin('s');
    end();
    end();
    c.t += 1_000;
    expect(await m.sweep()).toEqual(['s']);
  });

  it('begin on an unknown (already closed) session is harmless', () => {
    const m = new SessionManager();
    const end = m.begin('gone');
    expect(() => end()).not.toThrow();
    expect(m.size).toBe(0);
  });
});

describe('SessionManager sweep timer', () => {
  async function sweepsAfter(idleMs: number): Promise<number> {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const c = clock();
    const m = new SessionManager({ idleMs, now: c.now });
    m.add('s', 'alice', handle());
    c.t += idleMs; // idle from the start: the first tick closes it
    m.startSweeping();
    expect(vi.getTimerCount()).toBe(1);
    let elapsed = 0;
    while (m.size > 0 && elapsed < 120_000) {
      await vi.advanceTimersByTimeAsync(1);
      elapsed++;
    }
    await m.closeAll();
    return elapsed;
  }

  it('sweeps every half idle time', async () => {
    expect(await sweepsAfter(10_000)).toBe(5_000);
  });

  it('clamps the sweep interval to at least 1 s and at most 60 s', async () => {
    expect(await sweepsAfter(500)).toBe(1_000);
    expect(await sweepsAfter(4 * 3_600_000)).toBe(60_000);
  });

  it('the timer never keeps the process alive, and closeAll stops it', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const spy = vi.spyOn(globalThis, 'setInterval');
    const m = new SessionManager({ idleMs: 10_000 });
    m.startSweeping();
    expect(spy).toHaveBeenCalledTimes(1);
    const timer = spy.mock.results[0]!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    expect(vi.getTimerCount()).toBe(1);
    await m.closeAll();
    expect(vi.getTimerCount()).toBe(0);
    spy.mockRestore();
  });
});

describe('SessionManager closeAll', () => {
  it('closes every handle, forgets every session, and survives a failing close', async () => {
    const m = new SessionManager();
    const hs = [handle(), handle({ fail: true }), handle()];
    m.add('a', 'alice', hs[0]!);
    m.add('b', 'bob', hs[1]!);
    m.add('c', 'alice', hs[2]!);
    await expect(m.closeAll()).resolves.toBeUndefined();
    expect(hs.map((h) => h.closed)).toEqual([1, 1, 1]);
    expect(m.size).toBe(0);
    expect(m.lookup('a', 'alice')).toEqual({ kind: 'unknown' });
    expect(m.countFor('alice')).toBe(0);
  });

  it('works without a sweep timer started', async () => {
    const m = new SessionManager();
    m.add('a', 'alice', handle());
    await m.closeAll();
    expect(m.size).toBe(0);
  });
});
