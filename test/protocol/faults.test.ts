/**
 * Fault injection against the local fakes. For every fault: the call ends within its timeout with a
 * clear error or a correct outcome, the number of POSTs is right, and the server keeps serving.
 * The token-endpoint faults go through MSAL against the HTTPS fake (test CA via NODE_EXTRA_CA_CERTS).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Fault } from '../helpers/fake-tenant.js';
import { RESTRICTED_DEVICE, PENDING_DEVICE, startHarness, textOf, type Harness } from '../helpers/harness.js';

const TIMEOUT_MS = 400;
const COMMENT = 'INC-9: fault suite';
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

interface Case {
  name: string;
  method: 'GET' | 'POST';
  path: string;
  fault: Fault;
  times?: number;
  /** What the call must end with: an outcome, or an error matching this. */
  expect: { outcome: string } | { error: RegExp };
  posts: number;
}

const json = (o: unknown) => JSON.stringify(o);
const POST_PATH = '/unrestrictCodeExecution';
const GET_PATH = `/api/machines/${RESTRICTED_DEVICE}`;

const apiCases: Case[] = [
  ...[500, 502, 503, 504].map((status) => ({
    name: `POST answers ${status}`,
    method: 'POST' as const,
    path: POST_PATH,
    fault: { kind: 'status' as const, status, body: status === 500 ? json({ error: { code: 'InternalServerError', message: '', target: 'x' } }) : '' },
    expect: { error: new RegExp(`upstream.*HTTP ${status}`, 's') },
    posts: 1,
  })),
  { name: 'GET answers 500', method: 'GET', path: GET_PATH, fault: { kind: 'status', status: 500 }, expect: { error: /HTTP 500/ }, posts: 0 },
  { name: 'POST answers 201 with malformed JSON', method: 'POST', path: POST_PATH, fault: { kind: 'status', status: 201, body: '{"id": ' }, expect: { error: /outcome_unknown.*accepted/s }, posts: 1 },
  { name: 'POST answers 201 with an empty body', method: 'POST', path: POST_PATH, fault: { kind: 'status', status: 201, body: '' }, expect: { error: /outcome_unknown.*empty body/s }, posts: 1 },
  { name: 'POST answers 201 with JSON that is not a MachineAction', method: 'POST', path: POST_PATH, fault: { kind: 'status', status: 201, body: '[1,2]' }, expect: { error: /outcome_unknown/ }, posts: 1 },
  { name: 'GET answers 200 with malformed JSON', method: 'GET', path: GET_PATH, fault: { kind: 'status', status: 200, body: '{{' }, expect: { error: /not JSON/ }, posts: 0 },
  { name: 'GET answers 200 with an empty body', method: 'GET', path: GET_PATH, fault: { kind: 'status', status: 200, body: '' }, expect: { error: /empty body/ }, posts: 0 },
  { name: 'GET connection reset', method: 'GET', path: GET_PATH, fault: { kind: 'reset' }, expect: { error: /Could not reach the Defender API/ }, posts: 0 },
  { name: 'POST connection reset before Defender acted', method: 'POST', path: POST_PATH, fault: { kind: 'reset' }, expect: { error: /outcome_unknown/ }, posts: 1 },
  { name: 'POST connection reset after Defender acted', method: 'POST', path: POST_PATH, fault: { kind: 'process_then_reset' }, expect: { outcome: 'already_pending' }, posts: 1 },
  { name: 'POST hangs after Defender acted', method: 'POST', path: POST_PATH, fault: { kind: 'process_then_hang' }, expect: { outcome: 'already_pending' }, posts: 1 },
  { name: 'POST hangs', method: 'POST', path: POST_PATH, fault: { kind: 'hang' }, expect: { error: /outcome_unknown.*did not answer/s }, posts: 1 },
  { name: 'GET hangs', method: 'GET', path: GET_PATH, fault: { kind: 'hang' }, expect: { error: /timeout.*did not answer/s }, posts: 0 },
  { name: 'POST is slow but in time', method: 'POST', path: POST_PATH, fault: { kind: 'delay', ms: TIMEOUT_MS / 4 }, expect: { outcome: 'submitted' }, posts: 1 },
  { name: 'GET is slow but in time', method: 'GET', path: GET_PATH, fault: { kind: 'delay', ms: TIMEOUT_MS / 4 }, expect: { outcome: 'submitted' }, posts: 1 },
  {
    name: '429 storm with Retry-After',
    method: 'POST',
    path: POST_PATH,
    fault: { kind: 'status', status: 429, headers: { 'Retry-After': '2' }, body: json({ error: { code: 'TooManyRequests', message: 'Rate limit is exceeded.' } }) },
    times: 10,
    expect: { error: /rate_limited.*Wait 2 seconds/s },
    posts: 4,
  },
  { name: '429 storm without Retry-After', method: 'POST', path: POST_PATH, fault: { kind: 'status', status: 429 }, times: 10, expect: { error: /rate_limited.*Wait 8 seconds/s }, posts: 4 },
  { name: 'two 429s, then accepted', method: 'POST', path: POST_PATH, fault: { kind: 'status', status: 429, headers: { 'Retry-After': '1' } }, times: 2, expect: { outcome: 'submitted' }, posts: 3 },
];

describe('Defender API faults', () => {
  it.each(apiCases)('$name', async (c) => {
    const x = await startHarness({ elicit: 'accept', timeoutMs: TIMEOUT_MS });
    h = x;
    x.sim.injectFault({ method: c.method, path: c.path }, c.fault, c.times ?? 1);
    const started = performance.now();
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    const elapsed = performance.now() - started;

    // Within its timeout: at most one timed-out request and one look-up (waits are on a fake clock); the
    // margin is for a loaded CI machine, far below what a call that never ended would take.
    expect(elapsed).toBeLessThan(TIMEOUT_MS * 3 + 1000);
    if ('outcome' in c.expect) {
      expect(r.isError, textOf(r)).toBeFalsy();
      expect((r.structuredContent as { outcome: string }).outcome).toBe(c.expect.outcome);
    } else {
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(c.expect.error);
      expect(textOf(r)).toMatch(/Next step: /);
    }
    expect(x.sim.apiRequests('POST')).toHaveLength(c.posts);

    // The server keeps serving.
    x.sim.clearFaults();
    const next = await x.call({ machineId: PENDING_DEVICE, comment: COMMENT });
    expect(next.structuredContent).toMatchObject({ outcome: 'already_pending' });
  });
});

describe('token endpoint faults (MSAL over HTTPS)', () => {
  const TOKEN_PATH = /\/oauth2\/v2\.0\/token$/;
  const tokenCases: { name: string; fault: Fault; times?: number; expect: RegExp | 'ok' }[] = [
    { name: 'token endpoint answers 500', fault: { kind: 'status', status: 500, body: '' }, times: 5, expect: /authentication/ },
    { name: 'token endpoint answers malformed JSON', fault: { kind: 'status', status: 200, body: '{"access_token": ' }, times: 5, expect: /authentication/ },
    { name: 'token endpoint answers 400 invalid_client', fault: { kind: 'status', status: 401, body: json({ error: 'invalid_client', error_description: 'AADSTS7000222: The provided client secret keys are expired.', error_codes: [7000222] }) }, expect: /AADSTS7000222.*expired/s },
    { name: 'token endpoint resets the connection', fault: { kind: 'reset' }, times: 5, expect: /authentication/ },
    { name: 'token endpoint hangs', fault: { kind: 'hang' }, expect: /did not answer within/ },
    { name: 'token endpoint is slow but in time', fault: { kind: 'delay', ms: TIMEOUT_MS / 4 }, expect: 'ok' },
  ];

  it.each(tokenCases)('$name', async (c) => {
    const x = await startHarness({ elicit: 'accept', timeoutMs: TIMEOUT_MS, msal: true });
    h = x;
    x.sim.injectFault({ method: 'POST', path: TOKEN_PATH }, c.fault, c.times ?? 1);
    const started = performance.now();
    const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: COMMENT });
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS * 3 + 1500);
    if (c.expect === 'ok') {
      expect(r.structuredContent).toMatchObject({ outcome: 'submitted' });
      expect(x.sim.apiRequests('POST')).toHaveLength(1);
    } else {
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(c.expect);
      expect(textOf(r)).not.toContain('Sup3r~S3cret');
      expect(x.sim.apiRequests()).toHaveLength(0);
    }
    x.sim.clearFaults();
    const next = await x.call({ machineId: PENDING_DEVICE, comment: COMMENT });
    expect(next.structuredContent, textOf(next)).toMatchObject({ outcome: 'already_pending' });
  });
});
