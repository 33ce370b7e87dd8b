/** Property tests (fast-check): hostile arguments and tokens never reach Defender and never crash the server. */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmationTokens, DEFAULT_TOKEN_TTL_MS } from '../../src/confirmation/token.js';
import { findHidden } from '../../src/confirmation/characters.js';
import { RESTRICTED_DEVICE, startHarness, type Harness } from '../helpers/harness.js';
import { redeem } from '../helpers/tokens.js';

// Deterministic runs (the suite must not flake); set FC_SEED to explore other parts of the space.
fc.configureGlobal({ seed: Number(process.env.FC_SEED ?? 20261129) });

const VALID_PATH = /^\/api\/(machines\/[0-9a-f]{40}(\/unrestrictCodeExecution)?|machineactions)$/;
const hexChar = fc.constantFrom(...'0123456789abcdefABCDEF'.split(''));
const nearlyValidId = fc.oneof(
  fc.string({ unit: hexChar, minLength: 38, maxLength: 42 }),
  fc.tuple(fc.string({ unit: hexChar, minLength: 40, maxLength: 40 }), fc.string({ maxLength: 3 }), fc.nat(40)).map(([id, junk, at]) => id.slice(0, at) + junk + id.slice(at)),
  fc.constantFrom('../', '%2e%2e/', '?$filter=x', '#', ' ', '\n', '\u0000', '/').map((s) => RESTRICTED_DEVICE.slice(0, 20) + s + RESTRICTED_DEVICE.slice(20)),
);
const anyArgs = fc.oneof(
  fc.anything(),
  fc.record({ machineId: fc.oneof(nearlyValidId, fc.string(), fc.anything()), comment: fc.oneof(fc.string(), fc.anything()) }, { requiredKeys: [] }),
  fc.record({ machineId: nearlyValidId, comment: fc.string({ minLength: 1 }), confirmationToken: fc.anything() }),
);

describe('hostile arguments', () => {
  let x: Harness;
  beforeAll(async () => {
    x = await startHarness({ skip: true, simulator: { rateLimitPerMinute: 1_000_000 }, rateLimit: { perMinute: 1_000_000, perHour: 1_000_000 } });
  });
  afterAll(async () => x.close());

  it('never cause a request for an invalid id, and never crash the server', async () => {
    await fc.assert(
      fc.asyncProperty(anyArgs, async (args) => {
        const before = x.sim.requests.length;
        // Arguments that are not an object are refused at the protocol level (a JSON-RPC error): also a refusal.
        const result = await x.client
          .callTool({ name: 'remove_app_restriction', arguments: args as Record<string, unknown> })
          .catch((error: unknown) => ({ isError: true, protocolError: error }));
        const sent = x.sim.requests.slice(before);
        for (const r of sent) expect(r.path).toMatch(VALID_PATH);
        const a = args as { machineId?: unknown; comment?: unknown };
        const validId = typeof a?.machineId === 'string' && /^\s*[0-9a-fA-F]{40}\s*$/.test(a.machineId);
        const validComment =
          typeof a?.comment === 'string' && a.comment.trim().length > 0 && a.comment.trim().length <= 1000 && findHidden(a.comment.trim()) === undefined;
        const token = a && typeof a === 'object' ? (a as { confirmationToken?: unknown }).confirmationToken : undefined;
        // null means "not given"; unknown arguments are refused.
        const tokenOk = token === undefined || token === null || (typeof token === 'string' && token.length <= 4096);
        const onlyKnown = a !== null && typeof a === 'object' && Object.keys(a).every((k) => ['machineId', 'comment', 'confirmationToken'].includes(k));
        if (!(validId && validComment && tokenOk && onlyKnown)) {
          expect(result.isError).toBe(true);
          expect(sent).toHaveLength(0);
        } else {
          expect(sent.every((r) => r.path.includes((a.machineId as string).trim().toLowerCase()) || r.path === '/api/machineactions')).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
    const { tools } = await x.client.listTools();
    expect(tools.map((t) => t.name)).toContain('remove_app_restriction');
  });
});

describe('arbitrary and mutated tokens', () => {
  let x: Harness;
  beforeAll(async () => {
    x = await startHarness({ simulator: { rateLimitPerMinute: 1_000_000 }, rateLimit: { perMinute: 1_000_000, perHour: 1_000_000 } });
  });
  afterAll(async () => x.close());

  it('arbitrary strings as confirmationToken never cause a POST', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }).map((s) => `mdeconfirm.v1.${s}`)), async (token) => {
        fc.pre(token.trim() !== '');
        const r = await x.call({ machineId: RESTRICTED_DEVICE, comment: 'INC-1', confirmationToken: token });
        expect(r.isError).toBe(true);
      }),
      { numRuns: 200 },
    );
    expect(x.sim.apiRequests('POST')).toHaveLength(0);
    expect(x.sim.requests).toHaveLength(0);
  });
});

describe('token properties (unit)', () => {
  const subject = { action: 'unrestrict', machineId: RESTRICTED_DEVICE, comment: 'INC-1: clean' };
  const subjects = fc.record({
    action: fc.constantFrom('unrestrict', 'cancel', 'restrict'),
    machineId: fc.oneof(fc.constant(RESTRICTED_DEVICE), fc.string({ unit: hexChar, minLength: 40, maxLength: 40 })),
    comment: fc.oneof(fc.constant(subject.comment), fc.string()),
  });

  it('a mutated token confirms nothing', () => {
    const tokens = new ConfirmationTokens();
    const { token } = tokens.issue(subject);
    const mutation = fc.oneof(
      fc.tuple(fc.nat(token.length - 1), fc.string({ minLength: 1, maxLength: 1 })).map(([i, c]) => token.slice(0, i) + c + token.slice(i + 1)),
      fc.tuple(fc.nat(token.length), fc.string({ minLength: 1, maxLength: 4 })).map(([i, s]) => token.slice(0, i) + s + token.slice(i)),
      fc.tuple(fc.nat(token.length - 1), fc.integer({ min: 1, max: 8 })).map(([i, n]) => token.slice(0, i) + token.slice(i + n)),
    );
    fc.assert(
      fc.property(mutation, (mutated) => {
        // Surrounding whitespace is ignored by design (a copy-paste artifact): that is the same token.
        fc.pre(mutated.trim() !== token);
        expect(redeem(tokens, mutated, subject).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
    // None of the attempts spent it.
    expect(redeem(tokens, token, subject).ok).toBe(true);
  });

  it('a token confirms only the exact request it was issued for', () => {
    fc.assert(
      fc.property(subjects, subjects, (issuedFor, usedFor) => {
        const tokens = new ConfirmationTokens();
        const { token } = tokens.issue(issuedFor);
        const same = issuedFor.action === usedFor.action && issuedFor.machineId === usedFor.machineId && issuedFor.comment === usedFor.comment;
        expect(redeem(tokens, token, usedFor).ok).toBe(same);
      }),
      { numRuns: 1000 },
    );
  });

  it('expiry holds to the second (fake clock)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 * DEFAULT_TOKEN_TTL_MS }), (elapsed) => {
        let now = 1_700_000_000_000;
        const tokens = new ConfirmationTokens({ now: () => now });
        const { token, expiresAt } = tokens.issue(subject);
        now += elapsed;
        const r = redeem(tokens, token, subject);
        expect(r.ok).toBe(elapsed < DEFAULT_TOKEN_TTL_MS);
        expect(expiresAt.getTime() - (now - elapsed)).toBe(DEFAULT_TOKEN_TTL_MS);
      }),
      { numRuns: 1000 },
    );
    for (const [offset, ok] of [[-1000, true], [-1, true], [0, false], [1000, false]] as const) {
      let now = 0;
      const tokens = new ConfirmationTokens({ now: () => now });
      const { token } = tokens.issue(subject);
      now = DEFAULT_TOKEN_TTL_MS + offset;
      expect(redeem(tokens, token, subject).ok).toBe(ok);
    }
  });
});
