import { createHmac } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { BearerError, createEntraVerifier, principalKey, type EntraVerifierOptions, type TokenVerifier } from '../../src/auth/entra-jwt.js';
import { ANALYST, API_CLIENT_ID, CALLING_APP, FakeEntra, SECOND_ANALYST, forgedToken } from '../fakes/entra-id.js';

const THIRD = { oid: '33333333-4444-4555-8666-777777777777', preferred_username: 'cy@contoso.com', name: 'Cy Analyst' };

const APP_ID_URI = `api://${API_CLIENT_ID}`;
let entra: FakeEntra;

beforeAll(async () => {
  entra = new FakeEntra();
  await entra.start();
});
afterAll(() => entra.close());
afterEach(() => vi.useRealTimers());

/** A verifier for the fake tenant; each test overrides only what it is about. */
function verifier(overrides: Partial<EntraVerifierOptions> = {}): TokenVerifier {
  return createEntraVerifier({
    authorityHost: entra.authorityHost,
    tenantId: entra.tenant,
    clientId: API_CLIENT_ID,
    appIdUri: APP_ID_URI,
    requiredScope: 'user_impersonation',
    appCallerRole: undefined,
    ...overrides,
  });
}

async function refusal(v: TokenVerifier, header: string | undefined): Promise<BearerError> {
  const error = await v.verify(header).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BearerError);
  expect((error as Error).name).toBe('BearerError');
  return error as BearerError;
}

describe('Entra access token validation', () => {
  it('accepts a user token for the client id or the App ID URI, and says who the caller is', async () => {
    const v = verifier();
    const caller = await v.verify(`Bearer ${await entra.userToken()}`);
    expect(caller).toMatchObject({ kind: 'user', oid: ANALYST.oid, tid: entra.tenant, preferredUsername: ANALYST.preferred_username, name: ANALYST.name });
    expect(principalKey(caller)).toBe(`user:${entra.tenant}:${ANALYST.oid}`);
    await expect(v.verify(`Bearer ${await entra.userToken({ claims: { aud: APP_ID_URI } })}`)).resolves.toMatchObject({ kind: 'user' });
    // the scope may sit among others
    await expect(v.verify(`Bearer ${await entra.userToken({ claims: { scp: 'openid user_impersonation Files.Read' } })}`)).resolves.toMatchObject({ kind: 'user' });
  });

  it('refuses every kind of bad token with 401 invalid_token (or 403 for a good token without permission)', async () => {
    const v = verifier();
    const now = Math.floor(Date.now() / 1000);
    const good = await entra.userToken();
    const [header, payload] = good.split('.');
    const publicPem = JSON.stringify(entra.currentPublicJwk());
    const hs256Header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: entra.currentPublicJwk().kid })).toString('base64url');
    const hs256 = `${hs256Header}.${payload}.${createHmac('sha256', publicPem).update(`${hs256Header}.${payload}`).digest('base64url')}`;
    const unknownKey = await entra.unpublishedKey();
    const cases: [string, string | undefined, number, string | undefined, RegExp][] = [
      ['no token', undefined, 401, undefined, /required/],
      ['not a bearer header', `Basic ${Buffer.from('a:b').toString('base64')}`, 401, 'invalid_token', /Bearer/],
      ['malformed', 'Bearer not-a-jwt', 401, 'invalid_token', /malformed/],
      ['bad signature', `Bearer ${header}.${payload}.${'A'.repeat(342)}`, 401, 'invalid_token', /signature/],
      ['unknown key id', `Bearer ${await entra.userToken({ key: unknownKey })}`, 401, 'invalid_token', /key/],
      ['alg none', `Bearer ${forgedToken({ alg: 'none', typ: 'JWT' }, JSON.parse(Buffer.from(payload!, 'base64url').toString()))}`, 401, 'invalid_token', /RS256/],
      ['HS256 signed with the public key', `Bearer ${hs256}`, 401, 'invalid_token', /RS256/],
      ['wrong issuer', `Bearer ${await entra.userToken({ claims: { iss: 'https://sts.windows.net/evil/' } })}`, 401, 'invalid_token', /issued by another/],
      ['other tenant (iss and tid)', `Bearer ${await entra.userToken({ claims: { iss: `${entra.authorityHost}/other-tenant/v2.0`, tid: 'other-tenant' } })}`, 401, 'invalid_token', /another/],
      ['other tenant (tid only)', `Bearer ${await entra.userToken({ claims: { tid: 'other-tenant' } })}`, 401, 'invalid_token', /another tenant/],
      ['Graph token (audience)', `Bearer ${await entra.userToken({ claims: { aud: 'https://graph.microsoft.com' } })}`, 401, 'invalid_token', /audience/],
      ['expired beyond the skew', `Bearer ${await entra.userToken({ claims: { exp: now - 61, iat: now - 3700, nbf: now - 3700 } })}`, 401, 'invalid_token', /expired/],
      ['not yet valid beyond the skew', `Bearer ${await entra.userToken({ notBeforeSec: 120 })}`, 401, 'invalid_token', /not valid yet/],
      ['no oid', `Bearer ${await entra.userToken({ claims: { oid: undefined } })}`, 401, 'invalid_token', /oid/],
      ['missing scope', `Bearer ${await entra.userToken({ claims: { scp: 'Files.Read' } })}`, 403, 'insufficient_scope', /user_impersonation/],
      ['app-only without the role', `Bearer ${await entra.appToken({ roles: ['Other.Role'] })}`, 403, 'insufficient_scope', /App-only/],
    ];
    for (const [name, value, status, code, text] of cases) {
      const e = await refusal(v, value);
      expect({ name, status: e.status, code: e.code }).toEqual({ name, status, code });
      expect(e.description, name).toMatch(text);
      if (value) expect(e.description, name).not.toContain(value.slice(7, 40));
    }
  });

  it('allows 60 s of clock skew on exp and nbf', async () => {
    const v = verifier();
    const now = Math.floor(Date.now() / 1000);
    await expect(v.verify(`Bearer ${await entra.userToken({ claims: { exp: now - 30 } })}`)).resolves.toMatchObject({ kind: 'user' });
    await expect(v.verify(`Bearer ${await entra.userToken({ notBeforeSec: 30 })}`)).resolves.toMatchObject({ kind: 'user' });
  });

  it('accepts an app-only token only with the named app role, and names the app', async () => {
    const v = verifier({ appCallerRole: 'MDE.Unrestrict.App' });
    const caller = await v.verify(`Bearer ${await entra.appToken({ roles: ['MDE.Unrestrict.App'] })}`);
    expect(caller).toMatchObject({ kind: 'app', appId: CALLING_APP.azp, oid: CALLING_APP.oid });
    expect((await refusal(v, `Bearer ${await entra.appToken()}`)).status).toBe(403);
  });

  it('caches the key set and refetches it at most once a minute for unknown key ids (rotation)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const v = verifier();
    const before = entra.keySetRequests().length;
    for (let i = 0; i < 3; i++) await v.verify(`Bearer ${await entra.userToken()}`);
    expect(entra.keySetRequests().length - before).toBe(1);

    // Entra rotates: tokens signed with the new key arrive; the first one triggers one refetch.
    vi.setSystemTime(Date.now() + 61_000);
    await entra.rotate({ keepOld: true });
    await v.verify(`Bearer ${await entra.userToken()}`);
    expect(entra.keySetRequests().length - before).toBe(2);

    // A flood of unknown key ids within the minute costs no further fetch.
    const stranger = await entra.unpublishedKey();
    for (let i = 0; i < 5; i++) expect((await refusal(v, `Bearer ${await entra.userToken({ key: stranger })}`)).status).toBe(401);
    expect(entra.keySetRequests().length - before).toBe(2);

    // After the minute, a newly published key is picked up.
    entra.publish(stranger);
    vi.setSystemTime(Date.now() + 61_000);
    await expect(v.verify(`Bearer ${await entra.userToken({ key: stranger })}`)).resolves.toMatchObject({ kind: 'user' });
    expect(entra.keySetRequests().length - before).toBe(3);
    await entra.rotate();
  });

  it('answers 503, not 401, when the key set cannot be fetched', async () => {
    const v = verifier({ authorityHost: 'https://127.0.0.1:1' });
    const e = await refusal(v, `Bearer ${await entra.userToken()}`);
    expect(e.status).toBe(503);
    await expect(v.ready()).resolves.toBe(false);
  });

  it('refuses a key set URL that is not HTTPS', () => {
    expect(() =>
      createEntraVerifier({ authorityHost: 'http://127.0.0.1:1', tenantId: 't', clientId: 'c', appIdUri: 'api://c', requiredScope: 's', appCallerRole: undefined }),
    ).toThrow(/HTTPS/);
  });
});

describe('Entra access token validation: identities that must not collapse or silently never match', () => {
  it('refuses a token whose oid is not an object id (non-string, empty, not a GUID): principals must not collapse into one', async () => {
    const v = verifier();
    for (const oid of [5, { a: 1 }, '', 'not-a-guid']) {
      const e = await refusal(v, `Bearer ${await entra.userToken({ claims: { oid: oid as never } })}`);
      expect({ oid, status: e.status, code: e.code }).toEqual({ oid, status: 401, code: 'invalid_token' });
      expect(e.description).toMatch(/oid/);
    }
  });

  it('matches the configured tenant GUID whatever its case (Entra writes it lower case in iss and tid)', async () => {
    const v = verifier({ tenantId: entra.tenant.toUpperCase() });
    await expect(v.verify(`Bearer ${await entra.userToken()}`)).resolves.toMatchObject({ kind: 'user', tid: entra.tenant });
  });

  it('refuses at start a tenant given as a domain name: no Entra token would ever match it', async () => {
    const { prepareRemoteAuth } = await import('../../src/http/run.js');
    const settings = { auth: 'entra', appIdUri: APP_ID_URI, requiredScope: 'user_impersonation', appCallerRole: undefined } as Parameters<typeof prepareRemoteAuth>[0];
    const identity = { tenantId: 'contoso.onmicrosoft.com', clientId: API_CLIENT_ID, authorityHost: entra.authorityHost, scope: 'https://api.securitycenter.microsoft.com/.default', credential: { kind: 'secret' as const, secret: 'x' }, timeoutMs: 1000 };
    const silent = { debug() {}, info() {}, warning() {}, error() {} };
    const app = { description: 'app', getToken: async () => 'never', invalidate() {} };
    expect(() => prepareRemoteAuth(settings, identity, app, silent)).toThrow(/AZURE_TENANT_ID.*GUID/);
  });
});

describe('Entra access token validation: a token that passed is reused for a while, never beyond its expiry', () => {
  it('honours a token that passed without checking it again, for at most 5 minutes: then a key Entra withdrew no longer counts', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const v = verifier();
      const token = await entra.userToken({ claims: { exp: Math.floor(Date.now() / 1000) + 3600 } });
      const first = await v.verify(`Bearer ${token}`);
      expect(Object.isFrozen(first)).toBe(true);

      // Entra withdraws the key that signed it; a token with the new key makes the server refetch the set.
      await entra.rotate();
      vi.setSystemTime(Date.now() + 61_000);
      await expect(v.verify(`Bearer ${await entra.userToken()}`)).resolves.toMatchObject({ kind: 'user' });
      const fetches = entra.keySetRequests().length;

      // Within the 5 minutes the token is not checked again: the same caller, no signature check, no fetch.
      await expect(v.verify(`Bearer ${token}`)).resolves.toBe(first);
      // Another token, even one character apart, is checked in full.
      const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'AB' : 'AA'}`;
      expect((await refusal(v, `Bearer ${tampered}`)).status).toBe(401);

      // Past the 5 minutes it is checked in full again, and its key is gone.
      vi.setSystemTime(Date.now() + 5 * 60_000);
      const e = await refusal(v, `Bearer ${token}`);
      expect({ status: e.status, description: e.description }).toEqual({ status: 401, description: 'The token was signed with a key this tenant does not publish.' });
      expect(entra.keySetRequests().length - fetches).toBeLessThanOrEqual(1);
    } finally {
      await entra.rotate();
    }
  });

  it('never honours a token that passed once it has expired (60 s skew, as on first sight)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const v = verifier();
    const token = await entra.userToken({ claims: { exp: Math.floor(Date.now() / 1000) + 10 } });
    await expect(v.verify(`Bearer ${token}`)).resolves.toMatchObject({ kind: 'user' });
    vi.setSystemTime(Date.now() + 65_000); // exp + 55 s: within the skew
    await expect(v.verify(`Bearer ${token}`)).resolves.toMatchObject({ kind: 'user' });
    vi.setSystemTime(Date.now() + 10_000); // exp + 65 s
    const e = await refusal(v, `Bearer ${token}`);
    expect({ status: e.status, code: e.code, description: e.description }).toEqual({ status: 401, code: 'invalid_token', description: 'The token has expired.' });
  });

  it('the pass lapses exactly 5 minutes after the check, or at exp + 60 s if sooner, to the millisecond', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const v = verifier();
      const t0 = Date.now();
      const long = await entra.userToken({ user: ANALYST, claims: { exp: Math.floor(t0 / 1000) + 3600 } });
      const shortExp = Math.floor(t0 / 1000) + 100;
      const short = await entra.userToken({ user: SECOND_ANALYST, claims: { exp: shortExp } });
      const [longCaller, shortCaller] = [await v.verify(`Bearer ${long}`), await v.verify(`Bearer ${short}`)];
      // Their key is withdrawn and the server knows it: from now on only a remembered pass lets them in.
      await entra.rotate();
      vi.setSystemTime(t0 + 61_000);
      await v.verify(`Bearer ${await entra.userToken()}`);

      vi.setSystemTime((shortExp + 60) * 1000 - 1);
      await expect(v.verify(`Bearer ${short}`)).resolves.toBe(shortCaller);
      vi.setSystemTime((shortExp + 60) * 1000);
      expect((await refusal(v, `Bearer ${short}`)).status).toBe(401);

      vi.setSystemTime(t0 + 5 * 60_000 - 1);
      await expect(v.verify(`Bearer ${long}`)).resolves.toBe(longCaller);
      vi.setSystemTime(t0 + 5 * 60_000);
      expect((await refusal(v, `Bearer ${long}`)).description).toMatch(/does not publish/);
    } finally {
      await entra.rotate();
    }
  });

  it('keeps no refusal: a token refused for its scope is refused again, and a good one later is not affected', async () => {
    const v = verifier();
    const noScope = await entra.userToken({ claims: { scp: 'Files.Read' } });
    expect((await refusal(v, `Bearer ${noScope}`)).status).toBe(403);
    expect((await refusal(v, `Bearer ${noScope}`)).status).toBe(403);
    await expect(v.verify(`Bearer ${await entra.userToken()}`)).resolves.toMatchObject({ kind: 'user' });
  });

  it('remembers a bounded number of tokens: the oldest is forgotten first (and then checked in full)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const v = verifier({ maxReused: 2 });
      const [a, b, c] = [await entra.userToken({ user: ANALYST }), await entra.userToken({ user: SECOND_ANALYST }), await entra.userToken({ user: THIRD })];
      for (const t of [a, b, c]) await v.verify(`Bearer ${t}`);
      await entra.rotate(); // their key is withdrawn: only a remembered token still passes
      vi.setSystemTime(Date.now() + 61_000);
      // The refetch comes from a token refused for its scope: it is not remembered, so it evicts nothing.
      expect((await refusal(v, `Bearer ${await entra.userToken({ claims: { scp: 'Files.Read' } })}`)).status).toBe(403);
      expect((await refusal(v, `Bearer ${a}`)).description).toMatch(/does not publish/);
      await expect(v.verify(`Bearer ${b}`)).resolves.toMatchObject({ oid: SECOND_ANALYST.oid });
      await expect(v.verify(`Bearer ${c}`)).resolves.toMatchObject({ oid: THIRD.oid });
    } finally {
      await entra.rotate();
    }
  });

  it('with reuse off, every request is checked in full', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const v = verifier({ reuseMs: 0 });
      const token = await entra.userToken();
      await v.verify(`Bearer ${token}`);
      await entra.rotate();
      vi.setSystemTime(Date.now() + 61_000);
      await v.verify(`Bearer ${await entra.userToken()}`);
      expect((await refusal(v, `Bearer ${token}`)).description).toMatch(/does not publish/);
    } finally {
      await entra.rotate();
    }
  });
});

describe('Entra access token validation: edges found by mutation testing', () => {
  it('reads the Authorization header strictly: empty is no token; "Bearer", one or more spaces, the token, nothing else', async () => {
    const v = verifier();
    const token = await entra.userToken();
    expect(await refusal(v, '')).toMatchObject({ status: 401, code: undefined, description: 'A bearer token is required.' });
    await expect(v.verify(`Bearer   ${token}`)).resolves.toMatchObject({ kind: 'user' }); // RFC 6750: 1*SP
    await expect(v.verify(`bearer ${token}`)).resolves.toMatchObject({ kind: 'user' }); // the scheme is case-insensitive
    for (const header of [`XBearer ${token}`, `Bearer ${token} extra`, `Bearer ${token}\n`, `Bearer`, `Bearer${token}`]) {
      expect(await refusal(v, header), JSON.stringify(header.slice(0, 12))).toMatchObject({ status: 401, code: 'invalid_token' });
    }
  });

  it('refuses a token without exp, and an oid that is not exactly a GUID (prefix, suffix, an array holding one)', async () => {
    const v = verifier();
    const noExp = await refusal(v, `Bearer ${await entra.userToken({ claims: { exp: undefined } })}`);
    expect({ status: noExp.status, description: noExp.description }).toEqual({ status: 401, description: "The token's exp claim is missing or invalid." });
    for (const oid of [`x${ANALYST.oid}`, `${ANALYST.oid}x`, [ANALYST.oid]]) {
      const e = await refusal(v, `Bearer ${await entra.userToken({ claims: { oid: oid as never } })}`);
      expect({ oid, status: e.status, description: e.description }).toEqual({ oid, status: 401, description: "The token's oid claim is missing or invalid." });
    }
  });

  it("keeps only the token's string roles, none when it has none; names an app by azp, else appid (v1 tokens)", async () => {
    const v = verifier({ appCallerRole: 'MDE.Unrestrict.App' });
    expect(await v.verify(`Bearer ${await entra.userToken()}`)).toMatchObject({ roles: [] });
    expect(await v.verify(`Bearer ${await entra.userToken({ claims: { roles: [5, 'MDE.Approver', { a: 1 }] as never } })}`)).toMatchObject({ roles: ['MDE.Approver'] });
    const v1 = await v.verify(`Bearer ${await entra.appToken({ roles: ['MDE.Unrestrict.App'], claims: { azp: undefined, appid: 'v1-app-id' } })}`);
    expect(v1).toMatchObject({ kind: 'app', appId: 'v1-app-id' });
    const neither = await v.verify(`Bearer ${await entra.appToken({ roles: ['MDE.Unrestrict.App'], claims: { azp: undefined } })}`);
    expect(neither).toMatchObject({ kind: 'app', appId: 'unknown-app' });
    expect((await refusal(v, `Bearer ${await entra.appToken({ roles: ['Other'] })}`)).description).toBe('App-only tokens must carry the app role MDE.Unrestrict.App.');
  });

  it('accepts an authority host written with trailing slashes (the issuer has none)', async () => {
    for (const slashes of ['/', '//']) {
      const v = verifier({ authorityHost: `${entra.authorityHost}${slashes}` });
      expect(v.issuer).toBe(`${entra.authorityHost}/${entra.tenant}/v2.0`);
      await expect(v.verify(`Bearer ${await entra.userToken()}`)).resolves.toMatchObject({ kind: 'user' });
    }
  });

  it('a key set that is not one answers 503 (cannot check), with a message that says so', async () => {
    const v = verifier({
      fetch: async () => new Response(JSON.stringify({ keys: 'not-a-list' }), { status: 200, headers: { 'Content-Type': 'application/json' } }),
    });
    const e = await refusal(v, `Bearer ${await entra.userToken()}`);
    expect({ status: e.status, description: e.description }).toEqual({ status: 503, description: 'The sign-in keys cannot be fetched right now; retry in a moment.' });
  });

  it('after a network failure fetching the key set, the next attempt waits exactly 10 s; after a success, only the cool-down applies', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      let attempts = 0;
      let down = true;
      const v = verifier({
        cooldownMs: 1,
        fetch: async (input, init) => {
          attempts++;
          if (down) throw new TypeError('fetch failed');
          return fetch(input, init);
        },
      });
      const token = await entra.userToken();
      expect((await refusal(v, `Bearer ${token}`)).status).toBe(503);
      expect((await refusal(v, `Bearer ${token}`)).status).toBe(503);
      expect(attempts).toBe(1); // not retried within 10 s of a failure
      down = false;
      vi.setSystemTime(Date.now() + 9_999);
      expect((await refusal(v, `Bearer ${token}`)).status).toBe(503);
      expect(attempts).toBe(1);
      vi.setSystemTime(Date.now() + 1);
      await expect(v.verify(`Bearer ${token}`)).resolves.toMatchObject({ kind: 'user' });
      expect(attempts).toBe(2);
      // A success leaves no failure behind: a new key 2 ms later (past this verifier's 1 ms cool-down) is fetched at once.
      const next = await entra.unpublishedKey();
      entra.publish(next);
      vi.setSystemTime(Date.now() + 2);
      await expect(v.verify(`Bearer ${await entra.userToken({ key: next })}`)).resolves.toMatchObject({ kind: 'user' });
      expect(attempts).toBe(3);
    } finally {
      await entra.rotate();
    }
  });

  it('a ready probe does not refetch a key set it holds, even after the cool-down', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const v = verifier();
    await v.verify(`Bearer ${await entra.userToken()}`);
    const fetches = entra.keySetRequests().length;
    vi.setSystemTime(Date.now() + 61_000);
    await expect(v.ready()).resolves.toBe(true);
    expect(entra.keySetRequests().length).toBe(fetches);
  });

  it('a token checked again after its 5 minutes becomes the newest remembered one (the oldest is forgotten first)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const v = verifier({ maxReused: 3 });
      const fourth = { ...THIRD, oid: '44444444-5555-4666-8777-888888888888' };
      const [a, b, c, d] = [await entra.userToken({ user: ANALYST }), await entra.userToken({ user: SECOND_ANALYST }), await entra.userToken({ user: THIRD }), await entra.userToken({ user: fourth })];
      await v.verify(`Bearer ${a}`);
      await v.verify(`Bearer ${b}`);
      vi.setSystemTime(Date.now() + 5 * 60_000);
      await v.verify(`Bearer ${a}`); // checked in full again: now newer than b
      await v.verify(`Bearer ${c}`);
      await v.verify(`Bearer ${d}`); // b goes
      await entra.rotate();
      vi.setSystemTime(Date.now() + 61_000);
      // A token refused for its scope makes the server refetch the key set without being remembered.
      expect((await refusal(v, `Bearer ${await entra.userToken({ claims: { scp: 'Files.Read' } })}`)).status).toBe(403);
      await expect(v.verify(`Bearer ${a}`)).resolves.toMatchObject({ oid: ANALYST.oid });
      expect((await refusal(v, `Bearer ${b}`)).description).toMatch(/does not publish/);
    } finally {
      await entra.rotate();
    }
  });
});

describe('Entra key set: no refetch storm while it fails', () => {
  it('after a failed fetch, neither made-up key ids nor readiness probes fetch again for 10 s', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const v = verifier();
      await v.verify(`Bearer ${await entra.userToken()}`); // keys cached
      const before = entra.keySetRequests().length;
      entra.failKeySet = true;
      vi.setSystemTime(Date.now() + 61_000); // past the cool-down: an unknown key id may refetch
      const stranger = await entra.unpublishedKey();
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push((await refusal(v, `Bearer ${await entra.userToken({ key: stranger })}`)).status);
      for (let i = 0; i < 5; i++) await v.ready();
      expect(entra.keySetRequests().length - before).toBe(1);
      expect(new Set(statuses)).toEqual(new Set([503]));
      // Callers whose key is cached are served meanwhile.
      await expect(v.verify(`Bearer ${await entra.userToken()}`)).resolves.toMatchObject({ kind: 'user' });
      // Later, one more attempt; once the key set answers again, the new key is picked up.
      entra.failKeySet = false;
      entra.publish(stranger);
      vi.setSystemTime(Date.now() + 11_000);
      await expect(v.verify(`Bearer ${await entra.userToken({ key: stranger })}`)).resolves.toMatchObject({ kind: 'user' });
      expect(entra.keySetRequests().length - before).toBe(2);
    } finally {
      entra.failKeySet = false;
      await entra.rotate();
    }
  });
});
