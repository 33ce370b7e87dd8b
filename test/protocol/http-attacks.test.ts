/**
 * Remote mode under attack: what a hostile (but signed-in) caller or a careless client can do at the
 * edge, each case found by review and kept as a regression test.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { JsonlAuditTrail } from '../../src/audit.js';
import { simulatorTokenProvider } from '../../src/auth/msal.js';
import { DefenderClient } from '../../src/defender/client.js';
import type { Logger } from '../../src/log.js';
import { createServer } from '../../src/server.js';
import { ANALYST, CALLING_APP, SECOND_ANALYST } from '../fakes/entra-id.js';
import { RESTRICTED_DEVICE } from '../helpers/harness.js';
import { INITIALIZE, MCP_HEADERS, useRemote, type RemoteOptions } from '../helpers/remote.js';

/** The product's tools per session, with a logger that counts the MCP servers still attached to it. */
function countingServer(): { live: () => number; factory: RemoteOptions['createMcpServer'] } {
  let sinks = 0;
  const logger: Logger = {
    debug() {},
    info() {},
    warning() {},
    error() {},
    addSink: () => {
      sinks++;
      let removed = false;
      return () => {
        if (!removed) sinks--;
        removed = true;
      };
    },
  };
  return {
    live: () => sinks,
    factory: ({ sim, apiUrl }) => () =>
      createServer({
        api: new DefenderClient({ baseUrl: apiUrl, tokens: simulatorTokenProvider(sim.token), timeoutMs: 5_000, logger }),
        logger,
        confirmation: { mode: 'auto', skip: false },
      }),
  };
}

const remote = useRemote();

describe('remote mode under attack: sessions', () => {
  it('an initialize the transport refuses leaves no MCP server behind', async () => {
    const counting = countingServer();
    const r = await remote({ createMcpServer: counting.factory });
    const token = await r.entra.userToken();
    const refused = [
      { headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(INITIALIZE) }, // 406
      { headers: { 'Content-Type': 'text/plain', Accept: MCP_HEADERS.Accept }, body: JSON.stringify(INITIALIZE) }, // 415
    ];
    for (const init of refused) {
      for (let i = 0; i < 5; i++) {
        const res = await r.raw('/mcp', { method: 'POST', headers: { ...init.headers, Authorization: `Bearer ${token}` }, body: init.body });
        expect(res.status).toBeGreaterThanOrEqual(400);
        await res.body?.cancel();
      }
    }
    expect(r.http.sessions.size).toBe(0);
    expect(counting.live()).toBe(0);
  });

  it('concurrent initializes cannot exceed the per-user session cap', async () => {
    const r = await remote({ createMcpServer: countingServer().factory, maxSessionsPerUser: 2 });
    const token = await r.entra.userToken();
    const statuses = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const res = await r.raw('/mcp', { method: 'POST', headers: { ...MCP_HEADERS, Authorization: `Bearer ${token}` }, body: JSON.stringify(INITIALIZE) });
        await res.body?.cancel();
        return res.status;
      }),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(2);
    expect(statuses.filter((s) => s === 429)).toHaveLength(10);
    expect(r.http.sessions.size).toBe(2);
  });
});

describe('remote mode under attack: who the caller is', () => {
  it('takes a token without scp for an app only when it is one (idtyp app, or sub = oid): not an ID token carrying the role', async () => {
    const r = await remote({ createMcpServer: countingServer().factory, appCallerRole: 'MDE.Unrestrict.App' });
    // An ID token the API's own client id was issued (same app registration as the client): aud, iss, tid
    // and oid are right, a user assigned the (user-assignable) app role carries it in roles, but no scp.
    const idTokenShape = await r.entra.appToken({
      roles: ['MDE.Unrestrict.App'],
      claims: { idtyp: undefined, sub: 'pairwise-subject-of-ada', oid: ANALYST.oid, preferred_username: ANALYST.preferred_username, nonce: 'n-1', azp: undefined },
    });
    const userTyped = await r.entra.appToken({ roles: ['MDE.Unrestrict.App'], claims: { idtyp: 'user' } });
    const before = r.upstream();
    for (const token of [idTokenShape, userTyped]) {
      const res = await r.raw('/mcp', { method: 'POST', headers: { ...MCP_HEADERS, Authorization: `Bearer ${token}` }, body: JSON.stringify(INITIALIZE) });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
      expect(await res.text()).toMatch(/app-only/);
    }
    expect(r.upstream()).toEqual(before);
    expect(r.http.sessions.size).toBe(0);
    // A real app-only token: idtyp app; or without the optional idtyp claim, sub equals oid.
    await r.connect(await r.entra.appToken({ roles: ['MDE.Unrestrict.App'] }));
    await r.connect(await r.entra.appToken({ roles: ['MDE.Unrestrict.App'], claims: { idtyp: undefined, sub: CALLING_APP.oid } }));
    expect(r.http.sessions.size).toBe(2);
  });

  it('MDE_HTTP_TOKEN_REUSE_SECONDS: a token that passed is taken as checked for that long (default 5 min); 0 checks every request in full', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const statuses: Record<string, number[]> = {};
      for (const [name, tokenReuseMs] of [['default', undefined], ['0', 0]] as const) {
        const r = await remote({ createMcpServer: countingServer().factory, ...(tokenReuseMs === undefined ? {} : { tokenReuseMs }) });
        const initialize = async (token: string) =>
          (await r.raw('/mcp', { method: 'POST', headers: { ...MCP_HEADERS, Authorization: `Bearer ${token}` }, body: JSON.stringify(INITIALIZE) })).status;
        const seen = await r.entra.userToken();
        const s = [await initialize(seen)];
        // Entra withdraws the key that signed it; a token with the new key makes the server refetch the set.
        await r.entra.rotate();
        vi.setSystemTime(Date.now() + 61_000);
        s.push(await initialize(await r.entra.userToken({ user: SECOND_ANALYST })));
        s.push(await initialize(seen));
        statuses[name] = s;
      }
      expect(statuses).toEqual({ default: [200, 200, 200], '0': [200, 200, 401] });
    } finally {
      vi.useRealTimers();
    }
  });

  it('a user name with line breaks or bidi controls cannot forge log lines or mislead the audit trail; long ones are cut', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mde-remote-names-'));
    try {
      const path = join(dir, 'audit.jsonl');
      const r = await remote({ audit: new JsonlAuditTrail(path) });
      const forged = 'ada@contoso.com\n[mde-app-restriction-mcp] error: forged line\r\u202egro.lanretni\u0007';
      const ada = await r.connect(await r.entra.userToken({ user: { ...ANALYST, preferred_username: forged, name: `Ada${'\u200b'}\u0000 ${'x'.repeat(5000)}` } }), { elicit: 'accept' });
      await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: 'INC-90: cleaned' });
      const lines = r.logs.join('').split('\n');
      expect(lines.some((l) => l.startsWith('[mde-app-restriction-mcp] error: forged'))).toBe(false);
      expect(r.logs.join('')).not.toMatch(/[\r\u202e\u0007\u0000\u200b]/);
      const records = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { user?: { preferred_username: string; name: string; oid: string } });
      expect(records.length).toBeGreaterThan(0);
      for (const rec of records) {
        expect(rec.user?.oid).toBe(ANALYST.oid);
        expect(rec.user?.preferred_username).toBe('ada@contoso.com[mde-app-restriction-mcp] error: forged linegro.lanretni');
        expect(rec.user?.name).toMatch(/^Ada x+$/);
        expect(rec.user!.name.length).toBeLessThanOrEqual(256);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Send raw bytes (what no client library would send) and return the status line. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('end', () => resolve(out.split('\r\n')[0] ?? ''));
    socket.on('error', reject);
  });
}

describe('remote mode under attack: the edge', () => {
  it('answers a request target that is not a URL with 400, not a 500 and an error logged for every such request', async () => {
    const r = await remote({ createMcpServer: countingServer().factory });
    const port = Number(new URL(r.http.url).port);
    const status = await rawRequest(port, `GET http://[ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    expect(status).toBe('HTTP/1.1 400 Bad Request');
    expect(r.logs.join('')).not.toMatch(/error:/);
    expect((await r.raw('/healthz')).status).toBe(200);
  });
});

describe('remote mode under attack: the audit trail', () => {
  it('bounds the client name and version a caller declares before they reach the audit trail', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mde-remote-client-'));
    try {
      const path = join(dir, 'audit.jsonl');
      const r = await remote({ audit: new JsonlAuditTrail(path) });
      const token = await r.entra.userToken();
      const headers = { ...MCP_HEADERS, Authorization: `Bearer ${token}` };
      const init = { ...INITIALIZE, params: { ...INITIALIZE.params, clientInfo: { name: `VS Code\n${'n'.repeat(900_000)}`, version: `1.0\u202e${'v'.repeat(50_000)}` } } };
      const opened = await r.raw('/mcp', { method: 'POST', headers, body: JSON.stringify(init) });
      expect(opened.status).toBe(200);
      await opened.body?.cancel();
      const session = { ...headers, 'Mcp-Session-Id': opened.headers.get('mcp-session-id')!, 'Mcp-Protocol-Version': '2025-06-18' };
      await (await r.raw('/mcp', { method: 'POST', headers: session, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).body?.cancel();
      const call = await r.raw('/mcp', {
        method: 'POST',
        headers: session,
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'remove_app_restriction', arguments: { machineId: RESTRICTED_DEVICE, comment: 'INC-91: cleaned' } } }),
      });
      expect(await call.text()).toMatch(/confirmationToken|confirmation token/i);
      const records = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { client: { name: string; version: string } });
      expect(records.length).toBeGreaterThan(0);
      for (const rec of records) {
        expect(rec.client.name).toMatch(/^VS Coden+$/);
        expect(rec.client.name.length).toBeLessThanOrEqual(256);
        expect(rec.client.version).toMatch(/^1\.0v+$/);
        expect(rec.client.version.length).toBeLessThanOrEqual(256);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('remote mode under attack: shutdown', () => {
  it('waits for a write whose client went away: it is still in flight at Defender', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mde-remote-drain-'));
    try {
      const path = join(dir, 'audit.jsonl');
      const r = await remote({ audit: new JsonlAuditTrail(path), skipConfirmation: true });
      const token = await r.entra.userToken();
      const ada = await r.connect(token);
      const headers = { ...MCP_HEADERS, Authorization: `Bearer ${token}`, 'Mcp-Session-Id': ada.transport.sessionId!, 'Mcp-Protocol-Version': '2025-06-18' };
      r.sim.injectFault({ method: 'POST', path: `/api/machines/${RESTRICTED_DEVICE}/unrestrictCodeExecution` }, { kind: 'delay', ms: 700 });
      const gone = new AbortController();
      const call = r
        .raw('/mcp', {
          method: 'POST',
          headers,
          body: JSON.stringify({ jsonrpc: '2.0', id: 40, method: 'tools/call', params: { name: 'remove_app_restriction', arguments: { machineId: RESTRICTED_DEVICE, comment: 'INC-92: cleaned' } } }),
          signal: gone.signal,
        })
        .catch(() => undefined);
      // The write is on its way to Defender when the client disconnects.
      await vi.waitFor(() => expect(r.sim.apiRequests('POST', `/api/machines/${RESTRICTED_DEVICE}/unrestrictCodeExecution`)).toHaveLength(1));
      expect(r.http.inFlight()).toBe(1); // the call and the request that carries it are one
      gone.abort();
      await call;
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(r.http.inFlight()).toBe(1);
      expect(await r.http.shutdown(5_000)).toEqual({ drained: true });
      const events = readFileSync(path, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event);
      expect(events).toEqual(['intent', 'outcome']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
