import { describe, expect, it } from 'vitest';
import { ConfirmationTokens } from '../../src/confirmation/token.js';
import { redeem } from '../helpers/tokens.js';

const subject = { action: 'unrestrict', machineId: '1e5bc9d7e413ddd7902c2932e418702b84d0cc07', comment: 'INC-1: cleaned' };
const ADA = 'user:tenant:ada-oid';
const BOB = 'user:tenant:bob-oid';

describe('confirmation tokens bound to the user who asked (remote mode)', () => {
  it('only the principal it was issued to can redeem it', () => {
    const tokens = new ConfirmationTokens();
    const { token } = tokens.issue({ ...subject, principal: ADA });
    expect(redeem(tokens, token, { ...subject, principal: BOB })).toEqual({ ok: false, reason: 'other_user' });
    expect(redeem(tokens, token, subject)).toEqual({ ok: false, reason: 'other_user' });
    // The refusals did not spend it: Ada can still redeem it, once.
    expect(redeem(tokens, token, { ...subject, principal: ADA })).toMatchObject({ ok: true });
    expect(redeem(tokens, token, { ...subject, principal: ADA })).toEqual({ ok: false, reason: 'replayed' });
  });

  it('a token issued without a principal (stdio) cannot be redeemed by a signed-in user', () => {
    const tokens = new ConfirmationTokens();
    const { token } = tokens.issue(subject);
    expect(redeem(tokens, token, { ...subject, principal: ADA })).toEqual({ ok: false, reason: 'other_user' });
    expect(redeem(tokens, token, subject)).toMatchObject({ ok: true });
  });

  it('the token does not reveal the principal', () => {
    const { token } = new ConfirmationTokens().issue({ ...subject, principal: ADA });
    expect(Buffer.from(token.split('.')[2]!, 'base64url').toString()).not.toContain('ada-oid');
  });
});
