/**
 * Remote mode acting as the analyst, through the SDK's Streamable HTTP client: On-Behalf-Of (the
 * assertion is the caller's token; Defender receives the OBO token, never the caller's), elicitation and
 * logging on the call's own stream, confirmation tokens bound to the user, app-only callers, the audit
 * trail naming who asked, and key rotation.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { JsonlAuditTrail } from '../../src/audit.js';
import { ANALYST, API_CLIENT_ID, CALLING_APP, SECOND_ANALYST } from '../fakes/entra-id.js';
import { PENDING_DEVICE, RESTRICTED_DEVICE, textOf } from '../helpers/harness.js';
import { useRemote } from '../helpers/remote.js';

const remote = useRemote();
afterEach(() => vi.useRealTimers());

const UNRESTRICT = `/api/machines/${RESTRICTED_DEVICE}/unrestrictCodeExecution`;

describe('remote mode: acting as the analyst (On-Behalf-Of)', () => {
  it('exchanges the caller\'s token On-Behalf-Of; Defender receives the OBO token, never the caller\'s, and records the analyst', async () => {
    const r = await remote({});
    const adaToken = await r.entra.userToken({ user: ANALYST });
    const ada = await r.connect(adaToken, { elicit: 'accept' });
    const result = await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: 'INC-77: re-imaged' });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(result.structuredContent).toMatchObject({ outcome: 'submitted', confirmedBy: 'elicitation' });

    // The token endpoint got the OBO grant with Ada's token as the assertion, and the server's own secret.
    const obo = r.entra.tokenRequests().filter((t) => t.form.grant_type === 'urn:ietf:params:oauth:grant-type:jwt-bearer');
    expect(obo).toHaveLength(1);
    expect(obo[0]!.form).toMatchObject({ assertion: adaToken, requested_token_use: 'on_behalf_of', client_id: API_CLIENT_ID });
    const oboToken = r.entra.oboIssued[0]!.accessToken;

    // Every Defender request carried the OBO token; none carried Ada's own token.
    const defender = r.sim.apiRequests();
    expect(defender.length).toBeGreaterThanOrEqual(2); // the device preview, then the write
    for (const req of defender) expect(req.headers.authorization).toBe(`Bearer ${oboToken}`);
    expect(JSON.stringify(r.sim.requests)).not.toContain(adaToken);
    expect(r.sim.apiRequests('POST', UNRESTRICT)).toHaveLength(1);
    // Defender records the analyst as requestor.
    const action = r.sim.machineActions().find((a) => a.machineId === RESTRICTED_DEVICE && a.type === 'UnrestrictCodeExecution');
    expect(action?.requestor).toBe(ANALYST.preferred_username);
    // No client-credential token was ever requested for a user's call.
    expect(r.entra.tokenRequests().filter((t) => t.form.grant_type === 'client_credentials')).toHaveLength(0);
  });

  it('keeps two analysts apart: each call uses its own caller\'s OBO token', async () => {
    const r = await remote({ skipConfirmation: true });
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST }));
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST }));
    await Promise.all([
      ada.tool('find_machine', { name: 'finance-ws-017' }),
      bob.tool('find_machine', { name: 'finance-ws-017' }),
      ada.tool('list_machine_actions', {}),
      bob.tool('list_machine_actions', {}),
    ]);
    const tokenOf = (oid: string) => r.entra.oboIssued.find((o) => o.oid === oid)!.accessToken;
    const used = new Set(r.sim.apiRequests().map((q) => q.headers.authorization));
    expect(used).toEqual(new Set([`Bearer ${tokenOf(ANALYST.oid)}`, `Bearer ${tokenOf(SECOND_ANALYST.oid)}`]));
    // One exchange per analyst: later calls reuse it.
    expect(r.entra.oboIssued).toHaveLength(2);
  });

  it('never folds one analyst\'s call into another\'s: concurrent unrestricts of one device each go out under their own identity', async () => {
    const r = await remote({ skipConfirmation: true });
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST }));
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST }));
    r.sim.injectFault({ method: 'POST', path: 'unrestrictCodeExecution' }, { kind: 'delay', ms: 300 });
    const args = { machineId: RESTRICTED_DEVICE, comment: 'INC-85: cleaned' };
    const [a, b] = await Promise.all([ada.tool('remove_app_restriction', args), bob.tool('remove_app_restriction', args)]);
    expect(a.isError, textOf(a)).toBeFalsy();
    expect(b.isError, textOf(b)).toBeFalsy();
    const posts = r.sim.apiRequests('POST', UNRESTRICT);
    expect(posts).toHaveLength(2);
    const tokenOf = (oid: string) => `Bearer ${r.entra.oboIssued.find((o) => o.oid === oid)!.accessToken}`;
    expect(new Set(posts.map((p) => p.headers.authorization))).toEqual(new Set([tokenOf(ANALYST.oid), tokenOf(SECOND_ANALYST.oid)]));
    // One of them was first; Defender told the other that an action is already in progress.
    expect([a, b].map((x) => (x.structuredContent as { outcome: string }).outcome).sort()).toEqual(['already_pending', 'submitted']);
  });

  it('a refreshed caller token on the same session is exchanged again; the session continues', async () => {
    const r = await remote({ skipConfirmation: true });
    const first = await r.entra.userToken();
    const ada = await r.connect(first);
    await ada.tool('find_machine', { name: 'finance-ws-017' });
    const second = await r.entra.userToken();
    ada.useToken(second);
    await ada.tool('find_machine', { name: 'finance-ws-017' });
    expect(r.entra.oboIssued.map((o) => o.assertion)).toEqual([first, second]);
  });

  it('refuses an app-only caller without the role, and serves one with it under the app\'s own identity', async () => {
    const r = await remote({ appCallerRole: 'MDE.Unrestrict.App', skipConfirmation: true });
    const before = r.upstream();
    await expect(r.connect(await r.entra.appToken({ roles: ['Other'] }))).rejects.toThrow();
    expect(r.upstream()).toEqual(before);

    const app = await r.connect(await r.entra.appToken({ roles: ['MDE.Unrestrict.App'] }));
    const result = await app.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: 'INC-78: automation' });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(r.entra.oboIssued).toHaveLength(0);
    expect(r.entra.tokenRequests().filter((t) => t.form.grant_type === 'client_credentials')).toHaveLength(1);
    const action = r.sim.machineActions().find((a) => a.machineId === RESTRICTED_DEVICE && a.type === 'UnrestrictCodeExecution');
    expect(action?.requestor).toBe(API_CLIENT_ID);
  });

  it('Entra refusing the exchange (no consent) is an actionable error and nothing reaches Defender', async () => {
    const r = await remote({ skipConfirmation: true });
    r.entra.failObo = { code: 65001, error: 'invalid_grant', description: 'The user or administrator has not consented to use the application.' };
    const ada = await r.connect(await r.entra.userToken());
    const result = await ada.tool('find_machine', { name: 'finance-ws-017' });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/AADSTS65001/);
    expect(textOf(result)).toMatch(/consent/);
    expect(r.sim.apiRequests()).toHaveLength(0);
  });
});

describe('remote mode: confirmation over HTTP', () => {
  it('elicitation accept and decline arrive on the call\'s own stream (no standalone GET stream)', async () => {
    const r = await remote({});
    const yes = await r.connect(await r.entra.userToken(), { elicit: 'accept', noStandaloneStream: true });
    const accepted = await yes.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: 'INC-79: cleaned' });
    expect(accepted.isError, textOf(accepted)).toBeFalsy();
    expect(yes.prompts).toHaveLength(1);
    expect(yes.prompts[0]!.message).toContain('finance-ws-017');
    expect(r.sim.apiRequests('POST')).toHaveLength(1);

    const no = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST }), { elicit: 'decline', noStandaloneStream: true });
    // eng-build-042: restricted, nothing pending (a device with an unrestrict pending is answered without a prompt).
    const declined = await no.tool('remove_app_restriction', { machineId: '01a02b2beb2439cac6bc65ffa3798a3623437f3c', comment: 'INC-80: cleaned' });
    expect(declined.isError).toBe(true);
    expect(textOf(declined)).toMatch(/declined/);
    expect(no.prompts).toHaveLength(1);
    expect(r.sim.apiRequests('POST')).toHaveLength(1);
  });

  it('logging notifications of a call reach that call\'s client only', async () => {
    const r = await remote({ skipConfirmation: true });
    const ada = await r.connect(await r.entra.userToken(), { noStandaloneStream: true });
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST }));
    const result = await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: 'INC-84: cleaned' });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(ada.notifications.join('\n')).toMatch(/Confirmation skipped by --dangerously-skip-confirmation/);
    expect(bob.notifications).toEqual([]);
  });

  it('over HTTP, info notifications reach only a session that asked with logging/setLevel; warnings reach every call\'s client', async () => {
    const r = await remote({ skipConfirmation: true });
    const quiet = await r.connect(await r.entra.userToken(), { noStandaloneStream: true });
    const asked = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST }), { noStandaloneStream: true });
    await asked.client.setLoggingLevel('info');
    // A 429 on the history makes each call log its retry at info.
    r.sim.injectFault({ method: 'GET', path: '/api/machineactions' }, { kind: 'status', status: 429, headers: { 'Retry-After': '1' } });
    expect((await quiet.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: 'INC-85: cleaned' })).isError).toBeFalsy();
    r.sim.injectFault({ method: 'GET', path: '/api/machineactions' }, { kind: 'status', status: 429, headers: { 'Retry-After': '1' } });
    expect((await asked.tool('remove_app_restriction', { machineId: '01a02b2beb2439cac6bc65ffa3798a3623437f3c', comment: 'INC-85: cleaned' })).isError).toBeFalsy();
    expect(quiet.notifications.join('\n')).toMatch(/Confirmation skipped by --dangerously-skip-confirmation/);
    expect(quiet.notifications.join('\n')).not.toMatch(/rate limit \(429\)/);
    expect(asked.notifications.join('\n')).toMatch(/Confirmation skipped by --dangerously-skip-confirmation/);
    expect(asked.notifications.join('\n')).toMatch(/rate limit \(429\)/);
  });

  it('progress notifications of a call arrive on its own stream', async () => {
    const r = await remote({ skipConfirmation: true, fakeClock: true });
    const ada = await r.connect(await r.entra.userToken(), { noStandaloneStream: true });
    const sent = await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: 'INC-86: cleaned' });
    const id = (sent.structuredContent as { machineAction: { id: string } }).machineAction.id;
    const progress: { progress: number; message?: string }[] = [];
    const done = await ada.client.callTool(
      { name: 'get_machine_action', arguments: { actionId: id, waitForCompletion: true, timeoutSeconds: 60 } },
      undefined,
      { onprogress: (p) => void progress.push(p) },
    );
    expect(done.structuredContent).toMatchObject({ final: true, machineAction: { status: 'Succeeded' } });
    expect(progress.length).toBeGreaterThan(0);
    expect(progress[0]!.message).toMatch(/is Pending after 0 s/);
  });

  it('a confirmation token issued to one analyst cannot be redeemed by another', async () => {
    const r = await remote({});
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST }));
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST }));
    const args = { machineId: RESTRICTED_DEVICE, comment: 'INC-81: cleaned' };
    const first = await ada.tool('remove_app_restriction', args);
    expect(first.structuredContent).toMatchObject({ outcome: 'confirmation_required' });
    const token = (first.structuredContent as { confirmation: { token: string } }).confirmation.token;

    const stolen = await bob.tool('remove_app_restriction', { ...args, confirmationToken: token });
    expect(stolen.isError).toBe(true);
    expect(textOf(stolen)).toMatch(/issued to another user/);
    expect(r.sim.apiRequests('POST')).toHaveLength(0);

    const redeemed = await ada.tool('remove_app_restriction', { ...args, confirmationToken: token });
    expect(redeemed.isError, textOf(redeemed)).toBeFalsy();
    expect(redeemed.structuredContent).toMatchObject({ outcome: 'submitted', confirmedBy: 'token' });
    expect(r.sim.apiRequests('POST')).toHaveLength(1);
  });
});

describe('remote mode: audit and keys', () => {
  it('every audit record of an HTTP call names the user, or the calling app', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mde-remote-audit-'));
    try {
      const path = join(dir, 'audit.jsonl');
      const r = await remote({ audit: new JsonlAuditTrail(path), appCallerRole: 'MDE.Unrestrict.App' });
      const ada = await r.connect(await r.entra.userToken(), { elicit: 'accept' });
      await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: 'INC-82: cleaned' });
      const app = await r.connect(await r.entra.appToken({ roles: ['MDE.Unrestrict.App'] }));
      await app.tool('remove_app_restriction', { machineId: PENDING_DEVICE, comment: 'INC-83: automation' });
      const records = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const mine = records.filter((x) => x.machineId === RESTRICTED_DEVICE);
      expect(mine.map((x) => x.event)).toEqual(['intent', 'outcome']);
      for (const rec of mine) {
        expect(rec.user).toEqual({ oid: ANALYST.oid, tid: r.entra.tenant, preferred_username: ANALYST.preferred_username, name: ANALYST.name });
        expect(rec.app).toBeUndefined();
      }
      const apps = records.filter((x) => x.machineId === PENDING_DEVICE);
      expect(apps.length).toBeGreaterThan(0);
      for (const rec of apps) expect(rec.app).toEqual({ appId: CALLING_APP.azp, oid: CALLING_APP.oid, tid: r.entra.tenant });
      // No token of any kind in the trail.
      const text = readFileSync(path, 'utf8');
      expect(text).not.toMatch(/eyJ|obo-|app-[0-9a-f]{8}/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('follows a key rotation: the new key is fetched once, the retired key stops working', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const r = await remote({ skipConfirmation: true });
    const ada = await r.connect(await r.entra.userToken());
    await ada.tool('find_machine', { name: 'finance-ws-017' });
    const fetches = r.entra.keySetRequests().length;
    const signedByOldKey = await r.entra.userToken();
    vi.setSystemTime(Date.now() + 61_000);
    await r.entra.rotate(); // the old key is withdrawn
    ada.useToken(await r.entra.userToken());
    const after = await ada.tool('find_machine', { name: 'finance-ws-017' });
    expect(after.isError, textOf(after)).toBeFalsy();
    expect(r.entra.keySetRequests().length).toBe(fetches + 1);
    // A token signed by the retired key is refused (the cached set was replaced).
    const old = await r.raw('/mcp', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${signedByOldKey}` },
      body: '{}',
    });
    expect(old.status).toBe(401);
  });
});
