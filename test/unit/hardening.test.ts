/** Issue 9, the parts below the protocol: each test fails for the bug (or the mutant) it names. */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { compileCommentPattern } from '../../src/comment-pattern.js';
import { parseConfig } from '../../src/config.js';
import { NO_POLICY, type Policy } from '../../src/policy.js';
import { describeCodePoint, findHidden } from '../../src/confirmation/characters.js';
import { approvalText, confirmationRequiredText, type ActionRequest, type DevicePreview } from '../../src/confirmation/render.js';
import { DefenderClient } from '../../src/defender/client.js';
import { mapErrorResponse } from '../../src/defender/errors.js';
import { memoryBudget } from '../helpers/budget.js';
import type { MachineAction } from '../../src/defender/schemas.js';
import { createUnrestrictSubmitter, describeHistory } from '../../src/defender/unrestrict.js';
import { StartupError, ToolError, renderError } from '../../src/errors.js';
import { createStderrLogger, silentLogger } from '../../src/log.js';
import { checkComment, checkDevice } from '../../src/policy.js';
import { fakeApi } from '../helpers/fake-defender-api.js';

fc.configureGlobal({ seed: Number(process.env.FC_SEED ?? 20261129) });
const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';
const SECRET = 'Sup3r~S3cret.Value_for-tests-0123456'; // 36 characters

describe('hidden characters, by Unicode property', () => {
  it('names common ones and falls back to the category', () => {
    expect(describeCodePoint(0x2028)).toBe('U+2028 LINE SEPARATOR');
    expect(describeCodePoint(0xe0041)).toBe('U+E0041 (format character)');
    expect(describeCodePoint(0xf0000)).toBe('U+F0000 (private-use character)');
    expect(describeCodePoint(0x378)).toBe('U+0378 (unassigned code point)');
    expect(describeCodePoint(0x1d175)).toBe('U+1D175 (format character)');
    expect(findHidden('ab\uD800c')).toEqual({ description: 'U+D800 (surrogate)', position: 3 });
    expect(findHidden('a\u{1F600}\u200Bb')).toEqual({ description: 'U+200B ZERO WIDTH SPACE', position: 3 });
    expect(findHidden('INC-12: Grüße, 東京, ok')).toBeUndefined();
  });
});

describe('the renderer: every field where it belongs, whatever it holds', () => {
  const text = fc.string({ unit: 'binary', maxLength: 40 });
  const LINE_BREAK = /\r\n|[\n\r\u000B\u000C\u0085\u2028\u2029]/;
  it('the prompt has its fixed number of lines, and each field is on its own line', () => {
    fc.assert(
      fc.property(
        fc.record({ host: text, group: text, os: text, health: text, seen: text, tags: fc.array(text, { maxLength: 3 }), comment: text, requestor: text, actionComment: text, status: text, history: text, cancel: fc.boolean() }),
        (f) => {
          const preview: DevicePreview = { machineId: DEVICE, hostName: `H${f.host}`, osPlatform: f.os, osVersion: null, deviceGroup: f.group, healthStatus: f.health, lastSeen: f.seen, tags: f.tags, history: `Y${f.history}` };
          const request: ActionRequest = {
            action: 'x',
            verb: f.cancel ? `Cancel the ${f.status} action` : 'Lift the app restriction',
            consequence: 'Consequence.',
            machineId: DEVICE,
            comment: f.comment,
            ...(f.cancel ? { target: { id: 'a', type: 'UnrestrictCodeExecution', status: f.status, requestor: f.requestor, requestorComment: `C${f.actionComment}` } } : {}),
          };
          const lines = approvalText(request, preview).split(LINE_BREAK);
          const labels = ['', '', ...(f.cancel ? ['Action: '] : []), 'Device: ', 'Device id: ', 'History: ', 'Comment recorded in Defender: ', '', 'Consequence.'];
          expect(lines).toHaveLength(labels.length);
          labels.forEach((label, i) => expect(lines[i]!.startsWith(label), `line ${i}: ${lines[i]}`).toBe(true));
          expect(lines[0]!.endsWith('?')).toBe(true);
          expect(lines[1]).toBe('');
          const at = (label: string) => lines.find((l) => l.startsWith(label))!;
          expect(at('Device id: ')).toBe(`Device id: ${DEVICE}`);
          expect(at('Comment recorded in Defender: ')).toBe(`Comment recorded in Defender: ${JSON.stringify(f.comment).replace(/[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Cn}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/gu, (c) => {
            const cp = c.codePointAt(0)!;
            return cp > 0xffff ? `\\u{${cp.toString(16)}}` : `\\u${cp.toString(16).padStart(4, '0')}`;
          })}`);
          for (const line of lines) expect(findHidden(line)).toBeUndefined();
          const required = confirmationRequiredText(request, preview, { tool: 't', sameArguments: 'a', token: 'T', expiresAt: 'E' }).split(LINE_BREAK);
          expect(required).toHaveLength(2 + labels.length - 2 + 2); // the blank lines dropped, two lines before, two after
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('secrets: redacted before anything is cut', () => {
  it('a secret split by the 300-character cut of Defender\'s message leaks no part of it', () => {
    const message = `${'x'.repeat(275)}${SECRET} and more`; // the cut at 300 falls inside the secret
    const error = mapErrorResponse('unrestrict', 400, JSON.stringify({ error: { code: 'BadRequest', message } }), [SECRET]);
    const text = renderError(error, [SECRET]);
    expect(text).not.toContain(SECRET.slice(0, 12));
    expect(text).toContain('[REDACTED]');
  });

  it('a ToolError is rendered with its secrets redacted (message and next step)', () => {
    const text = renderError(new ToolError('upstream', `failed with ${SECRET}`, `retry without ${SECRET}`), [SECRET]);
    expect(text).not.toContain(SECRET);
    expect(text.match(/\[REDACTED\]/g)).toHaveLength(2);
  });

  it('the logger redacts what it writes and what it sends to its sinks', () => {
    const lines: string[] = [];
    const sunk: string[] = [];
    const logger = createStderrLogger({ level: 'debug', secrets: [SECRET], write: (l) => void lines.push(l) });
    logger.addSink!((_level, m) => void sunk.push(m));
    logger.error(`token endpoint said ${SECRET}`);
    logger.debug(`Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl`);
    expect(lines.join('')).not.toContain(SECRET);
    expect(lines.join('')).not.toContain('eyJhbGciOiJIUzI1NiJ9');
    expect(lines[0]).toContain('[REDACTED]');
    expect(sunk).toEqual(['token endpoint said [REDACTED]']);
  });
});

describe('comment pattern: linear time, semantics said', () => {
  it('a hostile 30-character comment against ^([A-Za-z0-9]+\\s?)*: is answered within 100 ms', async () => {
    const pattern = await compileCommentPattern('^([A-Za-z0-9]+\\s?)*:');
    const policy: Policy = { ...NO_POLICY, commentPattern: pattern };
    const hostile = `${'a'.repeat(29)}!`;
    const started = performance.now();
    expect(() => checkComment(policy, hostile)).toThrow(/must match the pattern/);
    expect(performance.now() - started).toBeLessThan(100);
    expect(() => checkComment(policy, 'INC 42 done: ok')).not.toThrow();
  });

  it('matches part of the comment unless anchored', async () => {
    expect((await compileCommentPattern('INC-\\d+')).test('NOT-AN-INC-0')).toBe(true);
    const anchored = await compileCommentPattern('^INC-\\d+: .+$');
    expect(anchored.test('NOT-AN-INC-0')).toBe(false);
    expect(anchored.test('INC-42: re-imaged')).toBe(true);
  });

  it('refuses at start what a linear-time engine cannot run, naming the setting', async () => {
    await expect(compileCommentPattern('(a)\\1')).rejects.toBeInstanceOf(StartupError);
    await expect(compileCommentPattern('(?<=INC)-\\d+')).rejects.toThrow(/MDE_COMMENT_PATTERN.*backreferences/s);
  });
});

describe('device rules', () => {
  const policy = (p: Partial<Policy>): Policy => ({ ...NO_POLICY, ...p });
  const device = { hostName: 'h', deviceGroup: 'Finance', tags: ['Production'] };
  it('compare deny-tags and groups whatever the case', () => {
    expect(() => checkDevice(policy({ denyTags: ['production'] }), DEVICE, device)).toThrow(/MDE_DENY_TAGS/);
    expect(() => checkDevice(policy({ denyTags: ['PRODUCTION'] }), DEVICE, { ...device, tags: ['production'] })).toThrow(/MDE_DENY_TAGS/);
    expect(() => checkDevice(policy({ denyDeviceGroups: ['FINANCE'] }), DEVICE, device)).toThrow(/MDE_DENY_DEVICE_GROUPS/);
    expect(() => checkDevice(policy({ allowTags: ['PRODUCTION'] }), DEVICE, device)).not.toThrow();
    expect(() => checkDevice(policy({ allowDeviceGroups: ['finance'] }), DEVICE, device)).not.toThrow();
  });
  it('fail closed when the record lacks what a rule needs, and only then', () => {
    expect(() => checkDevice(policy({ denyDeviceGroups: ['X'] }), DEVICE, { ...device, deviceGroup: null })).toThrow(/names no device group/);
    expect(() => checkDevice(policy({ allowDeviceGroups: ['X'] }), DEVICE, { ...device, deviceGroup: ' ' })).toThrow(/names no device group/);
    expect(() => checkDevice(policy({ denyTags: ['X'] }), DEVICE, { ...device, tags: null })).toThrow(/carries no tag list/);
    expect(() => checkDevice(policy({ denyTags: ['X'] }), DEVICE, { ...device, deviceGroup: null })).not.toThrow();
    expect(() => checkDevice(policy({ denyDeviceGroups: ['X'] }), DEVICE, { ...device, tags: null })).not.toThrow();
    expect(() => checkDevice(policy({ denyTags: ['X'] }), DEVICE, { ...device, tags: [] })).not.toThrow();
  });
  it('lists take a JSON array for names that contain a comma', () => {
    const LIVE = { AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47', AZURE_CLIENT_ID: 'c', AZURE_CLIENT_SECRET: 's' };
    const parsed = parseConfig([], { ...LIVE, MDE_DENY_DEVICE_GROUPS: '["Finance, EMEA", " HR "]', MDE_ALLOW_TAGS: 'a, b' });
    expect(parsed.kind === 'run' && parsed.config.policy.denyDeviceGroups).toEqual(['Finance, EMEA', 'HR']);
    expect(parsed.kind === 'run' && parsed.config.policy.allowTags).toEqual(['a', 'b']);
    expect(() => parseConfig([], { ...LIVE, MDE_DENY_TAGS: '["unclosed' })).toThrow(/MDE_DENY_TAGS.*JSON array/s);
    expect(() => parseConfig([], { ...LIVE, MDE_DENY_TAGS: '[1, 2]' })).toThrow(/JSON array of strings/);
  });
});

describe('the history line', () => {
  const a = (over: Partial<MachineAction>): MachineAction => ({ id: 'x', type: 'RestrictCodeExecution', status: 'Succeeded', requestor: 'soc@contoso.com', lastUpdateDateTimeUtc: '2026-11-01T10:00:00Z', ...over });
  it('says what the newest restrict/unrestrict action did', () => {
    expect(describeHistory([])).toBe('no restrict/unrestrict action in the history');
    expect(describeHistory([a({ type: 'Isolate' })])).toBe('no restrict/unrestrict action in the history');
    expect(describeHistory([a({ type: 'UnrestrictCodeExecution' }), a({})])).toBe('the restriction was lifted on 2026-11-01T10:00:00Z by soc@contoso.com');
    expect(describeHistory([a({ type: 'Isolate' }), a({})])).toBe('the restriction was applied on 2026-11-01T10:00:00Z by soc@contoso.com');
    expect(describeHistory([a({ status: 'Failed' })])).toBe('the last request to apply the restriction ended Failed on 2026-11-01T10:00:00Z (by soc@contoso.com)');
  });
});

describe('never twice: the clock-skew clause and unknown outcomes', () => {
  const NOW = Date.parse('2026-11-29T12:00:00Z');
  const action = (over: Partial<MachineAction> = {}): MachineAction => ({ id: 'a', type: 'UnrestrictCodeExecution', status: 'Pending', machineId: DEVICE, requestorComment: 'INC-1', creationDateTimeUtc: new Date(NOW).toISOString(), ...over });
  const api = fakeApi;
  it('a 201 carrying the same comment but created well before the request is an older pending action', async () => {
    const older = createUnrestrictSubmitter({ api: api(async () => action({ creationDateTimeUtc: new Date(NOW - 16_000).toISOString() })).api, now: () => NOW });
    expect(await older.submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'already_pending' });
    const withinSkew = createUnrestrictSubmitter({ api: api(async () => action({ creationDateTimeUtc: new Date(NOW - 14_000).toISOString() })).api, now: () => NOW });
    expect(await withinSkew.submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'submitted' });
  });

  it('after an unknown outcome, the next submit for the device looks for a pending action first and does not POST', async () => {
    let fail = true;
    const pending = action({ id: 'p' });
    const listed: MachineAction[] = [];
    const fake = api(async () => {
      if (fail) {
        fail = false;
        throw new ToolError('outcome_unknown', 'timed out', 'check');
      }
      return action({ id: 'second' });
    }, listed);
    const s = createUnrestrictSubmitter({ api: fake.api, now: () => NOW });
    // The lookup right after the failure sees nothing yet (Defender lists it only later)...
    await expect(s.submit(DEVICE, 'INC-1')).rejects.toThrow(/timed out/);
    listed.push(pending);
    // ...the next call (separately confirmed) looks first.
    expect(await s.submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'already_pending', action: { id: 'p' } });
    expect(fake.calls.posts).toBe(1);
    // Once nothing is pending any more, a new POST is allowed again.
    listed.length = 0;
    expect(await s.submit(DEVICE, 'INC-1')).toMatchObject({ outcome: 'submitted', action: { id: 'second' } });
    expect(fake.calls.posts).toBe(2);
  });
});

describe('the Defender client: cancellation and the shared pause', () => {
  afterEach(() => vi.useRealTimers());
  const tokens = { getToken: async () => 't', invalidate() {}, description: 'fake' } as never;
  const created = JSON.stringify({ id: 'a', type: 'UnrestrictCodeExecution', status: 'Pending', machineId: DEVICE, requestorComment: 'INC-1', creationDateTimeUtc: new Date().toISOString() });

  it('sends nothing once the signal fired: not before the request, not after a Retry-After sleep', async () => {
    const sent: string[] = [];
    const fetch = (async (url: string, init: RequestInit) => {
      sent.push(`${init.method} ${url}`);
      return new Response('', { status: 429, headers: { 'Retry-After': '5' } });
    }) as typeof globalThis.fetch;
    const controller = new AbortController();
    let sleeping!: () => void;
    const asleep = new Promise<void>((r) => (sleeping = r));
    const client = new DefenderClient({ baseUrl: 'http://127.0.0.1:1', tokens, timeoutMs: 1000, logger: silentLogger, fetch, sleep: () => (sleeping(), new Promise(() => undefined)) });
    const call = client.unrestrictCodeExecution(DEVICE, 'INC-1', controller.signal);
    await asleep;
    controller.abort();
    await expect(call).rejects.toThrow(/cancelled/);
    expect(sent).toHaveLength(1);

    const aborted = new AbortController();
    aborted.abort();
    await expect(client.unrestrictCodeExecution(DEVICE, 'INC-1', aborted.signal)).rejects.toMatchObject({ kind: 'not_confirmed' });
    expect(sent).toHaveLength(1);
  });

  it('a cancel while the request is on the wire aborts it; for a write the outcome is unknown', async () => {
    const fetch = ((_url: string, init: RequestInit) =>
      new Promise<Response>((_, reject) => init.signal!.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))))) as typeof globalThis.fetch;
    const client = new DefenderClient({ baseUrl: 'http://127.0.0.1:1', tokens, timeoutMs: 60_000, logger: silentLogger, fetch });
    const controller = new AbortController();
    const call = client.unrestrictCodeExecution(DEVICE, 'INC-1', controller.signal);
    setTimeout(() => controller.abort(), 10);
    await expect(call).rejects.toMatchObject({ kind: 'outcome_unknown' });
  });

  it('the budget wait ends on cancel and gives its slot back', async () => {
    const clock = { now: 0 };
    const limiter = memoryBudget({ perMinute: 1, perHour: 100, maxWaitMs: 120_000, now: () => clock.now, sleep: () => new Promise(() => undefined) });
    await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire({ signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ kind: 'not_confirmed' });
    expect(limiter.usage(60_000)).toEqual({ minute: 0, hour: 1 });
  });

  it('after an upstream 429, a second concurrent call waits too (the pause is shared)', async () => {
    const clock = { now: 1_000_000 };
    const limiterSleeps: number[] = [];
    // The budget's sleep ends when the test moves the clock on (a waiting call checks the pause again on
    // waking, so a sleep that returned at once, with the clock standing still, would sleep again forever).
    const limiterWakes: Array<() => void> = [];
    const limiter = memoryBudget({
      perMinute: 100,
      perHour: 1500,
      maxWaitMs: 60_000,
      now: () => clock.now,
      sleep: (ms) => {
        limiterSleeps.push(ms);
        return new Promise<void>((wake) => limiterWakes.push(wake));
      },
    });
    let first = true;
    const fetch = (async () => {
      if (first) {
        first = false;
        return new Response('', { status: 429, headers: { 'Retry-After': '10' } });
      }
      return new Response(created, { status: 201 });
    }) as typeof globalThis.fetch;
    let release!: () => void;
    const client = new DefenderClient({ baseUrl: 'http://127.0.0.1:1', tokens, timeoutMs: 1000, logger: silentLogger, fetch, limiter, now: () => clock.now, sleep: () => new Promise<void>((r) => (release = r)) });
    const a = client.unrestrictCodeExecution(DEVICE, 'INC-1');
    await vi.waitFor(() => expect(release).toBeDefined());
    // While A sleeps out its Retry-After, B starts: it must wait for the same pause.
    const b = client.getMachineAction('8af71966-4671-4734-a777-a855875c0ec4').catch(() => undefined);
    await vi.waitFor(() => expect(limiterSleeps).toEqual([10_000]));
    clock.now += 10_000;
    release();
    for (const wake of limiterWakes) wake();
    await a;
    await b;
    expect(limiterSleeps).toEqual([10_000]);
  });
});

describe('the names of hidden characters are their Unicode names', () => {
  // From the Unicode Character Database (UnicodeData.txt); the fallback is the category.
  const UNICODE_NAMES: [number, string][] = [
    [0x00, 'NULL'], [0x09, 'CHARACTER TABULATION'], [0x0a, 'LINE FEED'], [0x0b, 'LINE TABULATION'], [0x0c, 'FORM FEED'],
    [0x0d, 'CARRIAGE RETURN'], [0x1b, 'ESCAPE'], [0x7f, 'DELETE'], [0x85, 'NEXT LINE'], [0xad, 'SOFT HYPHEN'],
    [0x34f, 'COMBINING GRAPHEME JOINER'], [0x61c, 'ARABIC LETTER MARK'], [0x115f, 'HANGUL CHOSEONG FILLER'],
    [0x1160, 'HANGUL JUNGSEONG FILLER'], [0x180e, 'MONGOLIAN VOWEL SEPARATOR'], [0x200b, 'ZERO WIDTH SPACE'],
    [0x200c, 'ZERO WIDTH NON-JOINER'], [0x200d, 'ZERO WIDTH JOINER'], [0x200e, 'LEFT-TO-RIGHT MARK'], [0x200f, 'RIGHT-TO-LEFT MARK'],
    [0x2028, 'LINE SEPARATOR'], [0x2029, 'PARAGRAPH SEPARATOR'], [0x202a, 'LEFT-TO-RIGHT EMBEDDING'], [0x202b, 'RIGHT-TO-LEFT EMBEDDING'],
    [0x202c, 'POP DIRECTIONAL FORMATTING'], [0x202d, 'LEFT-TO-RIGHT OVERRIDE'], [0x202e, 'RIGHT-TO-LEFT OVERRIDE'], [0x2060, 'WORD JOINER'],
    [0x2061, 'FUNCTION APPLICATION'], [0x2062, 'INVISIBLE TIMES'], [0x2063, 'INVISIBLE SEPARATOR'], [0x2064, 'INVISIBLE PLUS'],
    [0x2066, 'LEFT-TO-RIGHT ISOLATE'], [0x2067, 'RIGHT-TO-LEFT ISOLATE'], [0x2068, 'FIRST STRONG ISOLATE'], [0x2069, 'POP DIRECTIONAL ISOLATE'],
    [0x3164, 'HANGUL FILLER'], [0xfeff, 'ZERO WIDTH NO-BREAK SPACE'], [0xffa0, 'HALFWIDTH HANGUL FILLER'],
    [0xfff9, 'INTERLINEAR ANNOTATION ANCHOR'], [0xfffa, 'INTERLINEAR ANNOTATION SEPARATOR'], [0xfffb, 'INTERLINEAR ANNOTATION TERMINATOR'],
    [0xe0001, 'LANGUAGE TAG'], [0xe007f, 'CANCEL TAG'],
  ];
  it.each(UNICODE_NAMES)('U+%s', (cp, name) => {
    expect(describeCodePoint(cp)).toBe(`U+${cp.toString(16).toUpperCase().padStart(4, '0')} ${name}`);
    expect(findHidden(`a${String.fromCodePoint(cp)}`)).toEqual({ description: describeCodePoint(cp), position: 2 });
  });
  it('falls back to the category, or default-ignorable', () => {
    expect(describeCodePoint(0x01)).toBe('U+0001 (control character)');
    expect(describeCodePoint(0xfe01)).toBe('U+FE01 (default-ignorable character)');
    expect(describeCodePoint(0xdc00)).toBe('U+DC00 (surrogate)');
  });
  it('escapes as JSON and JavaScript do', () => {
    expect(approvalText({ action: 'x', verb: 'V', consequence: 'C', machineId: DEVICE, comment: '\u{e0041}\u0007' }, { machineId: DEVICE, hostName: null, osPlatform: null, osVersion: null, deviceGroup: null, healthStatus: null, lastSeen: null, tags: [] })).toContain('"\\u{e0041}\\u0007"');
  });
});
