import { describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { ConfirmationTokens, DEFAULT_TOKEN_TTL_MS, MemoryTokenLedger, TOKEN_PREFIX } from '../../src/confirmation/token.js';
import { redeem } from '../helpers/tokens.js';

const subject = { action: 'unrestrict', machineId: '1e5bc9d7e413ddd7902c2932e418702b84d0cc07', comment: 'INC-1: clean' };

describe('ConfirmationTokens', () => {
  it('redeems a fresh token once for the exact subject, carrying the previewed host name', () => {
    const tokens = new ConfirmationTokens();
    const { token } = tokens.issue(subject, 'host-1');
    expect(redeem(tokens, token, subject)).toMatchObject({ ok: true, hostName: 'host-1' });
    expect(redeem(tokens, token, subject)).toEqual({ ok: false, reason: 'replayed' });
  });

  it('binds action, machine and comment', () => {
    const tokens = new ConfirmationTokens();
    const { token } = tokens.issue(subject);
    expect(redeem(tokens, token, { ...subject, action: 'cancel' })).toEqual({ ok: false, reason: 'mismatch' });
    expect(redeem(tokens, token, { ...subject, machineId: 'f'.repeat(40) })).toEqual({ ok: false, reason: 'mismatch' });
    expect(redeem(tokens, token, { ...subject, comment: 'INC-1: clean ' })).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('expires to the millisecond', () => {
    let now = 1_000_000;
    const tokens = new ConfirmationTokens({ now: () => now });
    const a = tokens.issue(subject);
    const b = tokens.issue(subject);
    expect(a.expiresAt.getTime()).toBe(1_000_000 + DEFAULT_TOKEN_TTL_MS);
    now += DEFAULT_TOKEN_TTL_MS - 1;
    expect(redeem(tokens, a.token, subject).ok).toBe(true);
    now += 1;
    expect(redeem(tokens, b.token, subject)).toEqual({ ok: false, reason: 'expired' });
  });

  it('rejects tokens signed with another key (named as from an earlier run), and any altered payload', () => {
    const mine = new ConfirmationTokens();
    const theirs = new ConfirmationTokens(); // e.g. this server before a restart
    expect(theirs.keyId).not.toBe(mine.keyId);
    expect(redeem(mine, theirs.issue(subject).token, subject)).toEqual({ ok: false, reason: 'earlier_run' });
    // The same key (a restarted server given the same key) keeps its id.
    const key = Buffer.alloc(32, 7);
    expect(new ConfirmationTokens({ key }).keyId).toBe(new ConfirmationTokens({ key }).keyId);
    const { token } = mine.issue(subject);
    const [p, v, body, sig] = token.split('.');
    const payload = JSON.parse(Buffer.from(body!, 'base64url').toString());
    payload.e += 3_600_000; // extend the expiry
    const altered = `${p}.${v}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${sig}`;
    expect(redeem(mine, altered, subject)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(redeem(mine, 'garbage', subject)).toEqual({ ok: false, reason: 'malformed' });
    // Claiming another key id only changes the words of the refusal, never lets a token in.
    payload.k = 'someone';
    const relabelled = `${p}.${v}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${sig}`;
    expect(redeem(mine, relabelled, subject)).toEqual({ ok: false, reason: 'earlier_run' });
  });

  it('never puts the comment itself into the token', () => {
    const { token } = new ConfirmationTokens().issue({ ...subject, comment: 'very-distinctive-comment' });
    expect(Buffer.from(token.split('.')[2]!, 'base64url').toString()).not.toContain('very-distinctive-comment');
  });
});

describe('ConfirmationTokens with a configured key (replicas) and rotation', () => {
  const key = Buffer.alloc(32, 3);
  const next = Buffer.alloc(32, 4);

  it('every replica with the same key checks what another issued', () => {
    const a = new ConfirmationTokens({ key });
    const b = new ConfirmationTokens({ key });
    expect(b.verify(a.issue(subject, 'host-1').token, subject)).toMatchObject({ ok: true, hostName: 'host-1' });
  });

  it('after a rotation, tokens signed with the previous key are accepted until they expire; the previous key never signs', () => {
    const before = new ConfirmationTokens({ key });
    const after = new ConfirmationTokens({ key: next, previousKeys: [key] });
    expect(after.verify(before.issue(subject).token, subject)).toMatchObject({ ok: true });
    expect(before.verify(after.issue(subject).token, subject)).toEqual({ ok: false, reason: 'unknown_key' });
    let now = 1_000_000;
    const old = new ConfirmationTokens({ key, now: () => now }).issue(subject).token;
    now += DEFAULT_TOKEN_TTL_MS;
    expect(new ConfirmationTokens({ key: next, previousKeys: [key], now: () => now }).verify(old, subject)).toEqual({ ok: false, reason: 'expired' });
  });

  it('a token signed with a key this server does not hold is named as such, not as an earlier run', () => {
    const other = new ConfirmationTokens({ key: Buffer.alloc(32, 5) });
    expect(new ConfirmationTokens({ key }).verify(other.issue(subject).token, subject)).toEqual({ ok: false, reason: 'unknown_key' });
    // Naming a key we hold does not help a forgery: the signature is still checked with that key.
    const { token } = other.issue(subject);
    const [p, v, body, sig] = token.split('.');
    const payload = JSON.parse(Buffer.from(body!, 'base64url').toString());
    payload.k = new ConfirmationTokens({ key }).keyId;
    const relabelled = `${p}.${v}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${sig}`;
    expect(new ConfirmationTokens({ key }).verify(relabelled, subject)).toEqual({ ok: false, reason: 'bad_signature' });
  });
});

describe('ConfirmationTokens.verify: each malformed shape is named as such', () => {
  const tokens = new ConfirmationTokens();
  const { token } = tokens.issue(subject);
  const [prefixA, prefixB, body, sig] = token.split('.');
  it.each([
    ['three parts', `${prefixA}.${prefixB}.${body}`],
    ['five parts', `${token}.x`],
    ['another prefix', `mdeconfirm.v2.${body}.${sig}`],
    ['another first word', `other.${prefixB}.${body}.${sig}`],
    ['a body outside base64url', `${prefixA}.${prefixB}.${body}!.${sig}`],
    ['a body with a leading stray character', `${prefixA}.${prefixB}.=${body}.${sig}`],
    ['a signature outside base64url', `${prefixA}.${prefixB}.${body}.${sig}=`],
    ['a signature with a leading stray character', `${prefixA}.${prefixB}.${body}.+${sig}`],
    ['an empty body', `${prefixA}.${prefixB}..${sig}`],
    ['an empty signature', `${prefixA}.${prefixB}.${body}.`],
  ])('%s', (_name, bad) => {
    expect(tokens.verify(bad, subject)).toEqual({ ok: false, reason: 'malformed' });
  });
  it('surrounding whitespace is not part of the token', () => {
    expect(tokens.verify(`  ${token}\n`, subject)).toMatchObject({ ok: true });
  });
});

describe('ConfirmationTokens: what only a holder of the key could send', () => {
  const key = Buffer.alloc(32, 9);
  const signed = (payload: string) => {
    const body = Buffer.from(payload).toString('base64url');
    return `${TOKEN_PREFIX}.${body}.${createHmac('sha256', key).update(`${TOKEN_PREFIX}.${body}`).digest('base64url')}`;
  };

  it('a correctly signed body that is not JSON is malformed, not a crash', () => {
    expect(new ConfirmationTokens({ key }).verify(signed('not json'), subject)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('an expiry that is not a number counts as expired', () => {
    const tokens = new ConfirmationTokens({ key, now: () => 1_000 });
    const { token } = tokens.issue(subject);
    const payload = JSON.parse(Buffer.from(token.split('.')[2]!, 'base64url').toString());
    expect(tokens.verify(signed(JSON.stringify(payload)), subject)).toMatchObject({ ok: true });
    expect(tokens.verify(signed(JSON.stringify({ ...payload, e: '99999999999999' })), subject)).toEqual({ ok: false, reason: 'expired' });
  });

  it('names a token by a short public id and its key by an 8-character id', () => {
    const tokens = new ConfirmationTokens({ key });
    const a = tokens.issue(subject);
    expect(a.confirmationId).toMatch(/^c-[A-Za-z0-9_-]{16}$/);
    expect(a.confirmationId).not.toBe(tokens.issue(subject).confirmationId);
    expect(tokens.keyId).toMatch(/^[A-Za-z0-9_-]{8}$/);
    expect(tokens.verify(a.token, subject)).toMatchObject({ ok: true, confirmationId: a.confirmationId });
  });
});

describe('MemoryTokenLedger', () => {
  it('remembers a spent token until the moment it expires, then lets the memory go', async () => {
    let now = 0;
    const ledger = new MemoryTokenLedger(() => now);
    expect(await ledger.spend('n', 100)).toBe(true);
    expect(await ledger.spend('n', 100)).toBe(false);
    now = 99;
    expect(await ledger.isSpent('n')).toBe(true);
    now = 100;
    expect(await ledger.isSpent('n')).toBe(false);
    expect(await ledger.spend('n', 200)).toBe(true);
  });
});
