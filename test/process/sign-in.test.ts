/**
 * Every sign-in method, with the built server over stdio: managed identity (system- and user-assigned,
 * against a loopback fake of the App Service identity endpoint: never the instance metadata address) and
 * delegated device code sign-in (HTTPS fake of Entra ID), with its prompt reaching the human through
 * stderr and MCP logging, and its on-disk cache.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SIM_ANALYST } from '../helpers/fake-tenant.js';
import { RESTRICTED_DEVICE, PENDING_DEVICE } from '../helpers/harness.js';
import { baseEnv, spawnServer, spawnTracked, startFakes } from '../helpers/process.js';

const COMMENT = 'INC-4000: lifting after clean-up';
const IDENTITY_HEADER = 'identity-header-secret-value';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});
async function fakes() {
  const f = await startFakes({ identityHeader: IDENTITY_HEADER });
  cleanups.push(() => f.sim.close());
  return f;
}
const spawn = (opts: Parameters<typeof spawnServer>[0]) => spawnTracked(cleanups, opts);

describe('managed identity', () => {
  it('system-assigned: takes a token from IDENTITY_ENDPOINT for the Defender resource, once', async () => {
    const f = await fakes();
    const s = await spawn({
      env: { ...baseEnv(), MDE_AUTH_METHOD: 'managed-identity', IDENTITY_ENDPOINT: `${f.apiUrl}/msi/token`, IDENTITY_HEADER, MDE_API_URL: f.apiUrl },
      args: ['--dangerously-skip-confirmation'],
    });
    const first = await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    await s.call({ machineId: PENDING_DEVICE, comment: COMMENT });
    expect(first.structuredContent).toMatchObject({ outcome: 'submitted', machineAction: { requestor: 'system-assigned-identity' } });
    const tokenRequests = f.sim.tokenRequests();
    expect(tokenRequests).toHaveLength(1);
    expect(tokenRequests[0]!.method).toBe('GET');
    expect(tokenRequests[0]!.query.resource).toBe('https://api.securitycenter.microsoft.com');
    expect(tokenRequests[0]!.headers['x-identity-header']).toBe(IDENTITY_HEADER);
    expect(tokenRequests[0]!.query.client_id).toBeUndefined();
    expect(s.stderr()).toMatch(/sign-in: managed identity \(system-assigned\)/);
  });

  it('user-assigned: AZURE_CLIENT_ID picks the identity', async () => {
    const f = await fakes();
    const s = await spawn({
      env: { ...baseEnv(), MDE_AUTH_METHOD: 'managed-identity', AZURE_CLIENT_ID: 'c0ffee00-1111-2222-3333-444455556666', IDENTITY_ENDPOINT: `${f.apiUrl}/msi/token`, IDENTITY_HEADER, MDE_API_URL: f.apiUrl },
      args: ['--dangerously-skip-confirmation'],
    });
    const r = await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'submitted', machineAction: { requestor: 'c0ffee00-1111-2222-3333-444455556666' } });
    expect(f.sim.tokenRequests()[0]!.query.client_id).toBe('c0ffee00-1111-2222-3333-444455556666');
  });

  it('a refused identity is an authentication error, and nothing reaches Defender', async () => {
    const f = await fakes();
    const s = await spawn({
      env: { ...baseEnv(), MDE_AUTH_METHOD: 'managed-identity', IDENTITY_ENDPOINT: `${f.apiUrl}/msi/token`, IDENTITY_HEADER: 'wrong-header', MDE_API_URL: f.apiUrl },
      args: ['--dangerously-skip-confirmation'],
    });
    const r = await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect((r.content[0] as { text: string }).text).toMatch(/Managed identity sign-in failed/);
    expect(f.sim.apiRequests()).toHaveLength(0);
  });
});

describe('network guard', () => {
  it('refuses non-loopback connections in tests: managed identity without IDENTITY_ENDPOINT cannot reach the metadata address', async () => {
    const net = await import('node:net');
    expect(() => net.connect(80, '169.254.169.254')).toThrow(/loopback/);
    const f = await fakes();
    const s = await spawn({ env: { ...baseEnv(), MDE_AUTH_METHOD: 'managed-identity', MDE_API_URL: f.apiUrl, MDE_HTTP_TIMEOUT_MS: '3000' }, args: ['--dangerously-skip-confirmation'] });
    const r = await s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect((r.content[0] as { text: string }).text).toMatch(/Managed identity sign-in failed/);
    expect(f.sim.apiRequests()).toHaveLength(0);
  });
});

describe('delegated device code sign-in', () => {
  it('prompts through stderr and MCP logging, acts as the analyst, and reuses the 0600 cache across restarts', async () => {
    const f = await fakes();
    const dir = mkdtempSync(join(tmpdir(), 'mde-cache-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const cachePath = join(dir, 'tokens.json');
    const env = {
      ...baseEnv(),
      MDE_AUTH_METHOD: 'device-code',
      AZURE_TENANT_ID: 'contoso.onmicrosoft.com',
      AZURE_CLIENT_ID: '22222222-3333-4444-5555-666666666666',
      AZURE_AUTHORITY_HOST: f.authorityHost,
      MDE_API_URL: f.apiUrl,
      MDE_TOKEN_CACHE_PATH: cachePath,
    };
    const s = await spawn({ env, args: ['--dangerously-skip-confirmation'] });
    const call = s.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    // The human reads the prompt in the client and signs in elsewhere.
    const deadline = Date.now() + 10_000;
    while (!s.logs.some((l) => l.includes('enter the code')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    const prompt = s.logs.find((l) => l.includes('enter the code'))!;
    const code = prompt.match(/enter the code (\w+)/)![1]!;
    expect(s.stderr()).toContain(code);
    expect(f.sim.approveDeviceCode(code)).toBe(true);

    const r = await call;
    expect(r.structuredContent).toMatchObject({ outcome: 'submitted', machineAction: { requestor: SIM_ANALYST } });
    expect(s.stderr()).toMatch(/sign-in: delegated device code sign-in/);
    expect(statSync(cachePath).mode & 0o777).toBe(0o600);
    const deviceCodeRequests = () => f.sim.requests.filter((q) => q.path.endsWith('/devicecode'));
    expect(deviceCodeRequests()).toHaveLength(1);
    await s.close();

    // A new server process signs in from the cache: no new prompt.
    const again = await spawn({ env, args: ['--dangerously-skip-confirmation'] });
    const second = await again.call({ machineId: PENDING_DEVICE, comment: COMMENT });
    expect(second.structuredContent).toMatchObject({ outcome: 'already_pending' });
    expect(deviceCodeRequests()).toHaveLength(1);
    expect(again.logs.some((l) => l.includes('enter the code'))).toBe(false);
  });
});
