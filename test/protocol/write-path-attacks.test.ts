/**
 * The write path under attack, through a real MCP client against the fake tenant, asserting what went
 * over the wire: the confirmation text cannot be disguised, nothing is sent after the client gives up
 * (cancel_machine_action refuses before reading), only what needs asking is asked, arguments as every
 * client sends them, policy, sizes, and list_machine_actions filtering again.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonlAuditTrail, type AuditRecord } from '../../src/audit.js';
import { ConfirmationTokens } from '../../src/confirmation/token.js';
import { lintTools, countFindings, formatSchemaLintReport } from '../helpers/inspector-schema-lint.js';
import { PENDING_DEVICE, RESTRICTED_DEVICE, textOf, useHarness, type Harness } from '../helpers/harness.js';

const COMMENT = 'INC-9001: re-imaged, scans clean';
const NOT_RESTRICTED = '9a3f6c1d2e4b5a69788766554433221100ffeedd'; // finance-ws-018: no restrict/unrestrict history
const ENGINEERING = '01a02b2beb2439cac6bc65ffa3798a3623437f3c'; // eng-build-042, restricted, nothing pending
const harness = useHarness();
const posts = (x: Harness) => x.sim.apiRequests('POST');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function auditFile() {
  const dir = mkdtempSync(join(tmpdir(), 'mde-harden-'));
  dirs.push(dir);
  const path = join(dir, 'audit.jsonl');
  return { trail: new JsonlAuditTrail(path), records: (): AuditRecord[] => readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord) };
}

/** A sleep the test releases: a wait that has started stays pending until then (the clock does not move by itself). */
function gatedSleep() {
  const waiting: { ms: number; release: () => void }[] = [];
  return {
    waiting,
    sleep: (ms: number) => new Promise<void>((resolve) => void waiting.push({ ms, release: resolve })),
    releaseAll() {
      for (const w of waiting.splice(0)) w.release();
    },
    async until(n: number) {
      for (let i = 0; i < 200 && waiting.length < n; i++) await new Promise((r) => setTimeout(r, 5));
      expect(waiting.length).toBeGreaterThanOrEqual(n);
    },
  };
}

describe('write path: text the human reads cannot be disguised', () => {
  it.each([
    ['\u2028', 'U+2028 LINE SEPARATOR'],
    ['\u2029', 'U+2029 PARAGRAPH SEPARATOR'],
    ['\u2060', 'U+2060 WORD JOINER'],
    ['\u00AD', 'U+00AD SOFT HYPHEN'],
    ['\u061C', 'U+061C ARABIC LETTER MARK'],
    ['\u180E', 'U+180E MONGOLIAN VOWEL SEPARATOR'],
    ['\u{E0041}', 'U+E0041 (format character)'],
    ['\u{E0001}', 'U+E0001 LANGUAGE TAG'],
    ['\uE000', 'U+E000 (private-use character)'],
    ['\uFE0F', 'U+FE0F (default-ignorable character)'],
    ['\t', 'U+0009 CHARACTER TABULATION'],
  ])('a comment with %j is refused, naming the character and its position; nothing is read or sent', async (char, named) => {
    const x = await harness({ elicit: 'accept' });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: `INC-1 ok${char}hidden` });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain(`${named} at position 9`);
    expect(x.sim.requests).toHaveLength(0);
    expect(x.prompts).toHaveLength(0);
  });

  it('a device tag with a line break adds no line to the prompt, and the cancel prompt escapes Defender\'s comment', async () => {
    const x = await harness({ elicit: 'decline' });
    const device = x.sim.machineActions().length; // the fake tenant is real state: change the device's tags
    expect(device).toBeGreaterThan(0);
    x.sim.injectFault(
      { method: 'GET', path: `/api/machines/${RESTRICTED_DEVICE}` },
      {
        kind: 'status',
        status: 200,
        body: JSON.stringify({ id: RESTRICTED_DEVICE, computerDnsName: 'finance-ws-017.contoso.com', rbacGroupName: 'Finance', machineTags: ['VIP\nComment recorded in Defender: "approved"', 'x\u2028y'] }),
      },
    );
    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const lines = x.prompts[0]!.message.split(/\r\n|[\n\r\u2028\u2029\u0085]/);
    expect(lines.filter((l) => l.startsWith('Comment recorded in Defender'))).toEqual([`Comment recorded in Defender: ${JSON.stringify(COMMENT)}`]);
    expect(x.prompts[0]!.message).toContain('x\\u2028y');

    const pending = x.sim.machineActions().find((a) => a.machineId === PENDING_DEVICE && a.status === 'Pending')!;
    x.sim.injectFault(
      { method: 'GET', path: `/api/machineactions/${pending.id}` },
      { kind: 'status', status: 200, body: JSON.stringify({ ...pending, requestorComment: 'ok\u2028Approved by: CISO', requestor: 'eve\u2029Device id: 0' }) },
    );
    await x.tool('cancel_machine_action', { actionId: pending.id, comment: COMMENT });
    const cancelLines = x.prompts[1]!.message.split(/\r\n|[\n\r\u2028\u2029\u0085]/);
    expect(cancelLines.some((l) => l.startsWith('Approved by'))).toBe(false);
    expect(cancelLines.filter((l) => l.startsWith('Device id:'))).toHaveLength(1);
    expect(x.prompts[1]!.message).toContain('ok\\u2028Approved by: CISO');
  });
});

describe('write path: nothing is sent after the client gives up', () => {
  /** A server whose budget (3 calls a minute) makes a call wait, on a sleep the test releases. */
  async function withTightBudget(opts: Parameters<typeof harness>[0]) {
    const gate = gatedSleep();
    const x = await harness({ ...opts, sleep: gate.sleep, rateLimit: { perMinute: 3, perHour: 1500, maxWaitMs: 120_000 } });
    return { x, gate };
  }

  /** Starts a call and cancels it once it waits on the gated sleep (the budget, or a Retry-After). */
  async function cancelOnceWaiting(x: Harness, gate: ReturnType<typeof gatedSleep>, args: Record<string, unknown>, whileWaiting = () => {}) {
    const controller = new AbortController();
    const call = x.client.callTool({ name: 'remove_app_restriction', arguments: args }, undefined, { signal: controller.signal });
    await gate.until(1);
    whileWaiting();
    controller.abort();
    await expect(call).rejects.toThrow();
  }

  /** Then the wait ends: whatever the cancelled call would still send would go out now. */
  async function letTheWaitEnd(x: Harness, gate: ReturnType<typeof gatedSleep>, ms: number) {
    x.clock.now += ms;
    gate.releaseAll();
    await new Promise((r) => setTimeout(r, 100));
  }

  it('elicitation path: accepted, then cancelled while waiting for the budget: no POST, ever', async () => {
    const { x, gate } = await withTightBudget({ elicit: 'accept' });
    // The history read, the device read: two of three slots; the POST takes the third...
    await x.call({ machineId: ENGINEERING, comment: COMMENT }).catch(() => undefined);
    expect(posts(x)).toHaveLength(1);
    // ...so the next call's history read must wait for a minute.
    await cancelOnceWaiting(x, gate, { machineId: RESTRICTED_DEVICE, comment: COMMENT });
    await letTheWaitEnd(x, gate, 120_000);
    expect(posts(x)).toHaveLength(1);
    expect(x.sim.apiRequests().filter((r) => r.path.includes(RESTRICTED_DEVICE))).toHaveLength(0);
  });

  it('token path: a redeemed token, then cancelled while waiting for the budget before the POST: no POST, ever', async () => {
    const { x, gate } = await withTightBudget({});
    const first = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT }); // 2 reads: history, device
    const token = (first.structuredContent as { confirmation: { token: string } }).confirmation.token;
    // The redeeming call reads the history (3rd slot), then its POST must wait a minute for the budget.
    await cancelOnceWaiting(x, gate, { machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: token });
    await letTheWaitEnd(x, gate, 120_000);
    expect(posts(x)).toHaveLength(0);
  });

  it('skip-flag path: cancelled during the Retry-After sleep after a 429: the POST is not sent again', async () => {
    const gate = gatedSleep();
    const x = await harness({ skip: true, sleep: gate.sleep });
    x.sim.injectFault({ method: 'POST', path: '/unrestrictCodeExecution' }, { kind: 'status', status: 429, headers: { 'Retry-After': '20' } });
    await cancelOnceWaiting(x, gate, { machineId: RESTRICTED_DEVICE, comment: COMMENT }, () => {
      expect(gate.waiting[0]!.ms).toBe(20_000);
      expect(posts(x)).toHaveLength(1); // the refused one
    });
    await letTheWaitEnd(x, gate, 20_000);
    expect(posts(x)).toHaveLength(1);
    expect(x.sim.machineActions().filter((a) => a.machineId === RESTRICTED_DEVICE && a.type === 'UnrestrictCodeExecution')).toHaveLength(0);
  });

  it('a call cancelled after the human accepted leaves no intent record: the guard stops before the audit intent', async () => {
    const audit = auditFile();
    let release!: () => void;
    const answered = new Promise<void>((r) => (release = r));
    const controller = new AbortController();
    const x = await harness({
      audit: audit.trail,
      elicit: async () => {
        controller.abort(); // the client gives up while the human is still looking...
        await answered;
        return { action: 'accept', content: { confirm: true } }; // ...and a late "yes" still arrives
      },
    });
    const call = x.client.callTool({ name: 'remove_app_restriction', arguments: { machineId: RESTRICTED_DEVICE, comment: COMMENT } }, undefined, { signal: controller.signal });
    await expect(call).rejects.toThrow();
    release();
    await new Promise((r) => setTimeout(r, 100));
    expect(posts(x)).toHaveLength(0);
    expect(audit.records().map((r) => r.event)).not.toContain('intent');
  });

  describe('cancel_machine_action refuses before reading the action', () => {
    const ACTION = '8af71966-4671-4734-a777-a855875c0ec4';
    it('a forged token', async () => {
      const x = await harness();
      const forged = new ConfirmationTokens().issue({ action: `cancel:${ACTION}`, machineId: PENDING_DEVICE, comment: COMMENT }).token;
      const r = await x.tool('cancel_machine_action', { actionId: ACTION, comment: COMMENT, confirmationToken: forged });
      expect(textOf(r)).toMatch(/earlier run|signature/);
      expect(x.sim.requests).toHaveLength(0);
    });
    it('a comment the policy refuses', async () => {
      const x = await harness({ policy: { commentPattern: /^CHG-\d+/ } });
      const r = await x.tool('cancel_machine_action', { actionId: ACTION, comment: COMMENT });
      expect(textOf(r)).toMatch(/MDE_COMMENT_PATTERN/);
      expect(x.sim.requests).toHaveLength(0);
    });
    it('a client without elicitation in strict mode', async () => {
      const x = await harness({ confirmation: 'elicitation' });
      const r = await x.tool('cancel_machine_action', { actionId: ACTION, comment: COMMENT });
      expect(textOf(r)).toMatch(/MDE_CONFIRMATION=elicitation/);
      expect(x.sim.requests).toHaveLength(0);
    });
    it('a token for another device, once the action is read, is still refused (the binding is checked again)', async () => {
      const tokens = new ConfirmationTokens();
      const x = await harness({ tokens });
      const pending = x.sim.machineActions().find((a) => a.machineId === PENDING_DEVICE && a.status === 'Pending')!;
      const wrong = tokens.issue({ action: `cancel:${pending.id}`, machineId: RESTRICTED_DEVICE, comment: COMMENT }).token;
      const r = await x.tool('cancel_machine_action', { actionId: pending.id, comment: COMMENT, confirmationToken: wrong });
      expect(textOf(r)).toMatch(/different machine/);
      expect(posts(x)).toHaveLength(0);
      const right = tokens.issue({ action: `cancel:${pending.id}`, machineId: PENDING_DEVICE, comment: COMMENT }).token;
      const ok = await x.tool('cancel_machine_action', { actionId: pending.id, comment: COMMENT, confirmationToken: right });
      expect(ok.structuredContent).toMatchObject({ outcome: 'cancelled', confirmedBy: 'token' });
    });
  });
});

describe('write path: ask the human only what needs asking', () => {
  it('an unrestrict already pending: already_pending at once, no prompt, no POST, one read', async () => {
    const x = await harness({ elicit: 'accept' });
    const r = await x.call({ machineId: PENDING_DEVICE, comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'already_pending', machineAction: { status: 'Pending', machineId: PENDING_DEVICE } });
    expect(x.prompts).toHaveLength(0);
    expect(x.sim.apiRequests().map((q) => `${q.method} ${q.path}`)).toEqual(['GET /api/machineactions']);
    expect(x.limiter.usage().minute).toBe(1);
  });

  it('the same without elicitation: no token is issued', async () => {
    const x = await harness();
    const r = await x.call({ machineId: PENDING_DEVICE, comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'already_pending' });
    expect(posts(x)).toHaveLength(0);
  });

  it('when the history cannot be read (no Machine.Read.All), it behaves as before: prompt, POST, 400 -> already_pending', async () => {
    const x = await harness({ elicit: 'accept' });
    x.sim.injectFault({ method: 'GET', path: '/api/machineactions' }, { kind: 'status', status: 403, body: '{"error":{"code":"Forbidden"}}' });
    const r = await x.call({ machineId: PENDING_DEVICE, comment: COMMENT });
    expect(x.prompts).toHaveLength(1);
    expect(posts(x)).toHaveLength(1);
    expect(r.structuredContent).toMatchObject({ outcome: 'already_pending' });
  });

  it('the preview says what the history shows', async () => {
    const x = await harness({ elicit: 'decline' });
    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(x.prompts[0]!.message).toMatch(/^History: the restriction was applied on \S+ by soc-analyst@contoso\.com$/m);
    await x.call({ machineId: NOT_RESTRICTED, comment: COMMENT });
    expect(x.prompts[1]!.message).toMatch(/^History: no restrict\/unrestrict action in the history$/m);
    const issued = await (await harness()).call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect((issued.structuredContent as { confirmation: { preview: { history: string } } }).confirmation.preview.history).toMatch(/restriction was applied/);
  });

  it('after a POST whose outcome was unknown, a later confirmed call finds the pending action and sends no second POST', async () => {
    const x = await harness({ skip: true, timeoutMs: 300 });
    // The request reaches Defender (the action is created), but the answer never comes.
    x.sim.injectFault({ method: 'POST', path: '/unrestrictCodeExecution' }, { kind: 'process_then_hang' });
    const first = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(first.isError || (first.structuredContent as { outcome: string }).outcome === 'already_pending').toBe(true);
    const second = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(second.structuredContent).toMatchObject({ outcome: 'already_pending' });
    expect(posts(x)).toHaveLength(1);
  });
});

describe('write path: arguments as every client sends them', () => {
  it('null for an optional argument means "not given"', async () => {
    const x = await harness();
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: null });
    expect(r.structuredContent).toMatchObject({ outcome: 'confirmation_required' });
    const found = await x.tool('find_machine', { name: 'finance-ws-017', match: null });
    expect(found.isError).toBeFalsy();
    expect(found.structuredContent).toMatchObject({ matchedBy: 'prefix' });
    const listed = await x.tool('list_machine_actions', { machineId: RESTRICTED_DEVICE, type: null, status: null, limit: null });
    expect(listed.isError).toBeFalsy();
    const action = x.sim.machineActions()[0]!;
    const got = await x.tool('get_machine_action', { actionId: action.id, waitForCompletion: null, timeoutSeconds: null });
    expect(got.structuredContent).toMatchObject({ final: expect.any(Boolean) });
    expect(got.structuredContent).not.toHaveProperty('waited');
  });

  it('unknown arguments are refused with an error naming them; nothing is sent', async () => {
    const x = await harness({ elicit: 'accept' });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmed: true, approve: 'yes' });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/unknown arguments "confirmed", "approve": remove_app_restriction takes only machineId, comment, confirmationToken/);
    expect(x.sim.requests).toHaveLength(0);
    expect(x.prompts).toHaveLength(0);
  });

  it('every input schema says additionalProperties: false, and the MCP Inspector\'s --strict schema check finds nothing', async () => {
    const x = await harness();
    const { tools } = await x.client.listTools();
    for (const t of tools) expect(t.inputSchema, t.name).toMatchObject({ additionalProperties: false });
    const results = lintTools(tools);
    expect(countFindings(results), results.length > 0 ? formatSchemaLintReport(results) : '').toEqual({ errors: 0, warnings: 0 });
    expect(JSON.stringify(tools)).not.toMatch(/"type":\[/);
  });

  it('the two-person tools pass the same check (their reviewed snapshot, which approval.test.ts keeps equal to tools/list)', () => {
    const approvalTools = JSON.parse(readFileSync(new URL('./__snapshots__/tools-list-approval.json', import.meta.url), 'utf8')) as Array<{ name: string; inputSchema: object }>;
    expect(approvalTools.map((t) => t.name)).toEqual(expect.arrayContaining(['approve_action', 'reject_action', 'get_approval', 'list_pending_approvals']));
    for (const t of approvalTools) expect(t.inputSchema, t.name).toMatchObject({ additionalProperties: false });
    const results = lintTools(approvalTools as never);
    expect(countFindings(results), results.length > 0 ? formatSchemaLintReport(results) : '').toEqual({ errors: 0, warnings: 0 });
    expect(JSON.stringify(approvalTools)).not.toMatch(/"type":\[/);
  });
});

describe('write path: policy that cannot be turned against the server', () => {
  it('a device record without rbacGroupName is refused while group rules are set (deny rules too): fail closed', async () => {
    const x = await harness({ elicit: 'accept', policy: { denyDeviceGroups: ['Tier 0 Servers'] } });
    x.sim.injectFault({ method: 'GET', path: `/api/machines/${RESTRICTED_DEVICE}` }, { kind: 'status', status: 200, body: JSON.stringify({ id: RESTRICTED_DEVICE, computerDnsName: 'finance-ws-017.contoso.com', machineTags: [] }) });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(textOf(r)).toMatch(/names no device group/);
    expect(posts(x)).toHaveLength(0);
    expect(x.prompts).toHaveLength(0);
  });

  it('a device record without machineTags is refused while tag rules are set: fail closed', async () => {
    const x = await harness({ elicit: 'accept', policy: { denyTags: ['Production'] } });
    x.sim.injectFault({ method: 'GET', path: `/api/machines/${RESTRICTED_DEVICE}` }, { kind: 'status', status: 200, body: JSON.stringify({ id: RESTRICTED_DEVICE, computerDnsName: 'finance-ws-017.contoso.com', rbacGroupName: 'Finance Workstations' }) });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(textOf(r)).toMatch(/carries no tag list/);
    expect(posts(x)).toHaveLength(0);
  });

  it('deny-tags match whatever the case', async () => {
    const x = await harness({ skip: true, policy: { denyTags: ['production'] } });
    const r = await x.call({ machineId: '63b87ad1411d2aa6afc5dcd92f0f66ccdb94157e', comment: COMMENT }); // srv-sql-01, tag "Production"
    expect(textOf(r)).toMatch(/MDE_DENY_TAGS/);
    expect(posts(x)).toHaveLength(0);
  });
});

describe('write path: sizes', () => {
  it('a 200 KB client name is bounded in every audit record', async () => {
    const audit = auditFile();
    const x = await harness({ skip: true, audit: audit.trail, clientInfo: { name: 'n'.repeat(200_000), version: 'v'.repeat(10_000) } });
    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const records = audit.records();
    expect(records.length).toBeGreaterThan(0);
    for (const r of records) {
      expect(r.client!.name.length).toBeLessThan(300);
      expect(r.client!.version.length).toBeLessThan(300);
      expect(r.client!.name).toBe('n'.repeat(256));
    }
  });
});

describe('write path: list_machine_actions filters again when a proxy ignores $filter', () => {
  it('returns only the asked device, type and status', async () => {
    const x = await harness();
    const everything = x.sim.machineActions();
    x.sim.injectFault({ method: 'GET', path: '/api/machineactions' }, { kind: 'status', status: 200, body: JSON.stringify({ value: everything }) });
    const r = await x.tool('list_machine_actions', { machineId: RESTRICTED_DEVICE, type: 'RestrictCodeExecution', status: 'Succeeded' });
    const actions = (r.structuredContent as { actions: { machineId: string; type: string; status: string }[] }).actions;
    expect(actions.length).toBeGreaterThan(0);
    expect(everything.length).toBeGreaterThan(actions.length);
    for (const a of actions) expect(a).toMatchObject({ machineId: RESTRICTED_DEVICE, type: 'RestrictCodeExecution', status: 'Succeeded' });
  });
});
