/**
 * Remote mode under attack: what a hostile (but signed-in) caller or a careless client can do at the
 * edge, each case found by review and kept as a regression test.
 */
import { describe, expect, it } from 'vitest';
import { simulatorTokenProvider } from '../../src/auth/msal.js';
import { DefenderClient } from '../../src/defender/client.js';
import type { Logger } from '../../src/log.js';
import { createServer } from '../../src/server.js';
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

describe('remote mode hardening: sessions', () => {
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
