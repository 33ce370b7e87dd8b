import { describe, expect, it } from 'vitest';
import { RENEW_BEFORE_EXPIRY_MS, cachedTokenProvider } from '../../src/auth/token-provider.js';

describe('cachedTokenProvider', () => {
  it('reuses one token until five minutes before it expires, then renews', async () => {
    let now = 0;
    let acquired = 0;
    const provider = cachedTokenProvider('test', async () => ({ accessToken: `t${++acquired}`, expiresOnMs: now + 3_600_000 }), { now: () => now });
    expect(await provider.getToken()).toBe('t1');
    now = 3_600_000 - RENEW_BEFORE_EXPIRY_MS - 1;
    expect(await provider.getToken()).toBe('t1');
    now += 1;
    expect(await provider.getToken()).toBe('t2');
    expect(acquired).toBe(2);
  });

  it('shares one sign-in between concurrent first calls, and signs in again after invalidate()', async () => {
    let acquired = 0;
    const provider = cachedTokenProvider('test', async () => {
      acquired++;
      await new Promise((r) => setTimeout(r, 10));
      return { accessToken: `t${acquired}`, expiresOnMs: Date.now() + 3_600_000 };
    });
    expect(await Promise.all([provider.getToken(), provider.getToken(), provider.getToken()])).toEqual(['t1', 't1', 't1']);
    provider.invalidate();
    expect(await provider.getToken()).toBe('t2');
    expect(acquired).toBe(2);
  });

  it('bounds a sign-in that hangs, and a later call tries again', async () => {
    let calls = 0;
    const provider = cachedTokenProvider(
      'test',
      () => (++calls === 1 ? new Promise(() => undefined) : Promise.resolve({ accessToken: 'ok', expiresOnMs: Date.now() + 3_600_000 })),
      { timeoutMs: 50, authorityHost: 'https://login.example' },
    );
    const error = await provider.getToken().catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ToolError', kind: 'authentication' });
    expect((error as Error).message).toMatch(/https:\/\/login\.example did not answer within 50 ms/);
    expect(await provider.getToken()).toBe('ok');
  });
});
