/**
 * The built server in remote mode (`--transport http`), spawned as a process: the start-up line names the
 * endpoint, Entra sign-in and On-Behalf-Of against the HTTPS fake of Entra ID, the simulator over HTTP
 * without sign-in, TLS served by the server itself, refusals at start, and SIGTERM with a call in flight.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeTenant } from '../helpers/fake-tenant.js';
import { ANALYST, API_CLIENT_ID, API_SECRET, FakeEntra } from '../fakes/entra-id.js';
import { RESTRICTED_DEVICE, textOf, tlsFixture } from '../helpers/harness.js';
import { CLIENT_SECRET, ENTRY, baseEnv, runServer } from '../helpers/process.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Running {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Spawn the server and wait for the endpoint in its start-up line. */
async function startServer(args: string[], env: Record<string, string>): Promise<Running> {
  const child = spawn(process.execPath, [ENTRY, '--transport', 'http', '--port', '0', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      const m = stderr.match(/on (https?:\/\/127\.0\.0\.1:\d+\/mcp)/);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening:\n${stderr}`)));
  });
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
    expect(stdout).toBe(''); // stdout is not used in HTTP mode either
  });
  return { child, url, stderr: () => stderr, exited };
}

async function connect(url: string, token?: string) {
  const client = new Client({ name: 'process-http-client', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), token ? { requestInit: { headers: { Authorization: `Bearer ${token}` } } } : {});
  await client.connect(transport);
  cleanups.push(() => client.close().catch(() => undefined));
  return {
    client,
    tool: async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult,
  };
}

async function liveFakes() {
  const entra = new FakeEntra();
  await entra.start();
  const sim = new FakeTenant({ clientSecret: CLIENT_SECRET });
  const apiUrl = await sim.listen();
  entra.onIssue = (token, who) => sim.acceptToken(token, who);
  cleanups.push(async () => {
    await sim.close();
    await entra.close();
  });
  const env = {
    ...baseEnv(),
    AZURE_TENANT_ID: entra.tenant,
    AZURE_CLIENT_ID: API_CLIENT_ID,
    AZURE_CLIENT_SECRET: API_SECRET,
    AZURE_AUTHORITY_HOST: entra.authorityHost,
    MDE_API_URL: apiUrl,
  };
  return { entra, sim, env };
}

describe('remote mode, as a process', () => {
  it('signs callers in with Entra ID and calls Defender On-Behalf-Of them', async () => {
    const { entra, sim, env } = await liveFakes();
    const server = await startServer(['--dangerously-skip-confirmation'], env);
    expect(server.stderr()).toMatch(/sign-in: Entra ID tenant .* On-Behalf-Of each user/);
    expect(server.stderr()).not.toContain(API_SECRET);

    const unauthenticated = await fetch(server.url, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' }, body: '{}' });
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.headers.get('www-authenticate')).toContain('resource_metadata=');

    const token = await entra.userToken();
    const ada = await connect(server.url, token);
    const result = await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: 'INC-90: cleaned' });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(entra.oboIssued.map((o) => o.assertion)).toEqual([token]);
    const oboToken = entra.oboIssued[0]!.accessToken;
    for (const r of sim.apiRequests()) expect(r.headers.authorization).toBe(`Bearer ${oboToken}`);
    expect(JSON.stringify(sim.requests)).not.toContain(token);
    expect(sim.machineActions().find((a) => a.type === 'UnrestrictCodeExecution' && a.machineId === RESTRICTED_DEVICE)?.requestor).toBe(ANALYST.preferred_username);
    expect(server.stderr()).not.toContain(token);
    expect(server.stderr()).not.toContain(oboToken);
  });

  it('SIGTERM: stops accepting, lets the call in flight finish, exits 0', async () => {
    const { entra, sim, env } = await liveFakes();
    const server = await startServer(['--dangerously-skip-confirmation'], env);
    const ada = await connect(server.url, await entra.userToken());
    await ada.tool('find_machine', { name: 'finance-ws-017' }); // warm: keys and OBO token cached
    sim.injectFault({ method: 'POST', path: 'unrestrictCodeExecution' }, { kind: 'delay', ms: 1_500 });
    const arrived = new Promise<void>((resolve) => (sim.onRequest = (r) => r.method === 'POST' && resolve()));
    const call = ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: 'INC-91: cleaned' });
    await arrived;
    server.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    const late = await fetch(new URL('/readyz', server.url)).then((r) => r.status, () => 'refused');
    expect([503, 'refused']).toContain(late);
    const result = await call;
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(result.structuredContent).toMatchObject({ outcome: 'submitted' });
    expect(await server.exited).toBe(0);
    expect(server.stderr()).toMatch(/SIGTERM: no new requests; waiting up to 25 s for 1 call\(s\) in flight/);
    expect(sim.apiRequests('POST')).toHaveLength(1);
  });

  it('--simulator --transport http serves on loopback without sign-in, and TLS when given a certificate', async () => {
    const plain = await startServer(['--simulator'], baseEnv());
    expect(plain.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    expect(plain.stderr()).toMatch(/sign-in: none \(MDE_HTTP_AUTH=none, loopback only\)/);
    const anyone = await connect(plain.url);
    expect((await anyone.tool('find_machine', { name: 'finance-ws-017' })).isError).toBeFalsy();
    expect((await fetch(new URL('/healthz', plain.url))).status).toBe(200);

    const tls = await startServer(['--simulator', '--tls-cert-path', tlsFixture('server.pem'), '--tls-key-path', tlsFixture('server.key')], baseEnv());
    expect(tls.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const overTls = await connect(tls.url);
    expect((await overTls.client.listTools()).tools.length).toBeGreaterThan(0);
  });

  it('refuses at start what cannot be served safely', () => {
    const none = runServer(['--transport', 'http', '--http-auth', 'none', '--host', '10.1.2.3'], { ...baseEnv(), AZURE_TENANT_ID: 't', AZURE_CLIENT_ID: 'c', AZURE_CLIENT_SECRET: 's' });
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/MDE_HTTP_AUTH=none serves without sign-in, so it is refused on 10\.1\.2\.3/);
    const badTls = runServer(['--simulator', '--transport', 'http', '--port', '0', '--tls-cert-path', '/nonexistent.pem', '--tls-key-path', '/nonexistent.key'], baseEnv());
    expect(badTls.status).toBe(2);
    expect(badTls.stderr).toMatch(/MDE_HTTP_TLS_CERT_PATH points at \/nonexistent\.pem, which cannot be read/);
  });
});
