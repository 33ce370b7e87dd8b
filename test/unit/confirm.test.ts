/** The confirmation step on its own: how a call is confirmed, and the exact words of every refusal. */
import { describe, expect, it } from 'vitest';
import { ask, decide, redeem, type ConfirmationDeps, type ConfirmSchema, type ElicitOutcome } from '../../src/confirmation/confirm.js';
import type { ActionRequest, DevicePreview } from '../../src/confirmation/render.js';
import { ConfirmationTokens } from '../../src/confirmation/token.js';

const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';
const subject = { action: 'unrestrict', machineId: DEVICE, comment: 'INC-1' };
const request: ActionRequest = { ...subject, verb: 'Lift the App restriction', consequence: 'Apps run again.' };
const preview: DevicePreview = { machineId: DEVICE, hostName: 'ws-1', osPlatform: null, osVersion: null, deviceGroup: null, healthStatus: null, lastSeen: null, tags: [] };
const ASK_AGAIN = 'Call again without confirmationToken to get a fresh preview and token, show them to the human, and pass the new token back only after the human approves.';

function deps(over: Partial<ConfirmationDeps> & { answer?: () => Promise<ElicitOutcome> } = {}) {
  const tokens = new ConfirmationTokens();
  const prompts: { message: string; schema: ConfirmSchema; call: unknown }[] = [];
  const d: ConfirmationDeps = {
    mode: 'auto',
    skip: false,
    tokens,
    ledger: tokens.ledger,
    elicitor: {
      canElicit: () => over.answer !== undefined,
      elicit: async (message, schema, call) => (prompts.push({ message, schema, call }), over.answer!()),
    },
    ...over,
  };
  return { d, tokens, prompts };
}

describe('decide', () => {
  it('skip wins, then elicitation; without elicitation a token is issued, unless only elicitation is allowed', async () => {
    expect(await decide(deps({ skip: true, answer: async () => ({ action: 'accept' }) }).d, subject, 'x')).toEqual({ kind: 'skip' });
    expect(await decide(deps({ answer: async () => ({ action: 'accept' }) }).d, subject, 'x')).toEqual({ kind: 'ask' });
    expect(await decide(deps().d, subject, undefined)).toEqual({ kind: 'issue_token' });
    expect(await decide(deps().d, subject, '  ')).toEqual({ kind: 'issue_token' });
    const refused = await decide(deps({ mode: 'elicitation' }).d, subject, undefined);
    expect(refused).toMatchObject({ kind: 'refuse', path: 'elicitation_failed' });
    expect(refused.kind === 'refuse' && { kind: refused.error.kind, message: refused.error.message, nextStep: refused.error.nextStep }).toEqual({
      kind: 'not_confirmed',
      message: 'Not performed: this server requires confirmation through MCP elicitation (MDE_CONFIRMATION=elicitation), and this client did not declare the elicitation capability.',
      nextStep: 'Use an MCP client that supports elicitation (form mode), or ask the server\'s operator to set MDE_CONFIRMATION=auto to allow confirmation tokens.',
    });
  });

  it('refuses a bad token in words, with how to get a new one; a token from an earlier run says when asking again cannot help', async () => {
    const { d, tokens } = deps();
    const bad = await decide(d, subject, 'nonsense');
    expect(bad).toMatchObject({ kind: 'refuse', path: 'token_rejected', rejection: 'malformed' });
    expect(bad.kind === 'refuse' && [bad.error.kind, bad.error.message, bad.error.nextStep]).toEqual([
      'not_confirmed',
      'Not performed: the confirmation token is not one this server issued (malformed).',
      ASK_AGAIN,
    ]);
    const old = await decide(d, subject, new ConfirmationTokens().issue(subject).token);
    expect(old.kind === 'refuse' && [old.rejection, old.error.nextStep]).toEqual([
      'earlier_run',
      `Tokens do not survive a restart. ${ASK_AGAIN} If the server is started anew for every call (a one-shot CLI, such as the MCP Inspector's CLI mode), no token can ever be redeemed: stop and tell the human to use a client that keeps one connection open or supports elicitation.`,
    ]);
    const issued = tokens.issue(subject, 'ws-1');
    const ok = await decide(d, subject, issued.token);
    expect(ok).toMatchObject({ kind: 'redeem_token', token: { ok: true, hostName: 'ws-1', confirmationId: issued.confirmationId } });
    if (ok.kind !== 'redeem_token') throw new Error('not redeemable');
    expect(await redeem(d, ok.token)).toEqual({ kind: 'confirmed', path: 'token_redeemed', confirmationId: issued.confirmationId, hostName: 'ws-1' });
    const again = await redeem(d, ok.token);
    expect(again.kind === 'refuse' && [again.path, again.rejection, again.error.message]).toEqual(['token_rejected', 'replayed', 'Not performed: the confirmation token has already been used.']);
    const spent = await decide(d, subject, issued.token);
    expect(spent).toMatchObject({ kind: 'refuse', rejection: 'replayed' });
  });
  it('names a token signed with a key this server does not hold, and one issued to another user', async () => {
    const key = Buffer.alloc(32, 1);
    const tokens = new ConfirmationTokens({ key });
    const d = deps({ tokens, ledger: tokens.ledger }).d;
    const foreign = await decide(d, subject, new ConfirmationTokens({ key: Buffer.alloc(32, 2) }).issue(subject).token);
    expect(foreign.kind === 'refuse' && [foreign.rejection, foreign.error.message, foreign.error.nextStep]).toEqual([
      'unknown_key',
      'Not performed: the confirmation token was signed with a key this server does not hold (a replica with another MDE_CONFIRMATION_KEY, or a key rotated out).',
      ASK_AGAIN,
    ]);
    const theirs = await decide(d, { ...subject, principal: 'bob' }, tokens.issue({ ...subject, principal: 'ada' }).token);
    expect(theirs.kind === 'refuse' && [theirs.rejection, theirs.error.message]).toEqual([
      'other_user',
      'Not performed: the confirmation token was issued to another user; only the person who asked can redeem it.',
    ]);
  });
});

describe('ask', () => {
  it('shows the approval text with one required boolean titled by the question, tied to the call', async () => {
    const { d, prompts } = deps({ answer: async () => ({ action: 'accept', content: { confirm: true } }) });
    const signal = new AbortController().signal;
    expect(await ask(d, request, preview, { signal, requestId: 7 })).toEqual({ kind: 'confirmed', path: 'elicitation_accepted' });
    expect(prompts).toHaveLength(1);
    expect(prompts[0]!.message.split('\n')[0]).toBe('Lift the App restriction on ws-1?');
    expect(prompts[0]!.schema).toEqual({
      type: 'object',
      properties: { confirm: { type: 'boolean', title: 'Lift the App restriction on ws-1', description: 'Check to confirm. Anything else leaves the device as it is.' } },
      required: ['confirm'],
    });
    expect(prompts[0]!.call).toEqual({ signal, requestId: 7 });
  });

  it('only an accept with confirm: true confirms; a decline, an unchecked box or a dismissal refuse in words', async () => {
    for (const answer of [{ action: 'decline' }, { action: 'decline', content: { confirm: true } }, { action: 'accept', content: { confirm: false } }, { action: 'accept', content: { confirm: 'true' } }, { action: 'accept' }] as ElicitOutcome[]) {
      const r = await ask(deps({ answer: async () => answer }).d, request, preview, {});
      expect(r.kind === 'refuse' && [r.path, r.error.kind, r.error.message, r.error.nextStep]).toEqual([
        'elicitation_declined',
        'not_confirmed',
        'Not performed: the human declined to lift the app restriction on ws-1. Nothing was sent to Defender.',
        'Do not retry unless the human asks for it.',
      ]);
    }
    const cancelled = await ask(deps({ answer: async () => ({ action: 'cancel' }) }).d, request, { ...preview, hostName: null }, {});
    expect(cancelled.kind === 'refuse' && [cancelled.path, cancelled.error.message, cancelled.error.nextStep]).toEqual([
      'elicitation_cancelled',
      `Not performed: the client cancelled the confirmation prompt for device ${DEVICE} (nobody answered it, or it was dismissed). Nothing was sent to Defender.`,
      'Do not retry on your own; ask the human what they want to do.',
    ]);
  });

  it('a prompt that fails says why (bounded, escaped) and sends nothing', async () => {
    const failed = await ask(deps({ answer: async () => Promise.reject(new Error(`timed out\n${'x'.repeat(300)}`)) }).d, request, preview, {});
    expect(failed.kind === 'refuse' && [failed.path, failed.error.message, failed.error.nextStep]).toEqual([
      'elicitation_failed',
      `Not performed: the confirmation prompt could not be completed (timed out\\u000a${'x'.repeat(190)}). Nothing was sent to Defender.`,
      'Ask the human whether they want to proceed, then call again to show the prompt once more.',
    ]);
    const odd = await ask(deps({ answer: async () => Promise.reject('gone') }).d, request, preview, {});
    expect(odd.kind === 'refuse' && odd.error.message).toBe('Not performed: the confirmation prompt could not be completed (gone). Nothing was sent to Defender.');
  });
});
