import { describe, expect, it } from 'vitest';
import { ConfirmationTokens } from '../../src/confirmation/token.js';
import {
  MAC_DEVICE,
  PENDING_DEVICE,
  RESTRICTED_DEVICE,
  UNKNOWN_DEVICE,
  useHarness,
  textOf,
  type Harness,
  type HarnessOptions,
} from '../helpers/harness.js';

const COMMENT = 'INC-1234: device cleaned and re-imaged';
const harness = useHarness();

const posts = (x: Harness) => x.sim.apiRequests('POST');

describe('tools/list', () => {
  it('lists remove_app_restriction with all four hints, a title, and input and output schemas', async () => {
    const x = await harness();
    const { tools } = await x.client.listTools();
    const tool = tools.find((t) => t.name === 'remove_app_restriction')!;
    expect(tool.annotations).toEqual({
      title: 'Remove app restriction (Defender for Endpoint)',
      readOnlyHint: false,
      destructiveHint: true,
      idempotentHint: false,
      openWorldHint: true,
    });
    expect(tool.inputSchema.required).toEqual(['machineId', 'comment']);
    expect(Object.keys(tool.inputSchema.properties ?? {})).toEqual(['machineId', 'comment', 'confirmationToken']);
    const outcome = (tool.outputSchema?.properties as Record<string, { enum?: string[] }>).outcome;
    expect(outcome?.enum).toEqual(['submitted', 'already_pending', 'confirmation_required', 'approval_pending']);
  });
});

describe('with elicitation', () => {
  it('reads the device, asks the human, and on accept sends exactly one POST with {"Comment": ...}', async () => {
    const x = await harness({ elicit: 'accept' });
    const result = await x.call({ machineId: RESTRICTED_DEVICE, comment: `  ${COMMENT}  ` });
    expect(result.isError).toBeFalsy();

    // One read of the action history (is an unrestrict already pending? what does the history say?),
    // the device for the preview, then the one POST.
    expect(x.sim.apiRequests().map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /api/machineactions',
      `GET /api/machines/${RESTRICTED_DEVICE}`,
      `POST /api/machines/${RESTRICTED_DEVICE}/unrestrictCodeExecution`,
    ]);
    const post = posts(x)[0]!;
    expect(post.body).toBe(JSON.stringify({ Comment: COMMENT }));
    expect(post.headers.authorization).toBe(`Bearer ${x.sim.token}`);
    expect(post.headers['content-type']).toBe('application/json');

    expect(x.prompts).toHaveLength(1);
    const prompt = x.prompts[0]!;
    expect(prompt.message).toContain('finance-ws-017.contoso.com');
    expect(prompt.message).toContain(RESTRICTED_DEVICE);
    expect(prompt.message).toContain(COMMENT);
    expect(prompt.message).toContain('Finance Workstations');
    expect(prompt.message).toMatch(/any application run/);
    expect((prompt as { requestedSchema?: unknown }).requestedSchema).toMatchObject({
      type: 'object',
      properties: { confirm: { type: 'boolean' } },
      required: ['confirm'],
    });

    const out = result.structuredContent as { outcome: string; machineAction: Record<string, unknown>; confirmedBy: string };
    expect(out.outcome).toBe('submitted');
    expect(out.confirmedBy).toBe('elicitation');
    const created = x.sim.machineActions().find((a) => a.type === 'UnrestrictCodeExecution' && a.machineId === RESTRICTED_DEVICE)!;
    expect(out.machineAction).toMatchObject({ id: created.id, type: 'UnrestrictCodeExecution', status: 'Pending', requestorComment: COMMENT });
    // Unknown fields are kept as the API sent them.
    expect(out.machineAction).toHaveProperty('requestSource', 'PublicApi');
    expect(out.machineAction).toHaveProperty('@odata.context');
    expect(textOf(result)).toContain(created.id);
    expect(textOf(result)).toContain('finance-ws-017.contoso.com');
  });

  it('refuses a comment with line breaks (U+2028 too), naming the character and its position; quotes are shown escaped', async () => {
    const x = await harness({ elicit: 'decline' });
    for (const [sneaky, named] of [
      ['INC-1"\n\nLift the app restriction on harmless-test-vm?', 'U+000A LINE FEED at position 7'],
      ['INC-1"\u2028\u2028Lift the app restriction on harmless-test-vm?', 'U+2028 LINE SEPARATOR at position 7'],
    ] as const) {
      const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: sneaky });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toContain(named);
    }
    expect(x.prompts).toHaveLength(0);
    expect(x.sim.requests).toHaveLength(0);
    const quoted = 'INC-1" Lift the app restriction on harmless-test-vm?';
    await x.call({ machineId: RESTRICTED_DEVICE, comment: quoted });
    const message = x.prompts[0]!.message;
    expect(message).toContain(JSON.stringify(quoted));
    expect(message.split('\n').filter((l) => l.startsWith('Lift the app restriction on'))).toEqual(['Lift the app restriction on finance-ws-017.contoso.com?']);
  });

  it('normalises an upper-case id with surrounding whitespace before building the path', async () => {
    const x = await harness({ elicit: 'accept' });
    const result = await x.call({ machineId: `  ${RESTRICTED_DEVICE.toUpperCase()}\n`, comment: COMMENT });
    expect(result.isError).toBeFalsy();
    expect(posts(x).map((r) => r.path)).toEqual([`/api/machines/${RESTRICTED_DEVICE}/unrestrictCodeExecution`]);
  });

  it.each([
    ['decline', /declined/],
    ['cancel', /dismissed/],
    ['accept_false', /declined/],
    ['fail', /could not be completed/],
  ] as const)('on %s sends nothing and says the action was not performed', async (behaviour, why) => {
    const x = await harness({ elicit: behaviour });
    const result = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/Not performed/);
    expect(textOf(result)).toMatch(why);
    expect(posts(x)).toHaveLength(0);
    expect(x.sim.isRestricted(RESTRICTED_DEVICE)).toBe(true);
  });

  it('ignores a confirmationToken and still asks the human', async () => {
    const x = await harness({ elicit: 'decline' });
    const result = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: 'mdeconfirm.v1.x.y' });
    expect(result.isError).toBe(true);
    expect(x.prompts).toHaveLength(1);
    expect(posts(x)).toHaveLength(0);
  });

  it('falls back to the id in the prompt when reading the device is forbidden (no Machine.Read.All)', async () => {
    const x = await harness({ elicit: 'accept', simulator: { roles: ['Machine.RestrictExecution'] } });
    const result = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(result.isError).toBeFalsy();
    expect(x.prompts[0]!.message).toContain(RESTRICTED_DEVICE);
    expect(x.prompts[0]!.message).toContain('Machine.Read.All');
    expect(posts(x)).toHaveLength(1);
  });

  it('ends with "not found" when the device does not exist, without asking or posting', async () => {
    const x = await harness({ elicit: 'accept' });
    const result = await x.call({ machineId: UNKNOWN_DEVICE, comment: COMMENT });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/not_found/);
    expect(textOf(result)).toMatch(/HTTP 404/);
    expect(textOf(result)).toMatch(/ResourceNotFound/);
    expect(x.prompts).toHaveLength(0);
    expect(posts(x)).toHaveLength(0);
  });
});

describe('without elicitation (mode auto): confirmation tokens', () => {
  it('first call sends nothing and returns a preview and a token; the identical second call submits once', async () => {
    const x = await harness();
    const first = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(first.isError).toBeFalsy();
    const out = first.structuredContent as {
      outcome: string;
      confirmation: { token: string; expiresAt: string; preview: Record<string, unknown>; comment: string };
    };
    expect(out.outcome).toBe('confirmation_required');
    expect(out.confirmation.preview).toMatchObject({
      machineId: RESTRICTED_DEVICE,
      hostName: 'finance-ws-017.contoso.com',
      osPlatform: 'Windows11',
      deviceGroup: 'Finance Workstations',
      healthStatus: 'Active',
      tags: ['Finance', 'VIP'],
    });
    expect(out.confirmation.comment).toBe(COMMENT);
    const expiresIn = Date.parse(out.confirmation.expiresAt) - Date.now();
    expect(expiresIn).toBeGreaterThan(4 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(5 * 60_000);
    expect(textOf(first)).toContain(out.confirmation.token);
    expect(textOf(first)).toMatch(/nothing has been sent/i);
    expect(posts(x)).toHaveLength(0);

    const second = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: out.confirmation.token });
    expect(second.isError).toBeFalsy();
    expect(second.structuredContent).toMatchObject({ outcome: 'submitted', confirmedBy: 'token' });
    expect(posts(x)).toHaveLength(1);
    expect(posts(x)[0]!.body).toBe(JSON.stringify({ Comment: COMMENT }));

    // The token works once.
    const replay = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: out.confirmation.token });
    expect(replay.isError).toBe(true);
    expect(textOf(replay)).toMatch(/already been used/);
    expect(posts(x)).toHaveLength(1);
  });

  async function issueToken(x: Harness, machineId = RESTRICTED_DEVICE, comment = COMMENT): Promise<string> {
    const r = await x.call({ machineId, comment });
    return (r.structuredContent as { confirmation: { token: string } }).confirmation.token;
  }

  it('refuses a token for another comment or another device, touching nothing upstream', async () => {
    const x = await harness();
    const token = await issueToken(x);
    const before = x.sim.requests.length;
    const otherComment = await x.call({ machineId: RESTRICTED_DEVICE, comment: `${COMMENT}!`, confirmationToken: token });
    const otherDevice = await x.call({ machineId: PENDING_DEVICE, comment: COMMENT, confirmationToken: token });
    for (const r of [otherComment, otherDevice]) {
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(/different machine, comment or action/);
    }
    expect(x.sim.requests.length).toBe(before);
    // A mismatch does not spend the token: the exact request still works.
    const exact = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: token });
    expect(exact.structuredContent).toMatchObject({ outcome: 'submitted' });
  });

  it('refuses forged, altered and malformed tokens without any request', async () => {
    const x = await harness();
    const token = await issueToken(x);
    const before = x.sim.requests.length;
    const [prefix, version, body, sig] = token.split('.');
    const flipped = sig!.startsWith('A') ? `B${sig!.slice(1)}` : `A${sig!.slice(1)}`;
    const foreign = new ConfirmationTokens().issue({ action: 'unrestrict', machineId: RESTRICTED_DEVICE, comment: COMMENT }).token;
    const cases: [string, RegExp][] = [
      [`${prefix}.${version}.${body}.${flipped}`, /signature is invalid/],
      [foreign, /signature is invalid/],
      ['not-a-token', /malformed/],
      [`${prefix}.${version}.${body}`, /malformed/],
    ];
    for (const [bad, why] of cases) {
      const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: bad });
      expect(r.isError, bad).toBe(true);
      expect(textOf(r)).toMatch(why);
    }
    expect(x.sim.requests.length).toBe(before);
  });

  it('names a token from an earlier run of the server, and a next step that does not loop', async () => {
    const x = await harness();
    const before = x.sim.requests.length;
    const earlier = new ConfirmationTokens().issue({ action: 'unrestrict', machineId: RESTRICTED_DEVICE, comment: COMMENT }).token;
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: earlier });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/signed by an earlier run of this server/);
    // Asking again helps after a restart, and the text says when it cannot (a server started per call).
    expect(textOf(r)).toMatch(/Call again without confirmationToken/);
    expect(textOf(r)).toMatch(/started anew for every call.*no token can ever be redeemed: stop/);
    expect(x.sim.requests.length).toBe(before);
  });

  it('treats an empty confirmationToken as absent (agents often fill optional fields with "")', async () => {
    const x = await harness();
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: '  ' });
    expect(r.structuredContent).toMatchObject({ outcome: 'confirmation_required' });
    expect(posts(x)).toHaveLength(0);
  });

  it('expires tokens after five minutes (fake clock)', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const clock = () => now;
    const x = await harness({ now: clock, tokens: new ConfirmationTokens({ now: clock }) });
    const late = await issueToken(x);
    now += 5 * 60_000;
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: late });
    expect(textOf(r)).toMatch(/expired/);
    const inTime = await issueToken(x);
    now += 5 * 60_000 - 1;
    const ok = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT, confirmationToken: inTime });
    expect(ok.isError).toBeFalsy();
    expect(posts(x)).toHaveLength(1);
  });
});

describe('confirmation modes', () => {
  it('mode elicitation refuses a client without elicitation, before any request', async () => {
    const x = await harness({ confirmation: 'elicitation' });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/MDE_CONFIRMATION=elicitation/);
    expect(textOf(r)).toMatch(/did not declare the elicitation capability/);
    expect(x.sim.requests).toHaveLength(0);
  });

  it('mode elicitation still uses elicitation when the client has it', async () => {
    const x = await harness({ confirmation: 'elicitation', elicit: 'accept' });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'submitted', confirmedBy: 'elicitation' });
  });

  it('--dangerously-skip-confirmation posts directly and warns on every call', async () => {
    const x = await harness({ skip: true, elicit: 'decline' });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'submitted', confirmedBy: 'skipped' });
    expect(x.prompts).toHaveLength(0);
    // One look at the history (an action already pending would settle the call), then the POST.
    expect(x.sim.apiRequests().map((q) => `${q.method} ${q.path}`)).toEqual(['GET /api/machineactions', `POST /api/machines/${RESTRICTED_DEVICE}/unrestrictCodeExecution`]);
    await x.call({ machineId: '01a02b2beb2439cac6bc65ffa3798a3623437f3c', comment: COMMENT }); // eng-build-042, nothing pending
    expect(x.logs.filter((l) => l.includes('warning') && l.includes('dangerously-skip-confirmation'))).toHaveLength(2);
  });
});

describe('input validation: rejected before any request', () => {
  const bad: [string, unknown][] = [
    ['empty id', ''],
    ['39 hex', RESTRICTED_DEVICE.slice(1)],
    ['41 hex', `${RESTRICTED_DEVICE}a`],
    ['non-hex', `${RESTRICTED_DEVICE.slice(1)}g`],
    ['path traversal', `../${RESTRICTED_DEVICE.slice(3)}`],
    ['slash', `${RESTRICTED_DEVICE.slice(0, 20)}/${RESTRICTED_DEVICE.slice(21)}`],
    ['query string', `${RESTRICTED_DEVICE.slice(0, 38)}?x`],
    ['inner whitespace', `${RESTRICTED_DEVICE.slice(0, 20)} ${RESTRICTED_DEVICE.slice(21)}`],
    ['host name', 'finance-ws-017.contoso.com'],
    ['url', `https://x/${RESTRICTED_DEVICE}`],
    ['number', 12345],
    ['null', null],
  ];
  it.each(bad)('machineId: %s', async (_name, machineId) => {
    const x = await harness({ elicit: 'accept', skip: false });
    const r = await x.call({ machineId, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/machineId/);
    expect(x.sim.requests).toHaveLength(0);
    expect(x.prompts).toHaveLength(0);
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['blank', '   \n\t '],
    ['too long', 'x'.repeat(1001)],
    ['not a string', 42],
    ['bidirectional override', 'INC-1 \u202Eevil'],
    ['zero-width space', 'INC-1\u200B'],
    ['control character', 'INC-1\u0007'],
  ])('comment: %s', async (_name, comment) => {
    const x = await harness({ elicit: 'accept' });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, ...(comment === undefined ? {} : { comment }) });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/comment/);
    expect(x.sim.requests).toHaveLength(0);
  });
});

describe('API rules', () => {
  it('"Action is already in progress" (400) returns the pending action as already_pending, without re-posting', async () => {
    const x = await harness({ elicit: 'accept' });
    // The history read before the prompt misses the action (it appears between the read and the POST).
    x.sim.injectFault({ method: 'GET', path: '/api/machineactions' }, { kind: 'status', status: 200, body: '{"value":[]}' });
    const r = await x.call({ machineId: PENDING_DEVICE, comment: COMMENT });
    expect(r.isError).toBeFalsy();
    const out = r.structuredContent as { outcome: string; machineAction: { id: string; status: string; requestorComment: string } };
    expect(out.outcome).toBe('already_pending');
    const seeded = x.sim.machineActions().find((a) => a.machineId === PENDING_DEVICE && a.type === 'UnrestrictCodeExecution')!;
    expect(out.machineAction).toMatchObject({ id: seeded.id, status: 'Pending', requestorComment: seeded.requestorComment });
    expect(posts(x)).toHaveLength(1);
    const lookup = x.sim.apiRequests('GET', '/api/machineactions');
    expect(lookup).toHaveLength(2);
    expect(lookup[1]!.query.$filter).toBe(`machineId eq '${PENDING_DEVICE}' and type eq 'UnrestrictCodeExecution'`);
    expect(textOf(r)).toMatch(/already pending/i);
  });

  it('a 201 carrying the older pending action is reported as already_pending', async () => {
    const x = await harness({ skip: true, simulator: { duplicateBehavior: 'return_pending' } });
    const first = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    // The history reads before the next two calls miss the pending actions, so the POST's 201 must tell.
    x.sim.injectFault({ method: 'GET', path: '/api/machineactions' }, { kind: 'status', status: 200, body: '{"value":[]}' }, 2);
    const second = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const other = await x.call({ machineId: PENDING_DEVICE, comment: COMMENT });
    const a1 = first.structuredContent as { outcome: string; machineAction: { id: string } };
    expect(a1.outcome).toBe('submitted');
    expect(second.structuredContent).toMatchObject({ outcome: 'already_pending', machineAction: { id: a1.machineAction.id } });
    expect(other.structuredContent).toMatchObject({ outcome: 'already_pending' });
    expect(posts(x)).toHaveLength(3);
  });

  it('honours Retry-After on 429, then succeeds with one accepted POST', async () => {
    const x = await harness({ skip: true });
    x.sim.injectFault(
      { method: 'POST', path: '/unrestrictCodeExecution' },
      { kind: 'status', status: 429, headers: { 'Retry-After': '7' }, body: JSON.stringify({ error: { code: 'TooManyRequests', message: 'Rate limit is exceeded.' } }) },
    );
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'submitted' });
    expect(x.sleeps).toEqual([7000]);
    expect(posts(x)).toHaveLength(2);
    expect(x.sim.machineActions().filter((a) => a.machineId === RESTRICTED_DEVICE && a.type === 'UnrestrictCodeExecution')).toHaveLength(1);
  });

  it('backs off without Retry-After, and gives up after three retries with the time to wait', async () => {
    const x = await harness({ skip: true });
    x.sim.injectFault({ method: 'POST', path: '/unrestrictCodeExecution' }, { kind: 'status', status: 429 }, 4);
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/rate_limited/);
    expect(textOf(r)).toMatch(/Wait 8 seconds/);
    expect(x.sleeps).toEqual([1000, 2000, 4000]);
    expect(posts(x)).toHaveLength(4);
  });

  it('bounds the total wait on Retry-After across retries (45 s), so the call ends before client timeouts', async () => {
    const x = await harness({ skip: true });
    x.sim.injectFault({ method: 'POST', path: '/unrestrictCodeExecution' }, { kind: 'status', status: 429, headers: { 'Retry-After': '20' } }, 5);
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(x.sleeps).toEqual([20_000, 20_000]);
    expect(textOf(r)).toMatch(/Wait 20 seconds/);
    expect(posts(x)).toHaveLength(3);
  });

  it('fails fast when Retry-After is longer than the bound', async () => {
    const x = await harness({ skip: true });
    x.sim.injectFault({ method: 'POST', path: '/unrestrictCodeExecution' }, { kind: 'status', status: 429, headers: { 'Retry-After': '3600' } });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(textOf(r)).toMatch(/Wait 3600 seconds/);
    expect(x.sleeps).toEqual([]);
    expect(posts(x)).toHaveLength(1);
  });

  it('the simulator answers 429 with Retry-After past its budget, and the client waits as told', async () => {
    // Each call reads twice (the history, the device).
    const x = await harness({ simulator: { rateLimitPerMinute: 6 } });
    // The retry notice is an info notification: only for a client that asked.
    await x.client.setLoggingLevel('info');
    for (let i = 0; i < 3; i++) await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    x.clock.now += 30_000;
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    // The 4th call's first GET was refused with 429 and Retry-After 30; after the (fake) wait it went through.
    expect(x.sleeps).toEqual([30_000]);
    expect(r.structuredContent).toMatchObject({ outcome: 'confirmation_required' });
    expect(x.sim.apiRequests('GET')).toHaveLength(9);
    expect(x.notifications.some((n) => String(n.data).includes('rate limit (429)'))).toBe(true);
  });

  it('403 on the POST names Machine.RestrictExecution and admin consent', async () => {
    const x = await harness({ elicit: 'accept', simulator: { roles: ['Machine.Read.All'] } });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/permission/);
    expect(textOf(r)).toMatch(/Machine\.RestrictExecution/);
    expect(textOf(r)).toMatch(/admin consent/);
    expect(textOf(r)).toMatch(/HTTP 403/);
  });

  it('401 is retried once with a fresh token, then reported as an authentication error', async () => {
    const x = await harness({ skip: true });
    x.sim.injectFault({ method: 'POST', path: '/unrestrictCodeExecution' }, { kind: 'status', status: 401, body: '{"error":{"code":"Unauthorized","message":"Invalid Authorization payload.","target":"abc"}}' }, 2);
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/authentication/);
    expect(textOf(r)).toMatch(/correlation id abc/);
    expect(posts(x)).toHaveLength(2);
  });

  it('reports an unsupported platform with Defender\'s code', async () => {
    const x = await harness({ skip: true });
    const r = await x.call({ machineId: MAC_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/OsPlatformNotSupported/);
  });

  it('a 5xx is a clear error and the server keeps serving', async () => {
    const x = await harness({ skip: true });
    x.sim.injectFault({ method: 'POST', path: '/unrestrictCodeExecution' }, { kind: 'status', status: 503, body: '<html>Service Unavailable</html>' });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/HTTP 503/);
    expect(textOf(r)).not.toMatch(/<html>/);
    const again = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(again.structuredContent).toMatchObject({ outcome: 'submitted' });
  });

  it('a timeout after the POST was sent is never re-sent: the pending action is looked up', async () => {
    const x = await harness({ skip: true, timeoutMs: 300 });
    x.sim.injectFault({ method: 'POST', path: '/unrestrictCodeExecution' }, { kind: 'process_then_hang' });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.structuredContent).toMatchObject({ outcome: 'already_pending', machineAction: { requestorComment: COMMENT } });
    expect(posts(x)).toHaveLength(1);
  });

  it('a timeout after sending with no action found reports an unknown outcome and what to check', async () => {
    const x = await harness({ skip: true, timeoutMs: 300 });
    x.sim.injectFault({ method: 'POST', path: '/unrestrictCodeExecution' }, { kind: 'hang' });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/outcome_unknown/);
    expect(textOf(r)).toMatch(/Do not send it again blindly/);
    expect(posts(x)).toHaveLength(1);
  });

  it('a 201 with a body that is not JSON is treated as accepted-but-unreadable, not as a failure to retry', async () => {
    const x = await harness({ skip: true });
    x.sim.injectFault({ method: 'POST', path: '/unrestrictCodeExecution' }, { kind: 'status', status: 201, body: 'not json' });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/accepted/);
    expect(posts(x)).toHaveLength(1);
  });

  it('a hanging device read times out with a clear error and no POST', async () => {
    const x = await harness({ elicit: 'accept', timeoutMs: 300 });
    x.sim.injectFault({ method: 'GET', path: `/api/machines/${RESTRICTED_DEVICE}` }, { kind: 'hang' });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/did not answer/);
    expect(posts(x)).toHaveLength(0);
  });

  it('a malformed device body is a clear error and no POST', async () => {
    const x = await harness({ elicit: 'accept' });
    x.sim.injectFault({ method: 'GET', path: `/api/machines/${RESTRICTED_DEVICE}` }, { kind: 'status', status: 200, body: '{"unexpected": true}' });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/cannot read/);
    expect(posts(x)).toHaveLength(0);
  });
});

describe('already in progress, when the pending action cannot be read', () => {
  it('still answers already_pending (without the action) when the lookup is forbidden', async () => {
    const x = await harness({ skip: true });
    // Both reads refused: the history before the call (which then goes on as without it) and the lookup after the 400.
    x.sim.injectFault({ method: 'GET', path: '/api/machineactions' }, { kind: 'status', status: 403, body: '{"error":{"code":"Forbidden","message":"Missing application roles."}}' }, 2);
    const r = await x.call({ machineId: PENDING_DEVICE, comment: COMMENT });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toEqual({ outcome: 'already_pending', confirmedBy: 'skipped' });
    expect(textOf(r)).toMatch(/Machine\.Read\.All/);
    expect(posts(x)).toHaveLength(1);
  });

  it('is an error when Defender is busy with another action on the device', async () => {
    const x = await harness({ skip: true });
    x.sim.injectFault({ method: 'POST', path: '/unrestrictCodeExecution' }, { kind: 'status', status: 400, body: '{"error":{"code":"ActiveRequestAlreadyExists","message":"Action is already in progress"}}' });
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/no pending or in-progress unrestrict action was found/);
    expect(posts(x)).toHaveLength(1);
  });
});
