/**
 * Remote mode at the HTTP edge, through the SDK's Streamable HTTP client and raw requests: bad tokens
 * refused before anything goes upstream, protected resource metadata, Host and Origin, the body limit,
 * probes, sessions bound to their user (hijack, cap, idle close), and draining on shutdown.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { simulatorTokenProvider } from '../../src/auth/msal.js';
import { DefenderClient } from '../../src/defender/client.js';
import { createServer } from '../../src/server.js';
import { ANALYST, SECOND_ANALYST, forgedToken } from '../fakes/entra-id.js';
import { RESTRICTED_DEVICE } from '../helpers/harness.js';
import { APP_ID_URI, INITIALIZE, MCP_HEADERS, useRemote, type RemoteOptions } from '../helpers/remote.js';

// The MCP server of a session: the product's tools against the simulator (the caller's identity does
// not matter at this layer).
const plainServer: RemoteOptions['createMcpServer'] = ({ sim, apiUrl }) => {
  return () =>
    createServer({
      api: new DefenderClient({ baseUrl: apiUrl, tokens: simulatorTokenProvider(sim.token), timeoutMs: 5_000, logger: silent }),
      logger: silent,
      confirmation: { mode: 'auto', skip: false },
    });
};
const silent = { debug() {}, info() {}, warning() {}, error() {} };

const remote = useRemote();

describe('remote mode: tokens at the edge', () => {
  it('serves RFC 9728 metadata at both well-known URLs, without auth', async () => {
    const r = await remote({ createMcpServer: plainServer });
    for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
      const res = await r.raw(path);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        resource: r.http.resourceUrl,
        authorization_servers: [`${r.entra.authorityHost}/${r.entra.tenant}/v2.0`],
        scopes_supported: [`${APP_ID_URI}/user_impersonation`],
        bearer_methods_supported: ['header'],
        resource_name: expect.any(String),
      });
    }
  });

  it('refuses every bad token with 401/403 and the right challenge, and nothing goes upstream', async () => {
    const r = await remote({ createMcpServer: plainServer });
    const metadata = `${new URL(r.http.url).origin}/.well-known/oauth-protected-resource/mcp`;
    const now = Math.floor(Date.now() / 1000);
    const good = await r.entra.userToken();
    const [h, p] = good.split('.');
    const jwk = JSON.stringify(r.entra.currentPublicJwk());
    const hsHeader = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: r.entra.currentPublicJwk().kid })).toString('base64url');
    const table: [string, string | undefined, number][] = [
      ['none', undefined, 401],
      ['malformed', 'not.a.jwt', 401],
      ['bad signature', `${h}.${p}.${'B'.repeat(342)}`, 401],
      ['unknown key id', await r.entra.userToken({ key: await r.entra.unpublishedKey() }), 401],
      ['alg none', forgedToken({ alg: 'none', typ: 'JWT' }, JSON.parse(Buffer.from(p!, 'base64url').toString())), 401],
      ['HS256 with the public key', `${hsHeader}.${p}.${createHmac('sha256', jwk).update(`${hsHeader}.${p}`).digest('base64url')}`, 401],
      ['wrong issuer', await r.entra.userToken({ claims: { iss: 'https://login.microsoftonline.com/common/v2.0' } }), 401],
      ['other tenant', await r.entra.userToken({ claims: { tid: '00000000-0000-4000-8000-000000000000' } }), 401],
      ['audience: Microsoft Graph', await r.entra.userToken({ claims: { aud: '00000003-0000-0000-c000-000000000000' } }), 401],
      ['expired', await r.entra.userToken({ claims: { exp: now - 120, iat: now - 4000, nbf: now - 4000 } }), 401],
      ['not yet valid', await r.entra.userToken({ notBeforeSec: 300 }), 401],
      ['missing scope', await r.entra.userToken({ claims: { scp: 'User.Read' } }), 403],
      ['app-only without the role', await r.entra.appToken({ roles: ['Something.Else'] }), 403],
    ];
    const before = r.upstream();
    for (const [name, token, status] of table) {
      const res = await r.raw('/mcp', {
        method: 'POST',
        headers: { ...MCP_HEADERS, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(INITIALIZE),
      });
      expect({ name, status: res.status }).toEqual({ name, status });
      const challenge = res.headers.get('www-authenticate') ?? '';
      expect(challenge, name).toContain(`resource_metadata="${metadata}"`);
      if (token) expect(challenge, name).toContain(status === 401 ? 'error="invalid_token"' : 'error="insufficient_scope"');
      else expect(challenge, name).not.toContain('error=');
      if (status === 403) expect(challenge, name).toContain(`scope="${APP_ID_URI}/user_impersonation"`);
      const body = await res.text();
      if (token) expect(body, name).not.toContain(token.slice(0, 30));
    }
    expect(r.upstream()).toEqual(before);
    expect(r.http.sessions.size).toBe(0);
    // The same refusal through the SDK client.
    await expect(r.connect(undefined)).rejects.toThrow();
    expect(r.upstream()).toEqual(before);
  });

  it('serves a signed-in analyst through the SDK Streamable HTTP client', async () => {
    const r = await remote({ createMcpServer: plainServer });
    const ada = await r.connect(await r.entra.userToken());
    const tools = await ada.client.listTools();
    expect(tools.tools.map((t) => t.name)).toContain('remove_app_restriction');
    const found = await ada.tool('find_machine', { name: 'finance-ws-017' });
    expect(found.isError).toBeFalsy();
    expect(r.http.sessions.size).toBe(1);
  });
});

describe('remote mode: the network edge', () => {
  it('answers 403 to a foreign Origin and to a Host that does not name the server; allows listed origins with CORS', async () => {
    const r = await remote({ createMcpServer: plainServer, allowedOrigins: ['https://inspector.contoso.com'] });
    const token = await r.entra.userToken();
    const headers = { ...MCP_HEADERS, Authorization: `Bearer ${token}` };
    const evil = await r.raw('/mcp', { method: 'POST', headers: { ...headers, Origin: 'https://evil.example' }, body: JSON.stringify(INITIALIZE) });
    expect(evil.status).toBe(403);
    expect(await evil.text()).toMatch(/Origin/);

    const ok = await r.raw('/mcp', { method: 'POST', headers: { ...headers, Origin: 'https://inspector.contoso.com' }, body: JSON.stringify(INITIALIZE) });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://inspector.contoso.com');
    expect(ok.headers.get('access-control-expose-headers')).toMatch(/Mcp-Session-Id/);
    await ok.body?.cancel();

    // DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1.
    const { request } = await import('node:http');
    const port = new URL(r.http.url).port;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers: { ...headers, Host: `evil.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(JSON.stringify(INITIALIZE));
    });
    expect(status).toBe(403);
    expect(r.http.sessions.size).toBe(1);
  });

  it('answers a browser preflight for a listed origin without auth, and nothing else but GET, POST and DELETE on /mcp', async () => {
    const r = await remote({ createMcpServer: plainServer, allowedOrigins: ['https://inspector.contoso.com'] });
    const preflight = await r.raw('/mcp', { method: 'OPTIONS', headers: { Origin: 'https://inspector.contoso.com', 'Access-Control-Request-Method': 'POST' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://inspector.contoso.com');
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET, POST, DELETE');
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Authorization.*Mcp-Session-Id/);
    const put = await r.raw('/mcp', { method: 'PUT', headers: { ...MCP_HEADERS, Authorization: `Bearer ${await r.entra.userToken()}` }, body: '{}' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST, DELETE');
    // The probes and the metadata answer GET only.
    for (const path of ['/healthz', '/readyz', '/.well-known/oauth-protected-resource/mcp']) expect((await r.raw(path, { method: 'POST', body: '{}' })).status, path).toBe(404);
    expect(r.http.sessions.size).toBe(0);
  });

  it('serves no protected resource metadata without Entra sign-in (nothing to sign in to)', async () => {
    const r = await remote({ createMcpServer: plainServer, auth: 'none' });
    expect((await r.raw('/.well-known/oauth-protected-resource/mcp')).status).toBe(404);
    expect((await r.raw('/.well-known/oauth-protected-resource')).status).toBe(404);
  });

  it('answers 413 to a body over 1 MiB, declared or streamed, before touching anything', async () => {
    const r = await remote({ createMcpServer: plainServer });
    const token = await r.entra.userToken();
    const big = JSON.stringify({ ...INITIALIZE, params: { ...INITIALIZE.params, padding: 'x'.repeat(1024 * 1024) } });
    const before = r.upstream();
    const declared = await r.raw('/mcp', { method: 'POST', headers: { ...MCP_HEADERS, Authorization: `Bearer ${token}` }, body: big });
    expect(declared.status).toBe(413);
    // Declared too large: refused before the token is looked at, and the connection is not kept.
    const anonymous = await r.raw('/mcp', { method: 'POST', headers: MCP_HEADERS, body: big });
    expect(anonymous.status).toBe(413);
    expect(anonymous.headers.get('connection')).toBe('close');
    // Chunked (no Content-Length): cut off while reading.
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 20; i++) c.enqueue(new TextEncoder().encode('x'.repeat(64 * 1024)));
        c.close();
      },
    });
    const chunked = await r
      .raw('/mcp', { method: 'POST', headers: { ...MCP_HEADERS, Authorization: `Bearer ${token}` }, body: stream, duplex: 'half' } as RequestInit)
      .then((res) => res.status)
      .catch(() => 'reset');
    expect([413, 'reset']).toContain(chunked);
    // Just under the limit is fine.
    const under = JSON.stringify({ ...INITIALIZE, params: { ...INITIALIZE.params, padding: 'x'.repeat(1024 * 1024 - 400) } });
    const ok = await r.raw('/mcp', { method: 'POST', headers: { ...MCP_HEADERS, Authorization: `Bearer ${token}` }, body: under });
    expect(ok.status).toBe(200);
    await ok.body?.cancel();
    expect(r.upstream()).toEqual(before);
  });

  it('answers /healthz and /readyz without auth, revealing nothing', async () => {
    const r = await remote({ createMcpServer: plainServer });
    const health = await r.raw('/healthz');
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await r.raw('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
    expect(r.entra.keySetRequests().length).toBeGreaterThan(0);
    expect((await r.raw('/nothing-here', { headers: {} })).status).toBe(404);
  });

  it('/readyz answers 503 while the key set is neither cached nor reachable', async () => {
    const r = await remote({ createMcpServer: plainServer });
    await r.entra.close();
    const ready = await r.raw('/readyz');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'not_ready' });
    // A token cannot be checked either: 503 with Retry-After, not a 401 that would send the client to sign in again.
    const call = await r.raw('/mcp', { method: 'POST', headers: { ...MCP_HEADERS, Authorization: `Bearer ${await r.entra.userToken()}` }, body: JSON.stringify(INITIALIZE) });
    expect(call.status).toBe(503);
    expect(call.headers.get('retry-after')).toBe('10');
  });
});

describe('remote mode: sessions belong to their user', () => {
  it('refuses another user\'s token on a session (POST and DELETE); the owner goes on', async () => {
    const r = await remote({ createMcpServer: plainServer });
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST }));
    const sessionId = ada.transport.sessionId!;
    const bob = await r.entra.userToken({ user: SECOND_ANALYST });
    const headers = { ...MCP_HEADERS, Authorization: `Bearer ${bob}`, 'Mcp-Session-Id': sessionId, 'Mcp-Protocol-Version': '2025-06-18' };
    const before = r.upstream();
    const post = await r.raw('/mcp', {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'remove_app_restriction', arguments: { machineId: RESTRICTED_DEVICE, comment: 'hijack' } } }),
    });
    expect(post.status).toBe(403);
    expect(await post.text()).toMatch(/another user/);
    const del = await r.raw('/mcp', { method: 'DELETE', headers });
    expect(del.status).toBe(403);
    expect(r.upstream()).toEqual(before);
    // Without any token: 401 before the session is even looked at.
    const anonymous = await r.raw('/mcp', { method: 'DELETE', headers: { 'Mcp-Session-Id': sessionId } });
    expect(anonymous.status).toBe(401);

    // The owner's session is intact, also with a fresh token of the same user.
    ada.useToken(await r.entra.userToken({ user: ANALYST }));
    expect((await ada.client.listTools()).tools.length).toBeGreaterThan(0);
    expect(r.http.sessions.size).toBe(1);
    // The owner may end it.
    await ada.transport.terminateSession();
    expect(r.http.sessions.size).toBe(0);
  });

  it('caps the sessions one user may hold, with a clear error; other users are unaffected', async () => {
    const r = await remote({ createMcpServer: plainServer, maxSessionsPerUser: 2 });
    const ada = await r.entra.userToken();
    await r.connect(ada);
    await r.connect(ada);
    const third = await r.raw('/mcp', { method: 'POST', headers: { ...MCP_HEADERS, Authorization: `Bearer ${ada}` }, body: JSON.stringify(INITIALIZE) });
    expect(third.status).toBe(429);
    expect(await third.text()).toMatch(/Too many sessions: ada@contoso\.com .* already holds 2\. Close one/);
    await r.connect(await r.entra.userToken({ user: SECOND_ANALYST }));
    expect(r.http.sessions.size).toBe(3);
  });

  it('closes sessions idle for longer than the idle time; an unknown session is 404', async () => {
    const clock = { now: Date.now() };
    const r = await remote({ createMcpServer: plainServer, sessionIdle: { idleMs: 30 * 60_000 }, now: () => clock.now });
    const ada = await r.connect(await r.entra.userToken());
    const sessionId = ada.transport.sessionId!;
    clock.now += 29 * 60_000;
    expect(await r.http.sessions.sweep()).toEqual([]);
    await ada.client.listTools(); // activity resets the idle time
    clock.now += 29 * 60_000;
    expect(await r.http.sessions.sweep()).toEqual([]);
    clock.now += 2 * 60_000;
    expect(await r.http.sessions.sweep()).toEqual([sessionId]);
    expect(r.http.sessions.size).toBe(0);
    const res = await r.raw('/mcp', {
      method: 'POST',
      headers: { ...MCP_HEADERS, Authorization: `Bearer ${await r.entra.userToken()}`, 'Mcp-Session-Id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(res.status).toBe(404);
  });
});

describe('remote mode: shutdown', () => {
  it('lets a call in flight finish, refuses new work meanwhile, then closes', async () => {
    const r = await remote({ createMcpServer: plainServer });
    const ada = await r.connect(await r.entra.userToken());
    r.sim.injectFault({ method: 'GET', path: '/api/machines' }, { kind: 'delay', ms: 400 });
    const call = ada.tool('find_machine', { name: 'finance-ws-017' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(r.http.inFlight()).toBe(1);
    const shutdown = r.http.shutdown(5_000);
    const late = await r
      .raw('/mcp', { method: 'POST', headers: { ...MCP_HEADERS, Authorization: `Bearer ${await r.entra.userToken()}` }, body: JSON.stringify(INITIALIZE) })
      .then((res) => res.status)
      .catch(() => 'refused');
    expect([503, 'refused']).toContain(late);
    const result = await call;
    expect(result.isError).toBeFalsy();
    expect(await shutdown).toEqual({ drained: true });
    expect(r.http.sessions.size).toBe(0);
  });

  it('gives up waiting after the grace time', async () => {
    const r = await remote({ createMcpServer: plainServer });
    const ada = await r.connect(await r.entra.userToken());
    r.sim.injectFault({ method: 'GET', path: '/api/machines' }, { kind: 'hang' });
    void ada.tool('find_machine', { name: 'finance-ws-017' }).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await r.http.shutdown(200)).toEqual({ drained: false });
  });
});
