/** The write guard on its own, with fakes: the order of its steps and where it stops. */
import { describe, expect, it } from 'vitest';
import type { AuditRecord, AuditTrail } from '../../src/audit.js';
import { NO_POLICY, type Policy } from '../../src/policy.js';
import type { Elicitor } from '../../src/confirmation/confirm.js';
import { ConfirmationTokens } from '../../src/confirmation/token.js';
import type { DefenderApi } from '../../src/defender/client.js';
import { ToolError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { createWriteGuard, type WriteSpec } from '../../src/tools/write-guard.js';
import { Approvals } from '../../src/approval/approvals.js';
import { MemoryApprovalStore, type Approval } from '../../src/approval/store.js';
import { principalKey, type Caller } from '../../src/auth/caller.js';
import { type ApprovalSettings } from '../../src/approval/approvals.js';

const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';
const COMMENT = 'INC-1: cleaned';

function setup(opts: { skip?: boolean; elicit?: boolean; policy?: Partial<Policy>; onRead?: () => void } = {}) {
  const steps: string[] = [];
  const records: Omit<AuditRecord, 'time'>[] = [];
  const audit: AuditTrail = { enabled: true, write: async (r) => void records.push(r) };
  const api = {
    getMachine: async (id: string) => {
      steps.push('read_device');
      opts.onRead?.();
      return { id, computerDnsName: 'host-1', rbacGroupName: 'G', machineTags: ['T'] };
    },
  } as unknown as DefenderApi;
  const elicitor: Elicitor = {
    canElicit: () => opts.elicit ?? false,
    elicit: async () => {
      steps.push('prompt');
      return { action: 'accept', content: { confirm: true } };
    },
  };
  const tokens = new ConfirmationTokens();
  const guard = createWriteGuard({
    api,
    audit,
    logger: silentLogger,
    policy: { ...NO_POLICY, ...opts.policy },
    confirmation: { mode: 'auto', skip: opts.skip ?? false, tokens, ledger: tokens.ledger, elicitor },
  });
  const spec = (over: Partial<WriteSpec> = {}): WriteSpec => ({
    tool: 'remove_app_restriction',
    subject: { action: 'unrestrict', machineId: DEVICE, comment: COMMENT },
    describe: async () => {
      steps.push('describe');
      return { action: 'unrestrict', verb: 'Lift', consequence: 'C', machineId: DEVICE, comment: COMMENT };
    },
    confirmationToken: undefined,
    sameArguments: 'machineId and comment',
    execute: async () => {
      steps.push('execute');
      return { result: { content: [{ type: 'text', text: 'sent' }] }, audit: { outcome: 'submitted' } };
    },
    confirmationRequired: ({ token }) => ({ content: [{ type: 'text', text: token }] }),
    ...over,
  });
  return { guard, spec, steps, records, tokens };
}

describe('createWriteGuard', () => {
  it('a call cancelled after it was confirmed sends nothing and writes no intent (skip flag, device read under a device rule)', async () => {
    const controller = new AbortController();
    const x = setup({ skip: true, policy: { denyTags: ['X'] }, onRead: () => controller.abort() });
    await expect(x.guard(x.spec(), { signal: controller.signal })).rejects.toMatchObject({
      kind: 'not_confirmed',
      message: 'Not performed: the client cancelled the call before the request was sent. Nothing was sent to Defender.',
      nextStep: 'Call again if the action is still wanted.',
    });
    expect(x.steps).toEqual(['describe', 'read_device']);
    expect(x.records.map((r) => r.event)).toEqual(['not_sent']);
    expect(x.records[0]).toMatchObject({ confirmation: 'skipped_by_flag', reason: 'not_confirmed' });
  });

  it('a call cancelled before anything was read reads nothing', async () => {
    const controller = new AbortController();
    controller.abort();
    const x = setup({ elicit: true });
    await expect(x.guard(x.spec(), { signal: controller.signal })).rejects.toMatchObject({ kind: 'not_confirmed' });
    expect(x.steps).toEqual([]);
    expect(x.records.map((r) => [r.event, r.confirmation])).toEqual([['not_sent', 'none']]);
  });

  it('runs its steps in order: describe, inspect, device, prompt, intent, execute, outcome', async () => {
    const x = setup({ elicit: true });
    const r = await x.guard(x.spec({ inspect: async () => (x.steps.push('inspect'), { history: 'H' }) }), {});
    expect(r.content[0]).toMatchObject({ text: 'sent' });
    expect(x.steps).toEqual(['describe', 'inspect', 'read_device', 'prompt', 'execute']);
    expect(x.records.map((r) => [r.event, r.confirmation])).toEqual([['intent', 'elicitation_accepted'], ['outcome', 'elicitation_accepted']]);
    expect(x.records[1]).toMatchObject({ outcome: 'submitted', hostName: 'host-1', machineId: DEVICE });
  });

  it('an inspection that settles the call ends it: no device read, no prompt, no write, one not_sent record with the outcome', async () => {
    const x = setup({ elicit: true });
    const r = await x.guard(x.spec({ inspect: async () => ({ settled: { result: { content: [{ type: 'text', text: 'pending' }] }, audit: { outcome: 'already_pending', machineActionId: 'a-1' } } }) }), {});
    expect(r.content[0]).toMatchObject({ text: 'pending' });
    expect(x.steps).toEqual(['describe']);
    expect(x.records).toHaveLength(1);
    expect(x.records[0]).toMatchObject({ event: 'not_sent', confirmation: 'none', reason: 'already_pending', machineActionId: 'a-1' });
  });

  it('a comment the policy refuses and a bad token are refused before describe (nothing read), each recorded', async () => {
    const x = setup({ policy: { commentPattern: /^CHG-/ } });
    await expect(x.guard(x.spec(), {})).rejects.toMatchObject({ kind: 'policy' });
    const y = setup();
    await expect(y.guard(y.spec({ confirmationToken: 'mdeconfirm.v1.bad.sig' }), {})).rejects.toMatchObject({ kind: 'not_confirmed' });
    expect([...x.steps, ...y.steps]).toEqual([]);
    expect(x.records[0]).toMatchObject({ event: 'not_sent', reason: 'MDE_COMMENT_PATTERN', machineId: DEVICE });
    expect(y.records[0]).toMatchObject({ event: 'not_sent', confirmation: 'token_rejected', tokenRejection: 'bad_signature' });
  });

  it('a token checked without the device is checked again once describe names it', async () => {
    const x = setup();
    const token = x.tokens.issue({ action: 'cancel:a', machineId: 'f'.repeat(40), comment: COMMENT }).token;
    const spec = x.spec({
      subject: { action: 'cancel:a', comment: COMMENT, targetActionId: 'a' },
      describe: async () => ({ action: 'cancel:a', verb: 'Cancel', consequence: 'C', machineId: DEVICE, comment: COMMENT }),
      confirmationToken: token,
    });
    await expect(x.guard(spec, {})).rejects.toMatchObject({ message: expect.stringMatching(/different machine/) });
    expect(x.records[0]).toMatchObject({ event: 'not_sent', tokenRejection: 'mismatch', machineId: DEVICE, targetActionId: 'a' });
  });

  it('a client name and version are bounded in the audit record', async () => {
    const x = setup({ skip: true });
    await x.guard(x.spec(), { client: { name: 'n'.repeat(1000), version: '1' } });
    expect(x.records[0]!.client).toEqual({ name: 'n'.repeat(256), version: '1' });
  });
});

describe('createWriteGuard: what each path leaves in the audit trail and the result', () => {
  function rig(opts: { skip?: boolean; policy?: Partial<Policy>; getMachine?: () => Promise<unknown>; failAudit?: (r: Omit<AuditRecord, 'time'>) => boolean; twoPerson?: Partial<ApprovalSettings> } = {}) {
    const records: Omit<AuditRecord, 'time'>[] = [];
    const logs: string[] = [];
    const audit: AuditTrail = {
      enabled: true,
      write: async (r) => {
        if (opts.failAudit?.(r)) throw new Error('disk full');
        records.push(r);
      },
    };
    const reads: string[] = [];
    const api = {
      getMachine: async (id: string) => (reads.push(id), opts.getMachine ? opts.getMachine() : { id, computerDnsName: 'host-1', rbacGroupName: 'G', machineTags: ['T'] }),
    } as unknown as DefenderApi;
    const tokens = new ConfirmationTokens();
    const logger = { debug() {}, info: (m: string) => void logs.push(`info ${m}`), warning: (m: string) => void logs.push(`warning ${m}`), error: (m: string) => void logs.push(`error ${m}`) };
    const store = new MemoryApprovalStore();
    const approvals = opts.twoPerson ? new Approvals({ store, audit, settings: { deviceGroups: [], tags: [], ttlMs: 60_000, approverRole: 'Approver', ...opts.twoPerson } }) : undefined;
    const guard = createWriteGuard({
      api,
      audit,
      logger,
      ...(approvals ? { approvals } : {}),
      policy: { ...NO_POLICY, ...opts.policy },
      confirmation: { mode: 'auto', skip: opts.skip ?? false, tokens, ledger: tokens.ledger, elicitor: { canElicit: () => false, elicit: async () => ({ action: 'decline' }) } },
    });
    const request = { action: 'unrestrict', verb: 'Lift the app restriction', consequence: 'C', machineId: DEVICE, comment: COMMENT };
    const spec = (over: Partial<WriteSpec> = {}): WriteSpec => ({
      tool: 'remove_app_restriction',
      subject: { action: 'unrestrict', machineId: DEVICE, comment: COMMENT },
      describe: async () => request,
      confirmationToken: undefined,
      sameArguments: 'machineId and comment',
      execute: async () => ({ result: { content: [{ type: 'text', text: 'sent' }] }, audit: { outcome: 'submitted', httpStatus: 201, machineActionId: 'a-1' } }),
      confirmationRequired: (c) => ({ content: [{ type: 'text', text: c.text }], structuredContent: { token: c.token, expiresAt: c.expiresAt, preview: c.preview as never } }),
      ...over,
    });
    return { guard, spec, records, logs, reads, tokens, request, store };
  }

  it('without elicitation, issues a token: the result carries the rendered text, the record its confirmationId and host name', async () => {
    const x = rig();
    const r = await x.guard(x.spec(), {});
    const { token, expiresAt, preview } = r.structuredContent as { token: string; expiresAt: string; preview: { hostName: string } };
    expect(preview.hostName).toBe('host-1');
    expect(new Date(expiresAt).toISOString()).toBe(expiresAt);
    expect((r.content[0] as { text: string }).text).toContain(`confirmationToken "${token}"`);
    expect((r.content[0] as { text: string }).text).toContain('Lift the app restriction on host-1?');
    expect(x.records).toHaveLength(1);
    expect(x.records[0]).toMatchObject({ event: 'not_sent', confirmation: 'token_issued', reason: 'awaiting_human_approval', hostName: 'host-1', machineId: DEVICE, confirmationId: expect.stringMatching(/^c-/) });
    expect(JSON.stringify(x.records)).not.toContain(token);
    expect(x.logs).toEqual(['info remove_app_restriction: waiting for the human to approve: lift the app restriction on host-1 (token_issued).']);
  });

  it('a redeemed token carries the host name it was issued with into the intent and outcome, with its confirmationId; no device read', async () => {
    const x = rig();
    const issued = x.tokens.issue({ action: 'unrestrict', machineId: DEVICE, comment: COMMENT }, 'host-from-token');
    const r = await x.guard(x.spec({ confirmationToken: issued.token }), {});
    expect(r.content).toEqual([{ type: 'text', text: 'sent' }]);
    expect(x.reads).toEqual([]);
    expect(x.records.map((rec) => rec.event)).toEqual(['intent', 'outcome']);
    for (const rec of x.records) expect(rec).toMatchObject({ confirmation: 'token_redeemed', confirmationId: issued.confirmationId, hostName: 'host-from-token' });
    expect(x.records[1]).toMatchObject({ outcome: 'submitted', httpStatus: 201, machineActionId: 'a-1' });
    expect(x.logs).toContain(`info remove_app_restriction: lift the app restriction on host-from-token: confirmed (token_redeemed).`);
  });

  it('a device Defender lets the app not read (403) is shown by id with a note, and the warning names the permission', async () => {
    const x = rig({ getMachine: async () => Promise.reject(new ToolError('permission', 'HTTP 403', 'grant')) });
    const r = await x.guard(x.spec(), {});
    const text = (r.content[0] as { text: string }).text;
    expect(text).toContain(`Lift the app restriction on device ${DEVICE}?`);
    expect(text).toContain('Note: Device details are unavailable: the app lacks the Machine.Read.All permission. Check the id in the Defender portal.');
    expect(x.records[0]).toMatchObject({ event: 'not_sent', confirmation: 'token_issued', hostName: null });
    expect(x.logs.filter((l) => l.startsWith('warning'))).toEqual(['warning Device preview unavailable (HTTP 403 on GET /api/machines): the app may lack Machine.Read.All.']);
    expect(x.logs).toContain(`info remove_app_restriction: waiting for the human to approve: lift the app restriction on ${DEVICE} (token_issued).`);
  });

  it('a device that does not exist (404) ends the call, recorded with the error kind', async () => {
    const gone = new ToolError('not_found', 'no such device', 'check the id');
    const x = rig({ getMachine: async () => Promise.reject(gone) });
    await expect(x.guard(x.spec(), {})).rejects.toBe(gone);
    expect(x.records).toEqual([expect.objectContaining({ event: 'not_sent', confirmation: 'none', reason: 'not_found' })]);
  });

  it('a policy refusal after the device read names the rule; an unexpected error is recorded as "error"', async () => {
    const x = rig({ skip: true, policy: { denyTags: ['t'] } });
    await expect(x.guard(x.spec(), {})).rejects.toMatchObject({ kind: 'policy' });
    expect(x.records).toEqual([expect.objectContaining({ event: 'not_sent', confirmation: 'none', reason: 'MDE_DENY_TAGS', hostName: 'host-1' })]);
    const y = rig({ skip: true });
    await expect(
      y.guard(
        y.spec({
          describe: async () => {
            throw new TypeError('bug');
          },
        }),
        {},
      ),
    ).rejects.toThrow('bug');
    expect(y.records).toEqual([expect.objectContaining({ event: 'not_sent', confirmation: 'none', reason: 'error' })]);
  });

  it('a refusal at the two-person step is recorded with the confirmation the caller gave; a call diverted to an approval writes no intent', async () => {
    // Decided by another approver between this one's offline check and their confirmation.
    const x = rig({ skip: true, twoPerson: {} });
    const approval = pendingApproval();
    await x.store.create({ ...approval, status: 'approved', decidedBy: { kind: 'user', principal: 'u:other', name: 'other' }, decidedAt: approval.requestedAt });
    await expect(x.guard(x.spec({ approval: { kind: 'grant', approval } }), { caller: APPROVER })).rejects.toMatchObject({ kind: 'policy' });
    expect(x.records).toEqual([expect.objectContaining({ event: 'not_sent', confirmation: 'skipped_by_flag', reason: 'decided_once', approvalId: approval.id })]);
    const y = rig({ skip: true, twoPerson: {} });
    const r = await y.guard(y.spec({ approval: { kind: 'request' } }), { caller: REQUESTER });
    expect((r.content[0] as { text: string }).text).toMatch(/^Approval pending: nothing has been sent to Defender yet/);
    expect(y.records).toEqual([expect.objectContaining({ event: 'approval_requested', confirmation: 'skipped_by_flag', requestId: expect.any(String), hostName: 'host-1' })]);
    // A device outside the rule's scope goes ahead as usual.
    const z = rig({ skip: true, twoPerson: { deviceGroups: ['Other group'] } });
    const r2 = await z.guard(z.spec({ approval: { kind: 'request' } }), { caller: REQUESTER });
    expect(r2.content).toEqual([{ type: 'text', text: 'sent' }]);
    expect(z.records.map((rec) => rec.event)).toEqual(['intent', 'outcome']);
  });

  it('an execute that fails is recorded as an outcome with its kind, HTTP status and error code; anything else as internal', async () => {
    const x = rig({ skip: true });
    const upstream = new ToolError('upstream', 'HTTP 503', 'later', { status: 503, code: 'ServiceUnavailable' });
    await expect(x.guard(x.spec({ execute: async () => Promise.reject(upstream) }), {})).rejects.toBe(upstream);
    expect(x.records.map((r) => r.event)).toEqual(['intent', 'outcome']);
    expect(x.records[1]).toMatchObject({ outcome: 'error', errorKind: 'upstream', httpStatus: 503, errorCode: 'ServiceUnavailable', confirmation: 'skipped_by_flag' });
    const y = rig({ skip: true });
    await expect(y.guard(y.spec({ execute: async () => Promise.reject(new ToolError('outcome_unknown', 'timed out', 'check')) }), {})).rejects.toMatchObject({ kind: 'outcome_unknown' });
    expect(y.records[1]).not.toHaveProperty('httpStatus');
    expect(y.records[1]).not.toHaveProperty('errorCode');
    const z = rig({ skip: true });
    await expect(z.guard(z.spec({ execute: async () => Promise.reject(new Error('bug')) }), {})).rejects.toThrow('bug');
    expect(z.records[1]).toMatchObject({ event: 'outcome', outcome: 'error', errorKind: 'internal' });
  });

  it('an outcome that cannot be written after the write is told to the agent and logged; the result is still returned', async () => {
    const x = rig({ skip: true, failAudit: (r) => r.event === 'outcome' });
    const r = await x.guard(x.spec(), {});
    expect(r.content).toEqual([
      { type: 'text', text: 'sent' },
      { type: 'text', text: 'Warning: the action was sent, but its outcome could not be written to the audit log (disk full).' },
    ]);
    expect(x.logs).toContain('error Audit outcome record could not be written after the action was sent: disk full');
    const y = rig({ skip: true, failAudit: (r) => r.event === 'outcome' });
    const failed = new ToolError('upstream', 'HTTP 500', 'later', { status: 500 });
    await expect(y.guard(y.spec({ execute: async () => Promise.reject(failed) }), {})).rejects.toBe(failed);
    expect(y.logs).toContain('error Audit outcome record could not be written: disk full');
  });

  it('an intent that cannot be written refuses the write; a not_sent record that cannot be written is logged and the refusal stands', async () => {
    const x = rig({ skip: true, failAudit: (r) => r.event === 'intent' });
    let executed = false;
    await expect(x.guard(x.spec({ execute: async () => ((executed = true), { result: { content: [] }, audit: { outcome: 'submitted' } }) }), {})).rejects.toThrow('disk full');
    expect(executed).toBe(false);
    const y = rig({ policy: { commentPattern: /^CHG-/ }, failAudit: () => true });
    await expect(y.guard(y.spec(), {})).rejects.toMatchObject({ kind: 'policy' });
    expect(y.logs).toEqual(['error Audit record (not_sent) could not be written: disk full']);
  });

  it('carries the target action and the approval\'s fields; an approval skips the comment check (done when requested); the two-person rule reads the device once', async () => {
    const x = rig({ skip: true, policy: { commentPattern: /^CHG-/ }, twoPerson: {} });
    const approval = pendingApproval();
    await x.store.create(approval);
    await x.guard(x.spec({ approval: { kind: 'grant', approval }, subject: { action: 'unrestrict', machineId: DEVICE, comment: COMMENT, targetActionId: 'act-9' } }), { caller: APPROVER });
    expect(x.records.map((r) => r.event)).toEqual(['approval_granted', 'intent', 'outcome']);
    for (const r of x.records) expect(r).toMatchObject({ targetActionId: 'act-9', approvalId: approval.id, requester: { name: 'requester@contoso.com' }, approver: { name: 'approver@contoso.com' }, client: null });
    const w = rig({ skip: true, twoPerson: { deviceGroups: ['Other group'] } });
    await w.guard(w.spec({ approval: { kind: 'request' } }), { caller: REQUESTER });
    expect(w.reads).toEqual([DEVICE]);
    for (const r of w.records) expect(r).toMatchObject({ hostName: 'host-1' });
    const y = rig({ skip: true });
    await y.guard(y.spec(), { client: { name: 'c', version: '2' } });
    expect(y.reads).toEqual([]);
    expect(y.records[0]).not.toHaveProperty('targetActionId');
    expect(y.records[0]).toMatchObject({ client: { name: 'c', version: '2' }, hostName: null });
    expect(y.logs).toContain(`warning Confirmation skipped by --dangerously-skip-confirmation: lift the app restriction on ${DEVICE}.`);
    // One line for one event (a client sees each as a notification): no second "confirmed (skipped_by_flag)".
    expect(y.logs.filter((l) => l.includes('lift the app restriction'))).toEqual([`warning Confirmation skipped by --dangerously-skip-confirmation: lift the app restriction on ${DEVICE}.`]);
  });

  it('an approver who may not decide is refused offline: recorded, nothing read, nothing described', async () => {
    const x = rig({ twoPerson: {} });
    const approval = pendingApproval();
    await x.store.create(approval);
    let described = false;
    const spec = x.spec({ approval: { kind: 'grant', approval }, describe: async () => ((described = true), x.request) });
    await expect(x.guard(spec, { caller: REQUESTER })).rejects.toMatchObject({ kind: 'policy', details: { rule: 'two-person' } });
    expect(x.reads).toEqual([]);
    expect(described).toBe(false);
    expect(x.records).toEqual([expect.objectContaining({ event: 'not_sent', reason: 'two-person', approvalId: approval.id })]);
  });
});

const person = (oid: string, name: string, roles: string[]): Caller => ({ kind: 'user', oid, tid: 't', preferredUsername: name, name: undefined, roles, token: 'x', expiresAt: 2e9 });
const REQUESTER = person('11111111-1111-1111-1111-111111111111', 'requester@contoso.com', []);
const APPROVER = person('22222222-2222-2222-2222-222222222222', 'approver@contoso.com', ['Approver']);

function pendingApproval(): Approval {
  const now = Date.now();
  return {
    id: '3f2b1c9e-8d7a-4e6f-9b0c-1a2b3c4d5e6f',
    status: 'pending',
    action: 'unrestrict',
    tool: 'remove_app_restriction',
    machineId: DEVICE,
    comment: COMMENT,
    preview: { machineId: DEVICE, hostName: 'host-1', osPlatform: null, deviceGroup: 'G', healthStatus: null, lastSeen: null, tags: ['T'] } as never,
    requestedBy: { kind: 'user', principal: principalKey(REQUESTER), name: 'requester@contoso.com', oid: '11111111-1111-1111-1111-111111111111', tid: 't' },
    requestedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 60_000).toISOString(),
  };
}
