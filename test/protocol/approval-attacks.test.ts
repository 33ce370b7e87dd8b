/**
 * The two-person rule under attack (adversarial review): paths around the second person, who may read
 * approvals, and what the approver is told when the approval store fails after the action was sent.
 * Through SDK Streamable HTTP clients against the fake Entra ID and the Defender fake, as approval.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AuditTrail } from '../../src/audit.js';
import { MemoryApprovalStore, type Approval } from '../../src/approval/store.js';
import { parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { openSharedState } from '../../src/store/open.js';
import { ANALYST, SECOND_ANALYST, TENANT, API_CLIENT_ID } from '../fakes/entra-id.js';
import { PENDING_DEVICE, RESTRICTED_DEVICE, textOf } from '../helpers/harness.js';
import { describeWithRedis } from '../helpers/redis-server.js';
import { failingAudit, useRemote, type Remote } from '../helpers/remote.js';

const remote = useRemote();
const UNRESTRICT = `/api/machines/${RESTRICTED_DEVICE}/unrestrictCodeExecution`;
const UNRESTRICTED_DEVICE = '9a3f6c1d2e4b5a69788766554433221100ffeedd'; // finance-ws-018, group Finance Workstations, not restricted
const THIRD_ANALYST = { oid: '77777777-6666-4555-8444-333333333333', preferred_username: 'cy@contoso.com', name: 'Cy Analyst' };
const COMMENT = 'INC-4242: malware removed, re-scanned clean';
const APPROVER = { roles: ['MDE.Approver'] };

type Out = { outcome?: string; count?: number; approvals?: { id: string }[]; machineAction?: { id: string }; approval?: { id: string; status: string; machineAction?: { id: string } } };
const out = (r: { structuredContent?: unknown }) => r.structuredContent as Out;

async function request(r: Remote) {
  const ada = await r.connect(await r.entra.userToken({ user: ANALYST }), { elicit: 'accept' });
  const asked = await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: COMMENT });
  expect(asked.isError, textOf(asked)).toBeFalsy();
  return { ada, id: out(asked).approval!.id };
}

/** Someone restricts a device in the Defender portal: a RestrictCodeExecution action, still Pending. */
async function pendingRestriction(r: Remote, machineId: string): Promise<string> {
  const res = await fetch(`${r.apiUrl}/api/machines/${machineId}/restrictCodeExecution`, {
    method: 'POST',
    headers: { authorization: `Bearer ${r.sim.tokenFor('soc-lead@contoso.com')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ Comment: 'INC-5150: suspicious binaries, restricting' }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

describe('two-person rule under attack', () => {
  it('cancelling a pending RestrictCodeExecution (the device would stay unrestricted) is refused like lifting it: nothing sent; cancelling an unrestrict still works', async () => {
    const r = await remote({ approval: {}, skipConfirmation: true });
    const actionId = await pendingRestriction(r, UNRESTRICTED_DEVICE);
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST }));
    const cancelled = await ada.tool('cancel_machine_action', { actionId, comment: 'INC-5150: false positive' });
    expect(cancelled.isError).toBe(true);
    expect(textOf(cancelled)).toMatch(/^Error \(policy\): Refused by the two-person rule/);
    expect(r.sim.apiRequests('POST', '/cancel')).toHaveLength(0);
    expect(r.sim.machineActions().find((a) => a.id === actionId)?.status).toBe('Pending');

    // Withdrawing a pending unrestrict keeps the device restricted: no second person needed.
    const unrestrict = r.sim.machineActions().find((a) => a.machineId === PENDING_DEVICE && a.type === 'UnrestrictCodeExecution' && a.status === 'Pending')!;
    const ok = await ada.tool('cancel_machine_action', { actionId: unrestrict.id, comment: 'INC-4411: not yet' });
    expect(ok.isError, textOf(ok)).toBeFalsy();
    expect(r.sim.apiRequests('POST', '/cancel')).toHaveLength(1);
  });

  it('with MDE_APPROVAL_DEVICE_GROUPS, a pending restriction outside those groups may still be cancelled', async () => {
    const r = await remote({ approval: { deviceGroups: ['Tier 0 Servers'] }, skipConfirmation: true });
    const actionId = await pendingRestriction(r, UNRESTRICTED_DEVICE);
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST }));
    const cancelled = await ada.tool('cancel_machine_action', { actionId, comment: 'INC-5150: false positive' });
    expect(cancelled.isError, textOf(cancelled)).toBeFalsy();
  });

  it('approvals (device, comment) are shown only to the requester, the decider and approvers: not to other analysts or app callers', async () => {
    const r = await remote({ approval: {}, appCallerRole: 'MDE.Unrestrict.App' });
    const { ada, id } = await request(r);
    const cy = await r.connect(await r.entra.userToken({ user: THIRD_ANALYST }));
    expect(out(await cy.tool('list_pending_approvals', {}))).toMatchObject({ count: 0, approvals: [] });
    const peek = await cy.tool('get_approval', { approvalId: id });
    expect(peek.isError).toBe(true);
    expect(textOf(peek)).toMatch(/shown only to its requester and to analysts holding the app role MDE\.Approver/);
    expect(textOf(peek)).not.toContain(COMMENT);

    const app = await r.connect(await r.entra.appToken({ roles: ['MDE.Unrestrict.App'] }));
    expect(out(await app.tool('list_pending_approvals', {}))).toMatchObject({ count: 0 });
    expect((await app.tool('get_approval', { approvalId: id })).isError).toBe(true);

    // The requester sees her own; an approver sees all, and decides.
    expect(out(await ada.tool('list_pending_approvals', {}))).toMatchObject({ count: 1, approvals: [{ id }] });
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }));
    expect(out(await bob.tool('list_pending_approvals', {}))).toMatchObject({ count: 1, approvals: [{ id }] });
    expect((await bob.tool('reject_action', { approvalId: id, reason: 'not clean yet' })).isError).toBeFalsy();
    expect(out(await ada.tool('get_approval', { approvalId: id })).approval).toMatchObject({ status: 'rejected' });
    expect(r.sim.apiRequests('POST')).toHaveLength(0);
  });

  it('the approval store failing after the action was sent: the approver is told it was sent (with a warning), not an error', async () => {
    const store = new MemoryApprovalStore();
    let failComplete = true;
    const flaky = Object.assign(Object.create(store) as MemoryApprovalStore, {
      complete: async (id: string, c: Parameters<MemoryApprovalStore['complete']>[1]) => {
        if (failComplete) throw new Error('The shared store (Redis) is unreachable: connection refused');
        return store.complete(id, c);
      },
    });
    const r = await remote({ approval: { store: flaky } });
    const { ada, id } = await request(r);
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }), { elicit: 'accept' });
    const approved = await bob.tool('approve_action', { approvalId: id });
    expect(approved.isError, textOf(approved)).toBeFalsy();
    expect(out(approved)).toMatchObject({ outcome: 'submitted' });
    expect(textOf(approved)).toMatch(/Warning: the action was sent, but the approval could not be updated/);
    expect(r.sim.apiRequests('POST', UNRESTRICT)).toHaveLength(1);
    failComplete = false;
    const seen = out(await ada.tool('get_approval', { approvalId: id })).approval as Approval | undefined;
    expect(seen).toMatchObject({ status: 'approved' });
    // Asking again cannot send it twice.
    const again = await bob.tool('approve_action', { approvalId: id });
    expect(again.isError).toBe(true);
    expect(r.sim.apiRequests('POST', UNRESTRICT)).toHaveLength(1);
  });

  it('an approval granted but never sent (its intent record cannot be written) says failed, not approved', async () => {
    const { audit, written } = failingAudit((record) => record.event === 'intent' && record.tool === 'approve_action');
    const r = await remote({ approval: {}, audit });
    const { ada, id } = await request(r);
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }), { elicit: 'accept' });
    const approved = await bob.tool('approve_action', { approvalId: id });
    expect(approved.isError).toBe(true);
    expect(textOf(approved)).toMatch(/^Error \(audit_unavailable\)/);
    expect(written).toContain('approval_granted');
    expect(r.sim.apiRequests('POST')).toHaveLength(0);
    expect(out(await ada.tool('get_approval', { approvalId: id })).approval).toMatchObject({ status: 'failed', reason: expect.stringMatching(/approved, but not sent: audit_unavailable/) });
  });

  it('a long comment is shortened on a character boundary: no half of a surrogate pair reaches Defender', async () => {
    const r = await remote({ approval: {}, skipConfirmation: true });
    const suffix = ` (requested by ${ANALYST.preferred_username}, approved by ${SECOND_ANALYST.preferred_username})`;
    const room = 1000 - suffix.length;
    // The emoji's first half is the last character kept before the ellipsis.
    const long = `INC-1: ${'x'.repeat(room - 2 - 'INC-1: '.length)}\u{1F600}${'y'.repeat(40)}`;
    expect(long.length).toBeLessThanOrEqual(1000);
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST }));
    const asked = await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: long });
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }));
    const approved = await bob.tool('approve_action', { approvalId: out(asked).approval!.id });
    expect(approved.isError, textOf(approved)).toBeFalsy();
    const body = r.sim.apiRequests('POST', UNRESTRICT)[0]!.body;
    expect(body).not.toMatch(/\\ud83d(?!\\ude00)/i);
    const sent = JSON.parse(body).Comment as string;
    expect(sent).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    expect(sent).toMatch(/^INC-1: x+… \(requested by ada@contoso\.com, approved by bob@contoso\.com\)$/);
    expect(sent.length).toBeLessThanOrEqual(1000);
  });

  it('an analyst without the role learns nothing of a decided approval from approve_action or reject_action (not who decided, nor when)', async () => {
    const r = await remote({ approval: {} });
    const { id } = await request(r);
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }));
    expect((await bob.tool('reject_action', { approvalId: id, reason: 'Re-scan still shows the implant' })).isError).toBeFalsy();
    const cy = await r.connect(await r.entra.userToken({ user: THIRD_ANALYST }), { elicit: 'accept' });
    for (const [tool, args] of [['approve_action', { approvalId: id }], ['reject_action', { approvalId: id, reason: 'no' }]] as const) {
      const refused = await cy.tool(tool, args);
      expect(refused.isError).toBe(true);
      expect(textOf(refused)).toMatch(/needs the app role MDE\.Approver/);
      expect(textOf(refused)).not.toMatch(/bob|rejected|Re-scan/);
    }
    expect(cy.prompts).toHaveLength(0);
    expect(r.sim.apiRequests('POST')).toHaveLength(0);
  });

  it('a rejection that loses the race to an approval is refused and audited (not_sent, decided_once): every decision attempt leaves a record', async () => {
    const audit = { records: [] as Record<string, unknown>[] };
    const trail: AuditTrail = { enabled: true, write: async (record) => void audit.records.push(record as unknown as Record<string, unknown>) };
    const store = new MemoryApprovalStore();
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered: () => void = () => undefined;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const slow = Object.assign(Object.create(store) as MemoryApprovalStore, {
      decide: async (id: string, d: Parameters<MemoryApprovalStore['decide']>[1], now: number) => {
        if (d.status === 'rejected') {
          entered();
          await held; // the rejecter passed every check; the approver decides meanwhile
        }
        return store.decide(id, d, now);
      },
    });
    const r = await remote({ approval: { store: slow }, audit: trail });
    const { id } = await request(r);
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }), { elicit: 'accept' });
    const cy = await r.connect(await r.entra.userToken({ user: THIRD_ANALYST, claims: APPROVER }));
    const rejecting = cy.tool('reject_action', { approvalId: id, reason: 'not clean' });
    await inside;
    const approved = await bob.tool('approve_action', { approvalId: id });
    expect(approved.isError, textOf(approved)).toBeFalsy();
    release();
    const rejected = await rejecting;
    expect(rejected.isError).toBe(true);
    expect(textOf(rejected)).toMatch(/already approved by bob@contoso\.com/);
    expect(audit.records.filter((x) => x.tool === 'reject_action')).toMatchObject([{ event: 'not_sent', reason: 'decided_once', approvalId: id, user: { oid: THIRD_ANALYST.oid } }]);
    expect(r.sim.apiRequests('POST', UNRESTRICT)).toHaveLength(1);
  });
});

describeWithRedis('two-person rule: the simulator never shares a real deployment\'s Redis namespace', (redis) => {
  it('simulated users on --simulator with the real registration\'s ids in the environment cannot see (or decide) its approvals', async () => {
    const key = randomBytes(32).toString('base64');
    const real = { AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: API_CLIENT_ID, AZURE_CLIENT_SECRET: 's3cret-value', MDE_REDIS_URL: redis().url, MDE_CONFIRMATION_KEY: key };
    const parse = (argv: string[]) => {
      const p = parseConfig(argv, real);
      if (p.kind !== 'run') throw new Error(p.kind);
      return p.config;
    };
    const prod = await openSharedState(parse(['--transport', 'http', '--approval', 'two-person']), silentLogger);
    const sim = await openSharedState(parse(['--simulator', '--transport', 'http', '--http-auth', 'simulated-users', '--approval', 'two-person']), silentLogger);
    try {
      const now = Date.now();
      const approval: Approval = {
        id: '3f2b1c9e-8d7a-4e6f-9b0c-1a2b3c4d5e6f',
        status: 'pending',
        action: 'unrestrict',
        tool: 'remove_app_restriction',
        machineId: RESTRICTED_DEVICE,
        comment: COMMENT,
        preview: { machineId: RESTRICTED_DEVICE, hostName: 'finance-ws-017.contoso.com', tags: [] } as unknown as Approval['preview'],
        requestedBy: { kind: 'user', principal: `user:${TENANT}:${ANALYST.oid}`, name: ANALYST.preferred_username, oid: ANALYST.oid, tid: TENANT },
        requestedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + 3600_000).toISOString(),
      };
      await prod.approvals.create(approval);
      expect((await prod.approvals.pending()).map((a) => a.id)).toEqual([approval.id]);
      expect(await sim.approvals.pending()).toEqual([]);
      expect(await sim.approvals.get(approval.id)).toBeUndefined();
    } finally {
      await Promise.all([prod.close(), sim.close()]);
    }
  });
});
