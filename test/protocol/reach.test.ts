/** The companion tools, logging notifications and read-only mode, through a real MCP client. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { JsonlAuditTrail } from '../../src/audit.js';
import { TOOLS } from '../../src/server.js';
import { defineTool } from '../../src/tools/define.js';
import { PENDING_DEVICE, RESTRICTED_DEVICE, useHarness, textOf, type Harness, type HarnessOptions } from '../helpers/harness.js';

const COMMENT = 'INC-3100: lifting after clean-up';
const harness = useHarness();

const READ_TOOLS = ['find_machine', 'get_machine_action', 'list_machine_actions'];
const WRITE_TOOLS = ['remove_app_restriction', 'cancel_machine_action'];

describe('tools/list', () => {
  it('declares all four hints on every tool; read tools are read-only, write tools destructive', async () => {
    const x = await harness();
    const { tools } = await x.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([...READ_TOOLS, ...WRITE_TOOLS].sort());
    for (const t of tools) {
      const a = t.annotations!;
      for (const hint of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const) expect(typeof a[hint], `${t.name}.${hint}`).toBe('boolean');
      expect(a.title, t.name).toBeTruthy();
      expect(t.outputSchema, t.name).toBeDefined();
      expect(a.readOnlyHint, t.name).toBe(READ_TOOLS.includes(t.name));
      expect(a.destructiveHint, t.name).toBe(WRITE_TOOLS.includes(t.name));
    }
  });

  it('matches the reviewed contract snapshot (names, schemas, hints): a change shows in review', async () => {
    const x = await harness();
    const { tools } = await x.client.listTools();
    await expect(`${JSON.stringify(tools, null, 2)}\n`).toMatchFileSnapshot('./__snapshots__/tools-list.json');
  });

  it('--read-only does not register the write tools at all', async () => {
    const x = await harness({ readOnly: true });
    const { tools } = await x.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([...READ_TOOLS].sort());
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/not found/i);
    expect(x.sim.requests).toHaveLength(0);
  });

  it('read-only mode follows each tool\'s own readOnlyHint: a newly added write tool is left out too', async () => {
    let ran = 0;
    const isolateEverything = defineTool({
      name: 'isolate_everything',
      title: 'A new write tool nobody listed anywhere',
      description: 'Test-only.',
      inputSchema: { machineId: z.string() },
      outputSchema: {},
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
      handler: async () => {
        ran++;
        return { content: [{ type: 'text', text: 'done' }] };
      },
    });
    const full = await harness({ tools: [...TOOLS, isolateEverything] });
    expect((await full.client.listTools()).tools.map((t) => t.name)).toContain('isolate_everything');
    const readOnly = await harness({ readOnly: true, tools: [...TOOLS, isolateEverything] });
    expect((await readOnly.client.listTools()).tools.map((t) => t.name).sort()).toEqual([...READ_TOOLS].sort());
    const r = await readOnly.tool('isolate_everything', { machineId: RESTRICTED_DEVICE });
    expect(r.isError).toBe(true);
    expect(ran).toBe(0);
  });
});

describe('find_machine', () => {
  it('resolves an exact host name to the device, its group and its restriction state', async () => {
    const x = await harness();
    const r = await x.tool('find_machine', { name: 'finance-ws-017.contoso.com' });
    expect(r.isError).toBeFalsy();
    const out = r.structuredContent as { matchedBy: string; devices: { machineId: string; deviceGroup: string; appExecution: { state: string; lastAction: { type: string; status: string } } }[] };
    expect(out.matchedBy).toBe('exact');
    expect(out.devices).toHaveLength(1);
    expect(out.devices[0]).toMatchObject({
      machineId: RESTRICTED_DEVICE,
      deviceGroup: 'Finance Workstations',
      appExecution: { state: 'restricted', lastAction: { type: 'RestrictCodeExecution', status: 'Succeeded' }, pendingAction: null },
    });
    const gets = x.sim.apiRequests('GET');
    expect(gets[0]!.path).toBe('/api/machines');
    expect(gets[0]!.query.$filter).toBe("computerDnsName eq 'finance-ws-017.contoso.com'");
    expect(gets[1]!.query.$filter).toBe(`machineId eq '${RESTRICTED_DEVICE}'`);
  });

  it('falls back to a prefix and lists every match when the name is ambiguous', async () => {
    const x = await harness();
    const r = await x.tool('find_machine', { name: 'finance-ws' });
    const out = r.structuredContent as { matchedBy: string; devices: { hostName: string; appExecution: { state: string } }[] };
    expect(out.matchedBy).toBe('prefix');
    expect(out.devices.map((d) => [d.hostName, d.appExecution.state]).sort()).toEqual([
      ['finance-ws-017.contoso.com', 'restricted'],
      ['finance-ws-018.contoso.com', 'unknown'],
    ]);
    expect(textOf(r)).toMatch(/Several devices match/);
    expect(x.sim.apiRequests('GET', '/api/machines').map((q) => q.query.$filter)).toEqual([
      "computerDnsName eq 'finance-ws'",
      "startswith(computerDnsName,'finance-ws')",
    ]);
  });

  it('answers "none found" as a result, not an error', async () => {
    const x = await harness();
    const r = await x.tool('find_machine', { name: 'no-such-host' });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toEqual({ devices: [], matchedBy: 'none' });
    expect(textOf(r)).toMatch(/No device in Defender matches "no-such-host"/);
  });

  it('shows a pending unrestrict, and the new state once the action succeeds', async () => {
    const x = await harness({ skip: true });
    const pending = await x.tool('find_machine', { name: 'hr-laptop-113.contoso.com' });
    expect(pending.structuredContent).toMatchObject({ devices: [{ appExecution: { state: 'restricted', pendingAction: { type: 'UnrestrictCodeExecution', status: 'Pending' } } }] });

    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    x.clock.now += 6_000; // the simulated device checks in
    const after = await x.tool('find_machine', { name: 'finance-ws-017.contoso.com' });
    expect(after.structuredContent).toMatchObject({ devices: [{ appExecution: { state: 'not_restricted', lastAction: { type: 'UnrestrictCodeExecution', status: 'Succeeded' } } }] });
  });

  it('refuses names that are not host names, before any request', async () => {
    const x = await harness();
    for (const name of ["x' or 1 eq 1", '', 'a/b', '*']) {
      const r = await x.tool('find_machine', { name });
      expect(r.isError, name).toBe(true);
    }
    expect(x.sim.requests).toHaveLength(0);
  });
});

describe('get_machine_action', () => {
  async function submit(x: Harness): Promise<string> {
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const out = r.structuredContent as { machineAction: { id: string }; followUp: unknown };
    expect(out.followUp).toEqual({ tool: 'get_machine_action', arguments: { actionId: out.machineAction.id, waitForCompletion: true } });
    expect(textOf(r)).toContain('get_machine_action');
    return out.machineAction.id;
  }

  it('reads one action by id', async () => {
    const x = await harness({ skip: true });
    const id = await submit(x);
    const r = await x.tool('get_machine_action', { actionId: id.toUpperCase() });
    expect(r.structuredContent).toMatchObject({ final: false, machineAction: { id, status: 'Pending', type: 'UnrestrictCodeExecution' } });
    expect(x.sim.apiRequests('GET').at(-1)!.path).toBe(`/api/machineactions/${id}`);
  });

  it('waits for completion, with progress notifications, on a fake clock', async () => {
    const x = await harness({ skip: true });
    const id = await submit(x);
    const progress: { progress: number; message?: string }[] = [];
    const r = await x.client.callTool(
      { name: 'get_machine_action', arguments: { actionId: id, waitForCompletion: true, timeoutSeconds: 60 } },
      undefined,
      { onprogress: (p) => void progress.push(p) },
    );
    expect(r.structuredContent).toMatchObject({ final: true, machineAction: { status: 'Succeeded' }, waited: { polls: 2, seconds: 5, timedOut: false } });
    expect(progress).toHaveLength(1);
    expect(progress[0]!.message).toMatch(/is Pending after 0 s/);
    expect(x.sleeps).toEqual([5000]);
  });

  it('stops at its timeout with final: false', async () => {
    const x = await harness({ skip: true });
    const pending = (await x.tool('list_machine_actions', { machineId: PENDING_DEVICE, status: 'Pending' })).structuredContent as { actions: { id: string }[] };
    const r = await x.tool('get_machine_action', { actionId: pending.actions[0]!.id, waitForCompletion: true, timeoutSeconds: 12 });
    expect(r.structuredContent).toMatchObject({ final: false, waited: { timedOut: true, polls: 3, seconds: 10 } });
    expect(textOf(r)).toMatch(/Not final after waiting 10 s/);
  });

  it('says "not found" for an unknown id, and refuses a malformed one without a request', async () => {
    const x = await harness();
    const r = await x.tool('get_machine_action', { actionId: '00000000-0000-4000-8000-000000000000' });
    expect(textOf(r)).toMatch(/no machine action with this id/);
    const before = x.sim.requests.length;
    const bad = await x.tool('get_machine_action', { actionId: '../machines' });
    expect(bad.isError).toBe(true);
    expect(x.sim.requests.length).toBe(before);
  });
});

describe('list_machine_actions', () => {
  it('lists a device\'s actions newest first, filtered by type and status', async () => {
    const x = await harness({ skip: true });
    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const all = await x.tool('list_machine_actions', { machineId: RESTRICTED_DEVICE });
    const actions = (all.structuredContent as { actions: { type: string; status: string }[] }).actions;
    expect(actions.map((a) => `${a.type}:${a.status}`)).toEqual(['UnrestrictCodeExecution:Pending', 'RestrictCodeExecution:Succeeded']);

    const filtered = await x.tool('list_machine_actions', { machineId: RESTRICTED_DEVICE, type: 'RestrictCodeExecution', status: 'Succeeded', limit: 5 });
    expect((filtered.structuredContent as { total: number }).total).toBe(1);
    expect(x.sim.apiRequests('GET').at(-1)!.query.$filter).toBe(`machineId eq '${RESTRICTED_DEVICE}' and type eq 'RestrictCodeExecution' and status eq 'Succeeded'`);
  });
});

describe('cancel_machine_action', () => {
  it('asks the human, then cancels with {"Comment": ...}; the device stays restricted', async () => {
    const x = await harness({ elicit: 'accept' });
    const id = (await x.tool('list_machine_actions', { machineId: PENDING_DEVICE, status: 'Pending' })).structuredContent as { actions: { id: string }[] };
    const actionId = id.actions[0]!.id;
    const r = await x.tool('cancel_machine_action', { actionId, comment: 'INC-3101: requested by mistake' });
    expect(r.structuredContent).toMatchObject({ outcome: 'cancelled', confirmedBy: 'elicitation', machineAction: { id: actionId, status: 'Cancelled', cancellationComment: 'INC-3101: requested by mistake' } });
    expect(x.prompts[0]!.message).toMatch(/hr-laptop-113/);
    expect(x.prompts[0]!.message).toMatch(/stays restricted/);
    const post = x.sim.apiRequests('POST');
    expect(post.map((p) => p.path)).toEqual([`/api/machineactions/${actionId}/cancel`]);
    expect(post[0]!.body).toBe('{"Comment":"INC-3101: requested by mistake"}');
    expect(x.sim.isRestricted(PENDING_DEVICE)).toBe(true);
  });

  it('binds its confirmation token to the action: it cannot lift a restriction or cancel another action', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mde-audit-'));
    try {
      const path = join(dir, 'audit.jsonl');
      const x = await harness({ audit: new JsonlAuditTrail(path) });
      const actionId = ((await x.tool('list_machine_actions', { machineId: PENDING_DEVICE, status: 'Pending' })).structuredContent as { actions: { id: string }[] }).actions[0]!.id;
      const first = await x.tool('cancel_machine_action', { actionId, comment: COMMENT });
      const token = (first.structuredContent as { outcome: string; confirmation: { token: string } }).confirmation.token;
      expect(first.structuredContent).toMatchObject({ outcome: 'confirmation_required' });

      const misuse = await x.call({ machineId: PENDING_DEVICE, comment: COMMENT, confirmationToken: token });
      expect(textOf(misuse)).toMatch(/different machine, comment or action/);
      expect(x.sim.apiRequests('POST')).toHaveLength(0);

      const ok = await x.tool('cancel_machine_action', { actionId, comment: COMMENT, confirmationToken: token });
      expect(ok.structuredContent).toMatchObject({ outcome: 'cancelled', confirmedBy: 'token' });
      const records = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(records.at(-1)).toMatchObject({ event: 'outcome', tool: 'cancel_machine_action', action: `cancel:${actionId}`, targetActionId: actionId, outcome: 'cancelled', machineActionStatus: 'Cancelled' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to cancel a finished action, without asking or posting', async () => {
    const x = await harness({ elicit: 'accept' });
    const done = ((await x.tool('list_machine_actions', { machineId: RESTRICTED_DEVICE, status: 'Succeeded' })).structuredContent as { actions: { id: string }[] }).actions[0]!.id;
    const r = await x.tool('cancel_machine_action', { actionId: done, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/already Succeeded: only Pending or InProgress actions can be cancelled/);
    expect(x.prompts).toHaveLength(0);
    expect(x.sim.apiRequests('POST')).toHaveLength(0);
  });

  it('sends nothing when the human declines', async () => {
    const x = await harness({ elicit: 'decline' });
    const actionId = ((await x.tool('list_machine_actions', { machineId: PENDING_DEVICE, status: 'Pending' })).structuredContent as { actions: { id: string }[] }).actions[0]!.id;
    const r = await x.tool('cancel_machine_action', { actionId, comment: COMMENT });
    expect(textOf(r)).toMatch(/Not performed/);
    expect(x.sim.apiRequests('POST')).toHaveLength(0);
  });
});

describe('MCP logging notifications', () => {
  it('tells the client about retries and confirmation outcomes, and honours logging/setLevel', async () => {
    const x = await harness({ elicit: 'decline' });
    // Info notifications go only to a client that asked for them.
    await x.client.setLoggingLevel('info');
    x.sim.injectFault({ method: 'GET', path: `/api/machines/${RESTRICTED_DEVICE}` }, { kind: 'status', status: 429, headers: { 'Retry-After': '3' } });
    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const texts = x.notifications.map((n) => `${n.level}: ${String(n.data)}`);
    expect(texts.some((t) => /^info: .*rate limit \(429\).*retrying in 3 s/.test(t))).toBe(true);
    expect(texts.some((t) => /declined/.test(t))).toBe(true);

    await x.client.setLoggingLevel('error');
    const before = x.notifications.length;
    x.sim.injectFault({ method: 'GET', path: `/api/machines/${RESTRICTED_DEVICE}` }, { kind: 'status', status: 429, headers: { 'Retry-After': '3' } });
    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(x.notifications.length).toBe(before);
  });

  it('without logging/setLevel a client gets warnings and errors only; after it, the level it asked for', async () => {
    const x = await harness({ skip: true });
    // A 429 makes the call log its retry at info.
    x.sim.injectFault({ method: 'GET', path: '/api/machineactions' }, { kind: 'status', status: 429, headers: { 'Retry-After': '3' } });
    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(x.logs.some((l) => /info: .*rate limit \(429\)/.test(l))).toBe(true);
    // The per-call warning of --dangerously-skip-confirmation arrives; the info lines of the call do not.
    expect(x.notifications.some((n) => n.level === 'warning' && /dangerously-skip-confirmation/.test(String(n.data)))).toBe(true);
    expect(x.notifications.filter((n) => n.level === 'info')).toEqual([]);

    await x.client.setLoggingLevel('debug');
    const before = x.notifications.length;
    x.sim.injectFault({ method: 'GET', path: '/api/machineactions' }, { kind: 'status', status: 429, headers: { 'Retry-After': '3' } });
    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(x.notifications.slice(before).some((n) => n.level === 'info' && /rate limit \(429\)/.test(String(n.data)))).toBe(true);
  });
});
