/**
 * Metrics as an operator scrapes them: a scripted sequence of real tool calls (accepted, declined, an
 * upstream 429, a 403, a token issued, rejected and redeemed) through real MCP clients, then GET /metrics
 * on the real listener, and exact values asserted. Defender request counts are checked against what the
 * fake tenant recorded on the wire. Also: no label carries a machine id, a comment, a user or a token;
 * the listener binds to loopback unless told otherwise; remote mode counts sessions, sign-in refusals and
 * On-Behalf-Of failures; JSON logs name the call.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createPrometheusMetrics, serveMetrics, type MetricsListener } from '../../src/metrics/prometheus.js';
import { ANALYST, SECOND_ANALYST } from '../fakes/entra-id.js';
import { MAC_DEVICE, RESTRICTED_DEVICE, textOf, useHarness } from '../helpers/harness.js';
import { useRemote } from '../helpers/remote.js';
import { family, scrape, valueOf, type Sample } from '../helpers/scrape.js';

const harness = useHarness();
const remote = useRemote();
const listeners: MetricsListener[] = [];
afterEach(async () => {
  for (const l of listeners.splice(0)) await l.close();
});

async function metricsOn() {
  const metrics = createPrometheusMetrics();
  const listener = await serveMetrics(metrics, { host: '127.0.0.1', port: 0 });
  listeners.push(listener);
  return { metrics, listener };
}

const UNRESTRICT = /\/unrestrictCodeExecution$/;
const COMMENT = 'INC-4242: zebra-comment-marker';

describe('metrics after a scripted sequence of calls', () => {
  it('counts calls by outcome, confirmations by path, Defender requests by operation and status, exactly', async () => {
    const { metrics, listener } = await metricsOn();
    // One process, two clients: one answers prompts (in the order below), one has no elicitation.
    const answers: ('accept' | 'decline')[] = ['accept', 'decline', 'accept', 'accept'];
    const asking = await harness({
      metrics,
      elicit: () => (answers.shift() === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' }),
    });
    const tokens = await harness({ metrics });

    // 1. accepted and submitted
    const accepted = await asking.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(accepted.structuredContent, textOf(accepted)).toMatchObject({ outcome: 'submitted' });
    // 2. declined: nothing sent
    expect(textOf(await asking.call({ machineId: MAC_DEVICE, comment: COMMENT }))).toMatch(/declined/);
    // 3. accepted, but Defender answers 429 four times (three retries): rate_limited
    asking.sim.injectFault({ method: 'POST', path: UNRESTRICT }, { kind: 'status', status: 429, headers: { 'Retry-After': '2' } }, 4);
    expect(textOf(await asking.call({ machineId: MAC_DEVICE, comment: COMMENT }))).toMatch(/Error \(rate_limited\)/);
    // 4. accepted, but Defender answers 403: permission
    asking.sim.injectFault({ method: 'POST', path: UNRESTRICT }, { kind: 'status', status: 403, body: JSON.stringify({ error: { code: 'Forbidden', message: 'no' } }) }, 1);
    expect(textOf(await asking.call({ machineId: MAC_DEVICE, comment: COMMENT }))).toMatch(/Error \(permission\)/);
    // 5. no elicitation: a token is issued; 6. a forged token is rejected; 7. the real one is redeemed
    const issued = await tokens.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const token = (issued.structuredContent as { confirmation: { token: string } }).confirmation.token;
    expect(textOf(await tokens.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: `${token.slice(0, -4)}AAAA` }))).toMatch(/Error \(not_confirmed\)/);
    const redeemed = await tokens.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: token });
    expect(redeemed.structuredContent, textOf(redeemed)).toMatchObject({ outcome: 'submitted', confirmedBy: 'token' });

    const { samples, contentType } = await scrape(listener.url);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(family(samples, 'mde_tool_calls_total')).toEqual({
      'outcome=submitted,tool=remove_app_restriction': 2,
      'outcome=not_confirmed,tool=remove_app_restriction': 2,
      'outcome=rate_limited,tool=remove_app_restriction': 1,
      'outcome=permission,tool=remove_app_restriction': 1,
      'outcome=confirmation_required,tool=remove_app_restriction': 1,
    });
    expect(valueOf(samples, 'mde_tool_call_duration_seconds_count', { tool: 'remove_app_restriction' })).toBe(7);
    expect(family(samples, 'mde_confirmations_total')).toEqual({
      'path=elicitation_accepted': 3,
      'path=elicitation_declined': 1,
      'path=token_issued': 1,
      'path=token_rejected': 1,
      'path=token_redeemed': 1,
    });

    // Defender requests: exactly what went over the wire, by operation and status.
    expect(valueOf(samples, 'mde_defender_requests_total', { operation: 'unrestrict', status: '201' })).toBe(2);
    expect(valueOf(samples, 'mde_defender_requests_total', { operation: 'unrestrict', status: '429' })).toBe(4);
    expect(valueOf(samples, 'mde_defender_requests_total', { operation: 'unrestrict', status: '403' })).toBe(1);
    const posts = asking.sim.apiRequests('POST', 'unrestrictCodeExecution').length + tokens.sim.apiRequests('POST', 'unrestrictCodeExecution').length;
    expect(posts).toBe(7);
    const reads = [asking, tokens].flatMap((h) => h.sim.apiRequests('GET').filter((r) => /^\/api\/machines\/[0-9a-f]{40}$/.test(r.path)));
    expect(valueOf(samples, 'mde_defender_requests_total', { operation: 'read_machine', status: '200' })).toBe(reads.length);
    const allDefender = asking.sim.apiRequests().length + tokens.sim.apiRequests().length;
    const counted = samples.filter((s) => s.name === 'mde_defender_requests_total').reduce((n, s) => n + s.value, 0);
    expect(counted).toBe(allDefender);
    expect(valueOf(samples, 'mde_defender_request_duration_seconds_count', { operation: 'unrestrict' })).toBe(7);
    expect(family(samples, 'mde_defender_rate_limited_total')).toEqual({ 'operation=unrestrict': 4 });

    // Every request took a budget slot; after each 429 the budget held the next one for Retry-After
    // (the fake clock's seconds: the client slept them first, so the budget itself waited 0).
    expect(valueOf(samples, 'mde_budget_wait_seconds_count')).toBe(allDefender);
    expect(valueOf(samples, 'mde_budget_refusals_total')).toBe(0);
    expect(valueOf(samples, 'mde_sign_in_failures_total')).toBe(0);

    // Process metrics come with it.
    expect(valueOf(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(samples.some((s) => s.name === 'nodejs_heap_size_used_bytes')).toBe(true);
  });

  it('counts time waiting on the budget, refusals, and the budget used in the rolling minute and hour', async () => {
    const { metrics, listener } = await metricsOn();
    const h = await harness({ metrics, rateLimit: { perMinute: 2, perHour: 10, maxWaitMs: 60_000 } });
    metrics.watchBudget(() => h.limiter.usage(), { perMinute: 2, perHour: 10 });
    for (let i = 0; i < 3; i++) expect((await h.tool('get_machine_action', { actionId: '7f6c1a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b' })).isError).toBe(true); // 404s, each one request
    let { samples } = await scrape(listener.url);
    // Two slots at once, the third a minute after the first: it waited 60 s on the fake clock.
    expect(valueOf(samples, 'mde_budget_wait_seconds_count')).toBe(3);
    expect(valueOf(samples, 'mde_budget_wait_seconds_sum')).toBe(60);
    expect(valueOf(samples, 'mde_budget_wait_seconds_bucket', { le: '0' })).toBe(2);
    expect(family(samples, 'mde_budget_used')).toEqual({ 'window=minute': 1, 'window=hour': 3 });
    expect(family(samples, 'mde_budget_limit')).toEqual({ 'window=minute': 2, 'window=hour': 10 });
    expect(family(samples, 'mde_tool_calls_total')).toEqual({ 'outcome=not_found,tool=get_machine_action': 3 });

    // Seven more fill the hour's ten slots (two a minute); the eleventh would wait most of an hour: refused.
    for (let i = 0; i < 7; i++) await h.tool('get_machine_action', { actionId: '7f6c1a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b' });
    const refused = await h.tool('get_machine_action', { actionId: '7f6c1a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b' });
    expect(textOf(refused)).toMatch(/budget is spent/);
    ({ samples } = await scrape(listener.url));
    expect(valueOf(samples, 'mde_budget_refusals_total')).toBe(1);
    expect(valueOf(samples, 'mde_tool_calls_total', { tool: 'get_machine_action', outcome: 'rate_limited' })).toBe(1);
    expect(valueOf(samples, 'mde_budget_used', { window: 'hour' })).toBe(10);
  });
});

describe('sign-in failures', () => {
  it('count a refused app sign-in by its AADSTS code and an unreachable endpoint as none; a Defender 401 is not a sign-in failure', async () => {
    const { metrics, listener } = await metricsOn();
    const h = await harness({ metrics, msal: true });
    const TOKEN = { method: 'POST', path: /\/oauth2\/v2\.0\/token$/ };
    const expired = JSON.stringify({ error: 'invalid_client', error_description: 'AADSTS7000222: The provided client secret keys are expired.', error_codes: [7000222] });
    h.sim.injectFault(TOKEN, { kind: 'status', status: 401, body: expired }, 1);
    expect(textOf(await h.tool('find_machine', { name: 'finance-ws-017' }))).toMatch(/AADSTS7000222/);
    h.sim.injectFault(TOKEN, { kind: 'reset' }, 5);
    expect(textOf(await h.tool('find_machine', { name: 'finance-ws-017' }))).toMatch(/Error \(authentication\)/);
    h.sim.clearFaults();
    // Signed in now; Defender refuses the token twice (one re-sign-in in between): authentication, HTTP 401.
    h.sim.injectFault({ path: /^\/api\/machines/ }, { kind: 'status', status: 401, body: '' }, 2);
    expect(textOf(await h.tool('find_machine', { name: 'finance-ws-017' }))).toMatch(/HTTP 401/);
    const { samples } = await scrape(listener.url);
    expect(family(samples, 'mde_sign_in_failures_total')).toEqual({ 'code=AADSTS7000222': 1, 'code=none': 1 });
    expect(valueOf(samples, 'mde_tool_calls_total', { tool: 'find_machine', outcome: 'authentication' })).toBe(3);
    expect(valueOf(samples, 'mde_defender_requests_total', { operation: 'find_machines', status: '401' })).toBe(2);
  });
});

describe('metrics labels', () => {
  /** Every label value of our own metrics is a code word, a status or an AADSTS code; nothing else. */
  function expectBoundedLabels(samples: Sample[]) {
    for (const s of samples.filter((x) => x.name.startsWith('mde_'))) {
      for (const [k, v] of Object.entries(s.labels)) expect(v, `${s.name} ${k}`).toMatch(/^([a-z][a-z0-9_]{0,39}|\d{3}|AADSTS\d+|\+Inf|\d+(\.\d+)?)$/);
    }
  }

  it('never carry a machine id, a comment, a user or a token (remote mode, signed-in analyst)', async () => {
    const { metrics, listener } = await metricsOn();
    const r = await remote({ metrics });
    const adaToken = await r.entra.userToken({ user: ANALYST });
    const ada = await r.connect(adaToken, { elicit: 'accept' });
    const done = await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(done.structuredContent, textOf(done)).toMatchObject({ outcome: 'submitted' });
    await ada.tool('find_machine', { name: 'finance-ws-017' });
    await ada.tool('get_machine_action', { actionId: (done.structuredContent as { machineAction: { id: string } }).machineAction.id });
    await ada.tool('remove_app_restriction', { machineId: MAC_DEVICE, comment: COMMENT });
    const { text, samples } = await scrape(listener.url);

    const forbidden = [
      RESTRICTED_DEVICE,
      MAC_DEVICE,
      (done.structuredContent as { machineAction: { id: string } }).machineAction.id,
      'INC-4242',
      'zebra',
      'finance-ws-017',
      ANALYST.oid,
      ANALYST.preferred_username,
      ANALYST.name,
      adaToken.slice(0, 20),
      r.entra.oboIssued[0]!.accessToken.slice(0, 20),
    ];
    for (const f of forbidden) expect(text.toLowerCase(), f).not.toContain(f.toLowerCase());
    expectBoundedLabels(samples);
    expect(valueOf(samples, 'mde_tool_calls_total', { tool: 'find_machine', outcome: 'ok' })).toBe(1);
    expect(valueOf(samples, 'mde_http_sessions_open')).toBe(1);
  });

  it('fold anything that is not a code word into "other"', async () => {
    const { metrics, listener } = await metricsOn();
    metrics.toolCall('remove_app_restriction', 'Machine 1e5bc9d7e413ddd7902c2932e418702b84d0cc07', 0.1);
    metrics.defenderRequest('unrestrict', 'ada@contoso.com', 0.1);
    metrics.signInFailure('AADSTS50013 for ada@contoso.com');
    metrics.confirmation('declined by Ada');
    const { text, samples } = await scrape(listener.url);
    expect(text).not.toMatch(/1e5bc9d7|ada@|by Ada/);
    expect(valueOf(samples, 'mde_tool_calls_total', { tool: 'remove_app_restriction', outcome: 'other' })).toBe(1);
    expect(valueOf(samples, 'mde_defender_requests_total', { operation: 'unrestrict', status: 'other' })).toBe(1);
    expect(valueOf(samples, 'mde_sign_in_failures_total', { code: 'other' })).toBe(1);
    expect(valueOf(samples, 'mde_confirmations_total', { path: 'other' })).toBe(1);
  });
});

describe('metrics in remote mode', () => {
  it('counts open sessions, requests refused at sign-in, and On-Behalf-Of failures by AADSTS code', async () => {
    const { metrics, listener } = await metricsOn();
    const r = await remote({ metrics });
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST }), { elicit: 'accept' });
    await r.connect(await r.entra.userToken({ user: ANALYST }));
    expect(valueOf((await scrape(listener.url)).samples, 'mde_http_sessions_open')).toBe(2);

    // No token, then a forged one: refused before MCP.
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
    expect((await r.raw('/mcp', { method: 'POST', headers, body })).status).toBe(401);
    expect((await r.raw('/mcp', { method: 'POST', headers: { ...headers, Authorization: 'Bearer not.a.token' }, body })).status).toBe(401);

    r.entra.failObo = { code: 65001, error: 'invalid_grant', description: 'The user or administrator has not consented to use the application.' };
    const failed = await ada.tool('find_machine', { name: 'finance-ws-017' });
    expect(textOf(failed)).toMatch(/AADSTS65001/);

    const { samples } = await scrape(listener.url);
    expect(family(samples, 'mde_http_auth_refusals_total')).toEqual({ 'reason=no_token,status=401': 1, 'reason=invalid_token,status=401': 1 });
    expect(family(samples, 'mde_sign_in_failures_total')).toEqual({ 'code=AADSTS65001': 1 });
    expect(valueOf(samples, 'mde_tool_calls_total', { tool: 'find_machine', outcome: 'authentication' })).toBe(1);
  });

  it('counts approval_pending calls and the approvals waiting for a second person (two-person rule)', async () => {
    const { metrics, listener } = await metricsOn();
    const r = await remote({ metrics, approval: {} });
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST }), { elicit: 'accept' });
    const asked = await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(asked.structuredContent, textOf(asked)).toMatchObject({ outcome: 'approval_pending' });
    const id = (asked.structuredContent as { approval: { id: string } }).approval.id;
    let { text, samples } = await scrape(listener.url);
    expect(valueOf(samples, 'mde_tool_calls_total', { tool: 'remove_app_restriction', outcome: 'approval_pending' })).toBe(1);
    expect(valueOf(samples, 'mde_approvals_pending')).toBe(1);
    expect(text).not.toContain(id);

    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST, claims: { roles: ['MDE.Approver'] } }), { elicit: 'accept' });
    const approved = await bob.tool('approve_action', { approvalId: id });
    expect(approved.structuredContent, textOf(approved)).toMatchObject({ outcome: 'submitted' });
    ({ text, samples } = await scrape(listener.url));
    expect(valueOf(samples, 'mde_approvals_pending')).toBe(0);
    expect(valueOf(samples, 'mde_tool_calls_total', { tool: 'approve_action', outcome: 'submitted' })).toBe(1);
    expect(valueOf(samples, 'mde_defender_requests_total', { operation: 'unrestrict', status: '201' })).toBe(1);
    for (const f of [id, SECOND_ANALYST.preferred_username, ANALYST.preferred_username]) expect(text).not.toContain(f);
  });

  it('writes JSON log lines naming the call: request id, tool and user, redacted as the text lines are', async () => {
    const r = await remote({ logFormat: 'json' });
    const adaToken = await r.entra.userToken({ user: ANALYST });
    const ada = await r.connect(adaToken, { elicit: 'accept' });
    await ada.tool('remove_app_restriction', { machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const lines = r.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(r.logs.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    for (const line of lines) {
      expect(line).toMatchObject({ time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), level: expect.stringMatching(/^(debug|info|warning|error)$/), message: expect.any(String) });
    }
    const confirmed = lines.find((l) => String(l.message).includes('confirmed (elicitation_accepted)'));
    expect(confirmed).toMatchObject({ tool: 'remove_app_restriction', user: ANALYST.preferred_username, requestId: expect.anything(), session: expect.stringMatching(/^[0-9a-f-]{8}$/) });
    // Lines outside any call (a session opening) carry no call fields.
    const opened = lines.find((l) => String(l.message).startsWith('Session '));
    expect(opened).toBeDefined();
    expect(opened).not.toHaveProperty('tool');
    expect(r.logs.join('')).not.toContain(adaToken);
  });
});

describe('the metrics listener', () => {
  it('binds to loopback by default and serves only GET /metrics', async () => {
    const { parseConfig } = await import('../../src/config.js');
    const parsed = parseConfig(['--simulator', '--metrics-port', '0'], {});
    if (parsed.kind !== 'run') throw new Error('expected run');
    const metrics = createPrometheusMetrics({ processMetrics: false });
    const listener = await serveMetrics(metrics, { host: parsed.config.metrics.host, port: parsed.config.metrics.port! });
    listeners.push(listener);
    // Bound to the loopback address itself, not a wildcard: no other interface of the host can reach it.
    expect(listener.address.address).toBe('127.0.0.1');
    expect(listener.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const base = listener.url.replace(/\/metrics$/, '');
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(listener.url)).status).toBe(200);
  });

  it('refuses a port in use at start, naming the settings', async () => {
    const { listener } = await metricsOn();
    await expect(serveMetrics(createPrometheusMetrics({ processMetrics: false }), { host: '127.0.0.1', port: listener.address.port })).rejects.toThrow(/EADDRINUSE.*MDE_METRICS_PORT/);
  });
});
