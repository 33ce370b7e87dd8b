/**
 * The production wiring, in process: the Config that parseConfig makes, put together by assemble() as
 * cli.ts does, served by createServer to a real MCP client over an in-memory transport. What a user gets
 * from `--simulator`, down to the audit file and the start-up line, without spawning a process.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { assemble, type Assembled } from '../../src/assemble.js';
import { parseConfig } from '../../src/config.js';
import { createStderrLogger } from '../../src/log.js';
import { createServer } from '../../src/server.js';

const opened: Array<{ app: Assembled; client: Client }> = [];
afterEach(async () => {
  for (const { app, client } of opened.splice(0)) {
    await client.close();
    await app.close();
  }
});

async function start(argv: string[], env: Record<string, string> = {}) {
  const parsed = parseConfig(argv, env);
  if (parsed.kind !== 'run') throw new Error(parsed.kind);
  const logs: string[] = [];
  const logger = createStderrLogger({ level: 'info', write: (line) => void logs.push(line) });
  const app = await assemble(parsed.config, { logger, env: {}, secrets: [] });
  const client = new Client({ name: 'assemble-test', version: '1.0.0' });
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await createServer(app.deps).connect(serverTransport);
  await client.connect(clientTransport);
  opened.push({ app, client });
  const tool = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;
  return { app, client, logs, tool, config: parsed.config };
}

describe('assemble: the wiring cli.ts serves', () => {
  it('--simulator with an audit log: a token-confirmed lift goes out once, audited before and after; the banner names what runs', async () => {
    const audit = join(mkdtempSync(join(tmpdir(), 'mde-assemble-')), 'audit.jsonl');
    const { app, tool, logs } = await start(['--simulator', '--audit-log', audit]);
    expect(app.banner('stdio')).toMatch(/^mde-app-restriction-mcp \S+ on stdio: API http:\/\/127\.0\.0\.1:\d+; sign-in: .+; confirmation: auto; audit: .+audit\.jsonl; budget: 100\/min, 1500\/h; state: .+; replica /);
    expect(logs.some((l) => l.includes('Simulator mode: serving a simulated Defender tenant'))).toBe(true);

    const found = (await tool('find_machine', { name: 'finance-ws-017.contoso.com' })).structuredContent as { devices: Array<{ machineId: string }> };
    const machineId = found.devices[0]!.machineId;
    const first = await tool('remove_app_restriction', { machineId, comment: 'INC-7: cleaned' });
    const { confirmation } = first.structuredContent as { outcome: string; confirmation: { token: string } };
    expect(first.structuredContent).toMatchObject({ outcome: 'confirmation_required' });
    const second = await tool('remove_app_restriction', { machineId, comment: 'INC-7: cleaned', confirmationToken: confirmation.token });
    expect(second.structuredContent).toMatchObject({ outcome: 'submitted', confirmedBy: 'token' });
    const replay = await tool('remove_app_restriction', { machineId, comment: 'INC-7: cleaned', confirmationToken: confirmation.token });
    expect(replay.isError).toBe(true);

    const events = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; confirmation: string });
    expect(events.map((e) => `${e.event}:${e.confirmation}`)).toEqual(['not_sent:token_issued', 'intent:token_redeemed', 'outcome:token_redeemed', 'not_sent:token_rejected']);
  });

  it('remote mode with the two-person rule: the approval tools are registered, the banner names the rule and the shared budget', async () => {
    const { app, client } = await start(['--simulator', '--transport', 'http', '--http-auth', 'simulated-users', '--approval', 'two-person']);
    expect(app.deps.approvals?.service.settings.approverRole).toBe('MDE.Approver');
    expect(app.connection.userTokens).toBeTypeOf('function');
    expect(app.banner('http://127.0.0.1:1/mcp')).toMatch(/sign-in: SIMULATED users .*approval: two-person \(role MDE\.Approver, expires after 60 min\); .*budget: 100\/min, 1500\/h \(shared by all callers\); state: /);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(['approve_action', 'reject_action', 'get_approval', 'list_pending_approvals']));
  });

  it('--read-only registers only the read tools; a comment pattern is compiled once here', async () => {
    const { app, client } = await start(['--simulator', '--read-only', '--comment-pattern', '^INC-\\d+']);
    expect(app.deps.policy?.commentPattern?.test('INC-12: cleaned')).toBe(true);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).not.toContain('remove_app_restriction');
    expect(names).toContain('find_machine');
  });
});
