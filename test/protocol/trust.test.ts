/** Audit trail, policy guards, read-only mode and never-twice, through a real MCP client. */
import { mkdtempSync, readFileSync, rmSync, statSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonlAuditTrail, type AuditRecord } from '../../src/audit.js';
import { ConfirmationTokens } from '../../src/confirmation/token.js';
import { PENDING_DEVICE, RESTRICTED_DEVICE, useHarness, textOf, type Harness, type HarnessOptions } from '../helpers/harness.js';

const COMMENT = 'INC-2001: re-imaged, scans clean';
const SQL_SERVER = '63b87ad1411d2aa6afc5dcd92f0f66ccdb94157e'; // srv-sql-01, "Tier 0 Servers", tags Production, SQL
const KIOSK = '28c4c8f2392aa90f1eec907f09a59d5ada130239'; // kiosk-lobby-02, "Kiosks", tags Kiosk, Lobby
const ENGINEERING_BUILD = '01a02b2beb2439cac6bc65ffa3798a3623437f3c'; // eng-build-042, restricted, nothing pending

const harness = useHarness();
const dirs: string[] = [];
function auditFile() {
  const dir = mkdtempSync(join(tmpdir(), 'mde-audit-'));
  dirs.push(dir);
  const path = join(dir, 'audit.jsonl');
  return { path, trail: new JsonlAuditTrail(path), read: () => readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditRecord) };
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const posts = (x: Harness) => x.sim.apiRequests('POST');

describe('audit trail', () => {
  it('writes and flushes the intent before the POST, then the outcome, tied by one request id', async () => {
    const audit = auditFile();
    const x = await harness({ elicit: 'accept', audit: audit.trail });
    let recordsWhenPosted: AuditRecord[] = [];
    x.sim.onRequest = (r) => {
      if (r.method === 'POST') recordsWhenPosted = audit.read();
    };
    const result = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const action = (result.structuredContent as { machineAction: { id: string } }).machineAction;

    expect(recordsWhenPosted.map((r) => r.event)).toEqual(['intent']);
    const [intent, outcome] = audit.read();
    expect(intent).toMatchObject({
      event: 'intent',
      tool: 'remove_app_restriction',
      action: 'unrestrict',
      client: { name: 'test-client', version: '1.0.0' },
      machineId: RESTRICTED_DEVICE,
      hostName: 'finance-ws-017.contoso.com',
      comment: COMMENT,
      confirmation: 'elicitation_accepted',
    });
    expect(outcome).toMatchObject({
      event: 'outcome',
      requestId: intent!.requestId,
      httpStatus: 201,
      outcome: 'submitted',
      machineActionId: action.id,
      machineActionStatus: 'Pending',
      confirmation: 'elicitation_accepted',
    });
    expect(Date.parse(intent!.time)).toBeLessThanOrEqual(Date.parse(outcome!.time));
    expect(statSync(audit.path).mode & 0o777).toBe(0o600);
  });

  it('records declined and cancelled prompts as not_sent', async () => {
    const audit = auditFile();
    let answer: 'decline' | 'cancel' = 'decline';
    const x = await harness({ elicit: async () => ({ action: answer }), audit: audit.trail });
    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    answer = 'cancel';
    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(audit.read().map((r) => [r.event, r.confirmation])).toEqual([
      ['not_sent', 'elicitation_declined'],
      ['not_sent', 'elicitation_cancelled'],
    ]);
    expect(posts(x)).toHaveLength(0);
  });

  it('ties an issued token to its redemption, records rejections with the reason, and never stores a token', async () => {
    const audit = auditFile();
    const x = await harness({ audit: audit.trail });
    const first = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const token = (first.structuredContent as { confirmation: { token: string } }).confirmation.token;
    await x.call({ machineId: RESTRICTED_DEVICE, comment: 'another comment', confirmationToken: token });
    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: token });
    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: token });

    const records = audit.read();
    expect(records.map((r) => [r.event, r.confirmation, r.tokenRejection])).toEqual([
      ['not_sent', 'token_issued', undefined],
      ['not_sent', 'token_rejected', 'mismatch'],
      ['intent', 'token_redeemed', undefined],
      ['outcome', 'token_redeemed', undefined],
      ['not_sent', 'token_rejected', 'replayed'],
    ]);
    expect(records[0]!.confirmationId).toMatch(/^c-/);
    expect(records[2]!.confirmationId).toBe(records[0]!.confirmationId);
    expect(records[2]!.hostName).toBe('finance-ws-017.contoso.com');
    const raw = readFileSync(audit.path, 'utf8');
    expect(raw).not.toContain(token);
    expect(raw).not.toContain(token.split('.')[3]!);
    expect(raw).not.toContain(x.sim.token);
  });

  it('records an upstream failure in the outcome record', async () => {
    const audit = auditFile();
    const x = await harness({ skip: true, audit: audit.trail, simulator: { roles: ['Machine.Read.All'] } });
    await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(audit.read()[1]).toMatchObject({ event: 'outcome', outcome: 'error', errorKind: 'permission', httpStatus: 403, errorCode: 'Forbidden', confirmation: 'skipped_by_flag' });
  });

  it('refuses the action (fail closed) when the audit log cannot be written, and sends nothing', async () => {
    const audit = auditFile();
    const x = await harness({ elicit: 'accept', audit: audit.trail });
    // The file becomes a directory: appends now fail.
    if (existsSync(audit.path)) rmSync(audit.path);
    mkdirSync(audit.path);
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/audit_unavailable/);
    expect(textOf(r)).toMatch(/nothing was sent/);
    expect(posts(x)).toHaveLength(0);
  });
});

describe('policy guards (checked before the prompt; nothing sent when refused)', () => {
  const cases: [string, HarnessOptions['policy'], string, RegExp][] = [
    ['deny-listed device group', { denyDeviceGroups: ['tier 0 servers'] }, SQL_SERVER, /"Tier 0 Servers".*MDE_DENY_DEVICE_GROUPS/],
    ['group outside the allow-list', { allowDeviceGroups: ['Finance Workstations', 'HR'] }, KIOSK, /"Kiosks".*not in MDE_ALLOW_DEVICE_GROUPS \(Finance Workstations, HR\)/],
    ['deny-listed tag', { denyTags: ['VIP'] }, RESTRICTED_DEVICE, /tag "VIP".*MDE_DENY_TAGS/],
    ['no allow-listed tag', { allowTags: ['Laptop'] }, KIOSK, /none of the tags in MDE_ALLOW_TAGS \(Laptop\)/],
    ['comment pattern', { commentPattern: /CHG-\d+/ }, RESTRICTED_DEVICE, /must match the pattern \/CHG-\\d\+\//],
  ];
  it.each(cases)('%s', async (_name, policy, device, message) => {
    const audit = auditFile();
    const x = await harness({ elicit: 'accept', policy, audit: audit.trail });
    const r = await x.call({ machineId: device, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/Error \(policy\): Refused by policy/);
    expect(textOf(r)).toMatch(message);
    expect(textOf(r)).toMatch(/Nothing was sent/);
    expect(x.prompts).toHaveLength(0);
    expect(posts(x)).toHaveLength(0);
    expect(audit.read()).toMatchObject([{ event: 'not_sent', reason: expect.stringMatching(/^MDE_/) }]);
  });

  it('spends a confirmation token only after the device passed the policy', async () => {
    const tokens = new ConfirmationTokens();
    const open = await harness({ tokens });
    const first = await open.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const token = (first.structuredContent as { confirmation: { token: string } }).confirmation.token;
    // The same signer behind a policy that refuses the device: refused, nothing sent, token not spent.
    const fenced = await harness({ tokens, policy: { denyTags: ['VIP'] } });
    const refused = await fenced.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: token });
    expect(textOf(refused)).toMatch(/Error \(policy\).*MDE_DENY_TAGS/);
    expect(posts(fenced)).toHaveLength(0);
    const ok = await open.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: token });
    expect(ok.structuredContent).toMatchObject({ outcome: 'submitted', confirmedBy: 'token' });
  });

  it('lets a device through that passes every rule', async () => {
    const x = await harness({
      elicit: 'accept',
      policy: { allowDeviceGroups: ['Finance Workstations'], denyTags: ['Production'], allowTags: ['finance'], commentPattern: /INC-\d+/ },
    });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'submitted' });
  });

  it('fails closed when device rules are set but the device cannot be read (no Machine.Read.All)', async () => {
    const x = await harness({ elicit: 'accept', policy: { denyDeviceGroups: ['Tier 0 Servers'] }, simulator: { roles: ['Machine.RestrictExecution'] } });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(textOf(r)).toMatch(/could not be read.*Machine\.Read\.All/);
    expect(posts(x)).toHaveLength(0);
  });

  it('applies device rules even when confirmation is skipped by flag', async () => {
    const x = await harness({ skip: true, policy: { denyDeviceGroups: ['Finance Workstations'] } });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(posts(x)).toHaveLength(0);
  });
});

describe('never unconfirmed', () => {
  it('sends nothing when the client cancels the call while the human is being asked', async () => {
    const controller = new AbortController();
    const x = await harness({
      elicit: async () => {
        controller.abort('the user closed the chat'); // the client gives up on the tool call...
        await new Promise((r) => setTimeout(r, 20));
        return { action: 'accept', content: { confirm: true } }; // ...and a late "yes" still arrives
      },
    });
    const call = x.client.callTool({ name: 'remove_app_restriction', arguments: { machineId: RESTRICTED_DEVICE, comment: COMMENT } }, undefined, { signal: controller.signal });
    await expect(call).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 100));
    expect(posts(x)).toHaveLength(0);
    expect(x.logs.some((l) => /Not performed/.test(l))).toBe(true);
  });
});

describe('never twice', () => {
  it('concurrent calls for the same device send one POST; the second gets the same action as already_pending', async () => {
    const x = await harness({ skip: true });
    // Slow the POST down so that the two calls overlap.
    x.sim.injectFault({ method: 'POST', path: '/unrestrictCodeExecution' }, { kind: 'delay', ms: 150 });
    const [a, b] = await Promise.all([
      x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT }),
      x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT }),
    ]);
    expect(posts(x)).toHaveLength(1);
    const outcomes = [a, b].map((r) => (r.structuredContent as { outcome: string }).outcome).sort();
    expect(outcomes).toEqual(['already_pending', 'submitted']);
    const ids = [a, b].map((r) => (r.structuredContent as { machineAction: { id: string } }).machineAction.id);
    expect(ids[0]).toBe(ids[1]);
  });

  it('concurrent calls for different devices are not held back', async () => {
    const x = await harness({ skip: true });
    await Promise.all([
      x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT }),
      x.call({ machineId: ENGINEERING_BUILD, comment: COMMENT }),
    ]);
    expect(posts(x)).toHaveLength(2);
  });
});
