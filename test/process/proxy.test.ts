/**
 * Corporate proxies: the built server, spawned over stdio with HTTPS_PROXY / HTTP_PROXY / NO_PROXY, sends
 * its Entra ID sign-in (HTTPS fake) and its Defender calls (HTTP fake) through a CONNECT proxy on
 * loopback, lets NO_PROXY hosts bypass it, and names the proxy (never its credentials) when it refuses.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RESTRICTED_DEVICE, textOf } from '../helpers/harness.js';
import { startConnectProxy } from '../helpers/connect-proxy.js';
import { CLIENT_SECRET, baseEnv, runServer, spawnServer, startFakes } from '../helpers/process.js';

const COMMENT = 'INC-88: lifting through the corporate proxy';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(proxyOpts: Parameters<typeof startConnectProxy>[0] = {}) {
  const f = await startFakes({ identityHeader: 'h' });
  cleanups.push(() => f.sim.close());
  const proxy = await startConnectProxy(proxyOpts);
  cleanups.push(() => proxy.close());
  const env = (extra: Record<string, string>) => ({
    ...baseEnv(),
    AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
    AZURE_CLIENT_ID: '11111111-2222-3333-4444-555555555555',
    AZURE_CLIENT_SECRET: CLIENT_SECRET,
    AZURE_AUTHORITY_HOST: f.authorityHost,
    MDE_API_URL: f.apiUrl,
    MDE_HTTP_TIMEOUT_MS: '5000',
    ...extra,
  });
  const spawn = async (extra: Record<string, string>) => {
    const s = await spawnServer({ env: env(extra), args: ['--dangerously-skip-confirmation'] });
    cleanups.push(() => s.close());
    return s;
  };
  const hostOf = (url: string) => new URL(url).host;
  return { f, proxy, spawn, authority: hostOf(f.authorityHost), api: hostOf(f.apiUrl) };
}

describe('corporate proxy (CONNECT)', () => {
  it('sends the Entra sign-in and the Defender calls through HTTPS_PROXY / HTTP_PROXY', async () => {
    const { f, proxy, spawn, authority, api } = await setup();
    const s = await spawn({ HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url });
    const r = await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'submitted' });
    // The fakes saw the requests, and each destination was reached through a tunnel the proxy opened.
    expect(f.sim.tokenRequests()).toHaveLength(1);
    expect(f.sim.apiRequests('POST')).toHaveLength(1);
    const targets = proxy.connects.map((c) => c.target);
    expect(targets).toContain(authority);
    expect(targets).toContain(api);
    expect(s.stderr()).toContain(`through the proxy ${proxy.url}`);
  });

  it('sends the managed identity token request through the proxy too', async () => {
    const { f, proxy, api } = await setup();
    const identity = await f.sim.listen(); // the identity endpoint on a port of its own, to tell the tunnels apart
    const s = await spawnServer({
      env: { ...baseEnv(), MDE_AUTH_METHOD: 'managed-identity', IDENTITY_ENDPOINT: `${identity}/msi/token`, IDENTITY_HEADER: 'h', MDE_API_URL: f.apiUrl, HTTP_PROXY: proxy.url },
      args: ['--dangerously-skip-confirmation'],
    });
    cleanups.push(() => s.close());
    const r = await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'submitted', machineAction: { requestor: 'system-assigned-identity' } });
    expect(f.sim.tokenRequests()).toHaveLength(1);
    // The identity endpoint first, then Defender (the history read and the POST, each through a tunnel).
    expect([...new Set(proxy.connects.map((c) => c.target))]).toEqual([new URL(identity).host, api]);
  });

  it('honours lower-case variables, and NO_PROXY hosts go direct', async () => {
    const { f, proxy, spawn, authority, api } = await setup();
    const s = await spawn({ https_proxy: proxy.url, http_proxy: proxy.url, no_proxy: `example.org, ${authority}` });
    const r = await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'submitted' });
    expect(f.sim.tokenRequests()).toHaveLength(1);
    expect([...new Set(proxy.connects.map((c) => c.target))]).toEqual([api]);
  });

  it('a proxy that refuses: the error names the proxy and its answer, never its credentials, and nothing is sent', async () => {
    const { f, proxy, spawn, authority } = await setup({ refuseWith: 407 });
    const withCreds = proxy.url.replace('http://', 'http://corp%5Cjdoe:Pr0xy-pa55word@');

    // Entra through the refusing proxy: the sign-in fails, naming the proxy.
    const s1 = await spawn({ HTTPS_PROXY: withCreds, HTTP_PROXY: withCreds });
    const signIn = await s1.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(signIn.isError).toBe(true);
    expect(textOf(signIn)).toContain(`the proxy ${proxy.url} refused to open a tunnel (HTTP 407`);
    expect(f.sim.tokenRequests()).toHaveLength(0);

    // Entra direct (NO_PROXY), Defender through the refusing proxy: a write that was never sent.
    const s2 = await spawn({ HTTPS_PROXY: withCreds, HTTP_PROXY: withCreds, NO_PROXY: authority });
    const write = await s2.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(write.isError).toBe(true);
    expect(textOf(write)).toContain(`Could not reach the Defender API at ${f.apiUrl}: the proxy ${proxy.url} refused to open a tunnel (HTTP 407`);
    expect(textOf(write)).toMatch(/Nothing was sent/);
    expect(f.sim.apiRequests()).toHaveLength(0);

    // The credentials went to the proxy (Basic), and nowhere else.
    expect(proxy.connects[0]!.proxyAuthorization).toBe(`Basic ${Buffer.from('corp\\jdoe:Pr0xy-pa55word').toString('base64')}`);
    const said = [textOf(signIn), textOf(write), s1.stderr(), s2.stderr()].join('\n');
    expect(said).not.toContain('Pr0xy-pa55word');
    expect(said).not.toContain('jdoe');
  });

  it('a proxy that cannot be reached: the error names it, for the sign-in and for Defender', async () => {
    const { f, spawn, authority } = await setup();
    const closed = await startConnectProxy();
    await closed.close(); // nothing listens on its port any more
    const s1 = await spawn({ HTTPS_PROXY: closed.url, HTTP_PROXY: closed.url });
    const signIn = await s1.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(textOf(signIn)).toContain(`the proxy ${closed.url} could not be reached (ECONNREFUSED)`);
    const s2 = await spawn({ HTTPS_PROXY: closed.url, HTTP_PROXY: closed.url, NO_PROXY: authority });
    const write = await s2.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(textOf(write)).toContain(`the proxy ${closed.url} could not be reached (ECONNREFUSED)`);
    expect(f.sim.apiRequests()).toHaveLength(0);
  });

  it('a proxy URL that cannot be used stops the server at start, naming the variable', () => {
    const r = runServer([], { ...baseEnv(), HTTPS_PROXY: 'ftp://jdoe:secret@proxy.example.com', AZURE_TENANT_ID: 'contoso.onmicrosoft.com', AZURE_CLIENT_ID: '11111111-2222-3333-4444-555555555555', AZURE_CLIENT_SECRET: 'x' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('HTTPS_PROXY');
    expect(r.stderr).not.toContain('secret');
    expect(r.stdout).toBe('');
  });
});
