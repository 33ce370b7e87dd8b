/**
 * The two-person rule (MDE_APPROVAL=two-person) in remote mode, through SDK Streamable HTTP clients: two
 * signed-in analysts and an app caller against the fake Entra ID and the Defender fake. What went over
 * the wire is asserted: how many POSTs, with whose OBO token, with which comment.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { JsonlAuditTrail } from '../../src/audit.js';
import { silentLogger } from '../../src/log.js';
import { connectRedisState } from '../../src/store/redis.js';
import type { SharedState } from '../../src/store/types.js';
import { describeWithRedis } from '../helpers/redis-server.js';
import { ANALYST, CALLING_APP, SECOND_ANALYST } from '../fakes/entra-id.js';
import { RESTRICTED_DEVICE, textOf } from '../helpers/harness.js';
import { failingAudit, useRemote, type Remote } from '../helpers/remote.js';

const remote = useRemote();
const UNRESTRICT = `/api/machines/${RESTRICTED_DEVICE}/unrestrictCodeExecution`;
const ENG_DEVICE = '01a02b2beb2439cac6bc65ffa3798a3623437f3c'; // eng-build-042, group Engineering, restricted
const THIRD_ANALYST = { oid: '77777777-6666-4555-8444-333333333333', preferred_username: 'cy@contoso.com', name: 'Cy Approver' };
const COMMENT = 'INC-4242: malware removed, re-scanned clean';
const APPROVER = { roles: ['MDE.Approver'] };

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
function auditFile() {
  dir = mkdtempSync(join(tmpdir(), 'mde-approval-'));
  const path = join(dir, 'audit.jsonl');
  return { trail: new JsonlAuditTrail(path), records: () => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

type Out = { outcome?: string; machineAction?: { id: string }; approval?: { id: string; status: string; expiresAt: string; requestedBy: { name: string }; preview: { hostName: string | null }; comment: string; decidedBy?: { name: string }; machineAction?: { id: string }; reason?: string } };
const out = (r: { structuredContent?: unknown }) => r.structuredContent as Out;

/** Ada asks (confirming through her own prompt); the approval id comes back. */
async function request(r: Remote, machineId = RESTRICTED_DEVICE, comment = COMMENT) {
  const ada = await r.connect(await r.entra.userToken({ user: ANALYST }), { elicit: 'accept' });
  const asked = await ada.tool('remove_app_restriction', { machineId, comment });
  expect(asked.isError, textOf(asked)).toBeFalsy();
  return { ada, asked, id: out(asked).approval!.id };
}

describe('two-person rule: a second analyst approves', () => {
  it('the requester gets approval_pending with nothing sent; another analyst with the role approves; the action goes out under the approver\'s OBO token with the combined comment', async () => {
    const audit = auditFile();
    const r = await remote({ approval: {}, audit: audit.trail });
    const { ada, asked, id } = await request(r);
    expect(ada.prompts).toHaveLength(1); // the requester confirmed through her own prompt
    expect(out(asked)).toMatchObject({
      outcome: 'approval_pending',
      confirmedBy: 'elicitation',
      approval: { id, status: 'pending', requestedBy: { name: ANALYST.preferred_username }, comment: COMMENT, preview: { hostName: 'finance-ws-017.contoso.com', machineId: RESTRICTED_DEVICE } },
    });
    expect(Date.parse(out(asked).approval!.expiresAt) - Date.now()).toBeGreaterThan(59 * 60_000);
    expect(textOf(asked)).toMatch(/nothing has been sent/i);
    expect(r.sim.apiRequests('POST')).toHaveLength(0);

    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }), { elicit: 'accept' });
    const listed = await bob.tool('list_pending_approvals', {});
    expect(listed.structuredContent).toMatchObject({ count: 1, approvals: [{ id, status: 'pending' }] });

    const approved = await bob.tool('approve_action', { approvalId: id });
    expect(approved.isError, textOf(approved)).toBeFalsy();
    expect(out(approved)).toMatchObject({ outcome: 'submitted', confirmedBy: 'elicitation', approval: { status: 'approved', decidedBy: { name: SECOND_ANALYST.preferred_username } } });
    // Bob confirmed through his own prompt, which names the requester in the comment.
    expect(bob.prompts).toHaveLength(1);
    expect(bob.prompts[0]!.message).toContain(`requested by ${ANALYST.preferred_username}, approved by ${SECOND_ANALYST.preferred_username}`);

    // One POST, with Bob's OBO token and the comment naming both.
    const posts = r.sim.apiRequests('POST', UNRESTRICT);
    expect(posts).toHaveLength(1);
    const bobObo = r.entra.oboIssued.filter((o) => o.oid === SECOND_ANALYST.oid).map((o) => `Bearer ${o.accessToken}`);
    expect(bobObo).toContain(posts[0]!.headers.authorization);
    expect(JSON.parse(posts[0]!.body)).toEqual({ Comment: `${COMMENT} (requested by ${ANALYST.preferred_username}, approved by ${SECOND_ANALYST.preferred_username})` });
    const action = r.sim.machineActions().find((a) => a.machineId === RESTRICTED_DEVICE && a.type === 'UnrestrictCodeExecution');
    expect(action?.requestor).toBe(SECOND_ANALYST.preferred_username);

    // The requester sees it through get_approval, with the MachineAction.
    const seen = await ada.tool('get_approval', { approvalId: id });
    expect(out(seen).approval).toMatchObject({ status: 'approved', outcome: 'submitted', machineAction: { id: action!.id } });
    expect((await bob.tool('list_pending_approvals', {})).structuredContent).toMatchObject({ count: 0 });

    // Audit: requested, granted, then intent and outcome, each naming requester and approver.
    const records = audit.records().filter((x) => x.approvalId === id);
    expect(records.map((x) => x.event)).toEqual(['approval_requested', 'approval_granted', 'intent', 'outcome']);
    expect(records[0]).toMatchObject({ user: { oid: ANALYST.oid }, requester: { oid: ANALYST.oid, name: ANALYST.preferred_username }, approver: null, confirmation: 'elicitation_accepted' });
    for (const x of records.slice(1)) expect(x).toMatchObject({ user: { oid: SECOND_ANALYST.oid }, requester: { oid: ANALYST.oid }, approver: { oid: SECOND_ANALYST.oid } });
    expect(records[3]).toMatchObject({ outcome: 'submitted', httpStatus: 201, machineActionId: action!.id });
    expect(JSON.stringify(audit.records())).not.toMatch(/eyJ/); // no token in the trail
  });

  it('refuses the requester approving their own request (policy, rule two-person): no prompt, nothing sent', async () => {
    const audit = auditFile();
    const r = await remote({ approval: {}, audit: audit.trail });
    // Ada holds the approver role herself: still not allowed to approve her own request.
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST, claims: APPROVER }), { elicit: 'accept' });
    const asked = await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const id = out(asked).approval!.id;
    const self = await ada.tool('approve_action', { approvalId: id });
    expect(self.isError).toBe(true);
    expect(textOf(self)).toMatch(/^Error \(policy\): Refused by the two-person rule/);
    expect(ada.prompts).toHaveLength(1); // only the request's own prompt
    expect(r.sim.apiRequests('POST')).toHaveLength(0);
    expect(out(await ada.tool('get_approval', { approvalId: id })).approval!.status).toBe('pending');
    expect(audit.records().at(-1)).toMatchObject({ event: 'not_sent', tool: 'approve_action', reason: 'two-person', approvalId: id });
  });

  it('refuses an approver without the app role, and an app caller: nothing sent', async () => {
    const r = await remote({ approval: {}, appCallerRole: 'MDE.Unrestrict.App' });
    const { id } = await request(r);
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST }), { elicit: 'accept' });
    const refused = await bob.tool('approve_action', { approvalId: id });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/needs the app role MDE\.Approver \(MDE_APPROVER_ROLE\)/);
    expect(bob.prompts).toHaveLength(0);

    const app = await r.connect(await r.entra.appToken({ roles: ['MDE.Unrestrict.App', 'MDE.Approver'] }));
    const byApp = await app.tool('approve_action', { approvalId: id });
    expect(byApp.isError).toBe(true);
    expect(textOf(byApp)).toMatch(/only a signed-in analyst can approve/);
    expect(r.sim.apiRequests('POST')).toHaveLength(0);
  });

  it('an app caller\'s request (a triage agent) is approved by an analyst and sent under the analyst\'s identity', async () => {
    const r = await remote({ approval: {}, appCallerRole: 'MDE.Unrestrict.App', skipConfirmation: true });
    const app = await r.connect(await r.entra.appToken({ roles: ['MDE.Unrestrict.App'] }));
    const asked = await app.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(out(asked)).toMatchObject({ outcome: 'approval_pending', approval: { requestedBy: { name: `app ${CALLING_APP.azp}` } } });
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST, claims: APPROVER }));
    const approved = await ada.tool('approve_action', { approvalId: out(asked).approval!.id });
    expect(approved.isError, textOf(approved)).toBeFalsy();
    const posts = r.sim.apiRequests('POST', UNRESTRICT);
    expect(posts).toHaveLength(1);
    expect(posts[0]!.headers.authorization).toBe(`Bearer ${r.entra.oboIssued.find((o) => o.oid === ANALYST.oid)!.accessToken}`);
    expect(JSON.parse(posts[0]!.body).Comment).toBe(`${COMMENT} (requested by app ${CALLING_APP.azp}, approved by ${ANALYST.preferred_username})`);
  });

  it('an expired approval cannot be approved (fake clock); it is audited as expired once', async () => {
    const audit = auditFile();
    const r = await remote({ approval: { ttlMs: 60 * 60_000 }, audit: audit.trail });
    const { ada, id } = await request(r);
    r.advanceApprovalClock(60 * 60_000 + 1);
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }), { elicit: 'accept' });
    const late = await bob.tool('approve_action', { approvalId: id });
    expect(late.isError).toBe(true);
    expect(textOf(late)).toMatch(/expired at .* can no longer be approved/);
    expect(bob.prompts).toHaveLength(0);
    expect(r.sim.apiRequests('POST')).toHaveLength(0);
    expect(out(await ada.tool('get_approval', { approvalId: id })).approval!.status).toBe('expired');
    expect((await bob.tool('list_pending_approvals', {})).structuredContent).toMatchObject({ count: 0 });
    expect(audit.records().filter((x) => x.event === 'approval_expired')).toHaveLength(1);
  });

  it('a rejection sends nothing; the requester sees the reason; it cannot be approved afterwards', async () => {
    const audit = auditFile();
    const r = await remote({ approval: {}, audit: audit.trail });
    const { ada, id } = await request(r);
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }), { elicit: 'accept' });
    const rejected = await bob.tool('reject_action', { approvalId: id, reason: 'Re-scan still shows the implant' });
    expect(rejected.isError, textOf(rejected)).toBeFalsy();
    expect(out(await ada.tool('get_approval', { approvalId: id })).approval).toMatchObject({ status: 'rejected', reason: 'Re-scan still shows the implant', decidedBy: { name: SECOND_ANALYST.preferred_username } });
    const after = await bob.tool('approve_action', { approvalId: id });
    expect(after.isError).toBe(true);
    expect(textOf(after)).toMatch(`already rejected by ${SECOND_ANALYST.preferred_username}`);
    expect(r.sim.apiRequests('POST')).toHaveLength(0);
    expect(audit.records().find((x) => x.event === 'approval_rejected')).toMatchObject({ requester: { oid: ANALYST.oid }, approver: { oid: SECOND_ANALYST.oid }, reason: 'Re-scan still shows the implant' });
  });

  it('the requester may withdraw their own request; asking twice while it is pending returns the same approval', async () => {
    const r = await remote({ approval: {} });
    const { ada, id } = await request(r);
    const again = await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(out(again).approval!.id).toBe(id);
    expect((await ada.tool('list_pending_approvals', {})).structuredContent).toMatchObject({ count: 1 });
    const withdrawn = await ada.tool('reject_action', { approvalId: id, reason: 'Asked by mistake' });
    expect(withdrawn.isError, textOf(withdrawn)).toBeFalsy();
    expect(out(withdrawn).approval).toMatchObject({ status: 'rejected', decidedBy: { name: ANALYST.preferred_username } });
    // Someone without the approver role cannot reject another's request.
    const { id: second } = await request(r, ENG_DEVICE);
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST }));
    const refused = await bob.tool('reject_action', { approvalId: second, reason: 'no' });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/needs the app role MDE\.Approver/);
    expect(r.sim.apiRequests('POST')).toHaveLength(0);
  });

  it('two approvers at once: one POST; the second learns who decided first', async () => {
    const r = await remote({ approval: {} });
    const { id } = await request(r);
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }), { elicit: 'accept' });
    const cy = await r.connect(await r.entra.userToken({ user: THIRD_ANALYST, claims: APPROVER }), { elicit: 'accept' });
    r.sim.injectFault({ method: 'POST', path: 'unrestrictCodeExecution' }, { kind: 'delay', ms: 200 });
    const [b, c] = await Promise.all([bob.tool('approve_action', { approvalId: id }), cy.tool('approve_action', { approvalId: id })]);
    expect(r.sim.apiRequests('POST', UNRESTRICT)).toHaveLength(1);
    const winner = b.isError ? c : b;
    const loser = b.isError ? b : c;
    expect(winner.isError, textOf(winner)).toBeFalsy();
    expect(loser.isError).toBe(true);
    const first = out(winner).approval!.decidedBy!.name;
    expect(textOf(loser)).toMatch(new RegExp(`already approved by ${first.replace('.', '\\.')} at `));
  });

  it('the approver without elicitation confirms with a token bound to them: another approver cannot redeem it', async () => {
    const r = await remote({ approval: {} });
    const { id } = await request(r);
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }));
    const first = await bob.tool('approve_action', { approvalId: id });
    expect(out(first).outcome).toBe('confirmation_required');
    const token = (first.structuredContent as { confirmation: { token: string } }).confirmation.token;
    expect(r.sim.apiRequests('POST')).toHaveLength(0);

    const cy = await r.connect(await r.entra.userToken({ user: THIRD_ANALYST, claims: APPROVER }));
    const stolen = await cy.tool('approve_action', { approvalId: id, confirmationToken: token });
    expect(stolen.isError).toBe(true);
    expect(textOf(stolen)).toMatch(/issued to another user/);
    expect(r.sim.apiRequests('POST')).toHaveLength(0);

    const done = await bob.tool('approve_action', { approvalId: id, confirmationToken: token });
    expect(done.isError, textOf(done)).toBeFalsy();
    expect(out(done)).toMatchObject({ outcome: 'submitted', confirmedBy: 'token' });
    expect(r.sim.apiRequests('POST', UNRESTRICT)).toHaveLength(1);
  });

  it('an approval whose record cannot be written is never sent: the approver gets audit_unavailable, the approval says failed', async () => {
    let failGranted = true;
    const { audit, written } = failingAudit((record) => failGranted && record.event === 'approval_granted');
    const r = await remote({ approval: {}, audit });
    const { ada, id } = await request(r);
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }), { elicit: 'accept' });
    const approved = await bob.tool('approve_action', { approvalId: id });
    expect(approved.isError).toBe(true);
    expect(textOf(approved)).toMatch(/^Error \(audit_unavailable\)/);
    expect(r.sim.apiRequests('POST')).toHaveLength(0);
    expect(written).not.toContain('intent');
    expect(out(await ada.tool('get_approval', { approvalId: id })).approval).toMatchObject({ status: 'failed', reason: expect.stringMatching(/audit log could not be written/) });
    failGranted = false;
    const again = await bob.tool('approve_action', { approvalId: id });
    expect(textOf(again)).toMatch(/already approved by bob@contoso\.com/);
    expect(r.sim.apiRequests('POST')).toHaveLength(0);
  });

  it('MDE_APPROVAL_DEVICE_GROUPS: only devices in those groups wait for an approval', async () => {
    const r = await remote({ approval: { deviceGroups: ['finance workstations'] }, skipConfirmation: true });
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST }));
    const finance = await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(out(finance).outcome).toBe('approval_pending');
    const eng = await ada.tool('remove_app_restriction', { machineId: ENG_DEVICE, comment: COMMENT });
    expect(out(eng).outcome).toBe('submitted');
    expect(r.sim.apiRequests('POST').map((p) => p.path)).toEqual([`/api/machines/${ENG_DEVICE}/unrestrictCodeExecution`]);
  });

  it('a long comment is shortened so the names always fit within 1,000 characters', async () => {
    const r = await remote({ approval: {}, skipConfirmation: true });
    const long = `INC-1: ${'x'.repeat(990)}`;
    const { id } = await request(r, RESTRICTED_DEVICE, long);
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }));
    const approved = await bob.tool('approve_action', { approvalId: id });
    expect(approved.isError, textOf(approved)).toBeFalsy();
    const sent = JSON.parse(r.sim.apiRequests('POST', UNRESTRICT)[0]!.body).Comment as string;
    expect(sent.length).toBeLessThanOrEqual(1000);
    expect(sent).toMatch(/^INC-1: x+… \(requested by ada@contoso\.com, approved by bob@contoso\.com\)$/);
  });

  it('an unknown approval id is not_found, touching nothing', async () => {
    const r = await remote({ approval: {} });
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }));
    const before = r.upstream();
    const missing = await bob.tool('approve_action', { approvalId: '3f2b1c9e-8d7a-4e6f-9b0c-1a2b3c4d5e6f' });
    expect(missing.isError).toBe(true);
    expect(textOf(missing)).toMatch(/^Error \(not_found\)/);
    expect(r.upstream().defender).toBe(before.defender);
  });

  it('the approval tools declare all four hints (reviewed snapshot); without the rule they do not exist', async () => {
    const r = await remote({ approval: {} });
    const ada = await r.connect(await r.entra.userToken());
    const { tools } = await ada.client.listTools();
    const approvalTools = tools.filter((t) => ['list_pending_approvals', 'get_approval', 'approve_action', 'reject_action'].includes(t.name));
    expect(approvalTools).toHaveLength(4);
    for (const t of approvalTools) for (const hint of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const) expect(typeof t.annotations?.[hint], `${t.name}.${hint}`).toBe('boolean');
    await expect(`${JSON.stringify(approvalTools, null, 2)}\n`).toMatchFileSnapshot('./__snapshots__/tools-list-approval.json');

    const off = await remote({});
    const bob = await off.connect(await off.entra.userToken());
    expect((await bob.client.listTools()).tools.map((t) => t.name)).not.toContain('approve_action');
  });

  it('tool descriptions and schemas name only tools this server registers, with the rule on and off', async () => {
    const on = await remote({ approval: {} });
    const every = (await (await on.connect(await on.entra.userToken())).client.listTools()).tools;
    const allNames = every.map((t) => t.name);
    expect(allNames).toContain('approve_action');
    const off = await remote({});
    for (const tools of [every, (await (await off.connect(await off.entra.userToken())).client.listTools()).tools]) {
      const registered = new Set(tools.map((t) => t.name));
      for (const t of tools) {
        const text = JSON.stringify({ description: t.description, input: t.inputSchema, output: t.outputSchema });
        for (const name of allNames) if (text.includes(name)) expect(registered.has(name), `${t.name} names ${name}`).toBe(true);
      }
    }
    // With the rule on, remove_app_restriction tells the agent how an approval goes on.
    expect(every.find((t) => t.name === 'remove_app_restriction')!.description).toContain('approve_action');
  });
});

describeWithRedis('two-person rule across replicas (Redis)', (redis) => {
  it('an approval requested on one replica is approved on another; a replica started afresh sees it; still one POST', async () => {
    const namespace = randomUUID();
    const open: SharedState[] = [];
    const state = async (i: number) => {
      const s = await connectRedisState({ url: redis().url, namespace, replicaId: `replica-${i}`, logger: silentLogger });
      open.push(s);
      return s;
    };
    try {
      const one = await remote({ approval: { store: (await state(1)).approvals } });
      const shared = { entra: one.entra, sim: one.sim, apiUrl: one.apiUrl };
      const two = await remote({ approval: { store: (await state(2)).approvals }, replicaOf: shared });

      const { id } = await request(one);
      // Replica two lists it and its approver approves it there.
      const bob = await two.connect(await one.entra.userToken({ user: SECOND_ANALYST, claims: APPROVER }), { elicit: 'accept' });
      expect((await bob.tool('list_pending_approvals', {})).structuredContent).toMatchObject({ count: 1, approvals: [{ id }] });

      // A third replica, started after the request (a restart), sees the same approval; its approver races Bob.
      const three = await remote({ approval: { store: (await state(3)).approvals }, replicaOf: shared });
      const cy = await three.connect(await one.entra.userToken({ user: THIRD_ANALYST, claims: APPROVER }), { elicit: 'accept' });
      one.sim.injectFault({ method: 'POST', path: 'unrestrictCodeExecution' }, { kind: 'delay', ms: 200 });
      const [b, c] = await Promise.all([bob.tool('approve_action', { approvalId: id }), cy.tool('approve_action', { approvalId: id })]);
      expect(one.sim.apiRequests('POST', UNRESTRICT)).toHaveLength(1);
      const winner = b.isError ? c : b;
      expect(winner.isError, textOf(winner)).toBeFalsy();
      expect(textOf(b.isError ? b : c)).toMatch(/already approved by (bob|cy)@contoso\.com at /);

      // The requester, on replica one, sees the MachineAction the other replica's approver got.
      const ada = await one.connect(await one.entra.userToken({ user: ANALYST }));
      const seen = out(await ada.tool('get_approval', { approvalId: id })).approval!;
      expect(seen).toMatchObject({ status: 'approved', outcome: 'submitted', machineAction: { id: out(winner).machineAction!.id } });
    } finally {
      await Promise.all(open.map((s) => s.close()));
    }
  });
});
