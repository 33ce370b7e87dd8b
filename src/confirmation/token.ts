/**
 * Confirmation tokens for clients that cannot show an elicitation: HMAC-SHA256 signed with a key that
 * lives only in this process, bound to the exact action, machine and comment, valid for a few minutes,
 * and redeemable once. A token proves that this server showed this exact request first; it does not by
 * itself prove a human saw it (see the README's security model).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const TOKEN_PREFIX = 'mdeconfirm.v1';
export const DEFAULT_TOKEN_TTL_MS = 5 * 60_000;

export interface TokenSubject {
  action: string;
  machineId: string;
  comment: string;
  /** Who asked (remote mode: `user:<tid>:<oid>` or `app:…`): only they can redeem the token. */
  principal?: string;
}

interface Payload {
  a: string; // action
  m: string; // machine id
  c: string; // sha256 of the comment (the token need not carry the comment itself)
  e: number; // expiry, epoch ms
  n: string; // nonce: single use
  h?: string; // host name shown in the preview, for the audit trail
  p?: string; // sha256 of the principal the token was issued to (remote mode)
}

export type TokenRejection = 'malformed' | 'bad_signature' | 'mismatch' | 'other_user' | 'expired' | 'replayed';

export type RedeemResult =
  | { ok: true; hostName: string | undefined; confirmationId: string }
  | { ok: false; reason: TokenRejection };

export const REJECTION_TEXT: Record<TokenRejection, string> = {
  malformed: 'the confirmation token is not one this server issued (malformed)',
  bad_signature: 'the confirmation token\'s signature is invalid (forged, altered, or issued by another server process)',
  mismatch: 'the confirmation token was issued for a different machine, comment or action',
  other_user: 'the confirmation token was issued to another user; only the person who asked can redeem it',
  expired: 'the confirmation token has expired',
  replayed: 'the confirmation token has already been used',
};

const b64url = (buf: Buffer | string) => Buffer.from(buf).toString('base64url');
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('base64url');
/** A public name for one token (for the audit trail), from which the token cannot be rebuilt. */
const confirmationId = (nonce: string) => `c-${sha256(`id:${nonce}`).slice(0, 16)}`;

export class ConfirmationTokens {
  private readonly key: Buffer;
  private readonly ttlMs: number;
  private readonly now: () => number;
  /** Redeemed nonces, kept until their token would have expired anyway. */
  private readonly redeemed = new Map<string, number>();

  constructor(opts: { key?: Buffer; ttlMs?: number; now?: () => number } = {}) {
    this.key = opts.key ?? randomBytes(32);
    this.ttlMs = opts.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
    this.now = opts.now ?? Date.now;
  }

  issue(subject: TokenSubject, hostName?: string): { token: string; expiresAt: Date; confirmationId: string } {
    const payload: Payload = {
      a: subject.action,
      m: subject.machineId,
      c: sha256(subject.comment),
      e: this.now() + this.ttlMs,
      n: randomBytes(16).toString('base64url'),
      ...(hostName ? { h: hostName } : {}),
      ...(subject.principal ? { p: sha256(`principal:${subject.principal}`) } : {}),
    };
    const body = b64url(JSON.stringify(payload));
    return { token: `${TOKEN_PREFIX}.${body}.${this.sign(body)}`, expiresAt: new Date(payload.e), confirmationId: confirmationId(payload.n) };
  }

  /** Check a token against the request it must match; on success it is spent. */
  redeem(token: string, subject: TokenSubject): RedeemResult {
    this.prune();
    const parts = token.trim().split('.');
    if (parts.length !== 4 || `${parts[0]}.${parts[1]}` !== TOKEN_PREFIX) return { ok: false, reason: 'malformed' };
    const body = parts[2] ?? '';
    // Compare the exact text: base64url decoding skips stray characters, so decoded bytes could match
    // for a token that is not the one issued.
    if (!/^[A-Za-z0-9_-]+$/.test(body) || !/^[A-Za-z0-9_-]+$/.test(parts[3] ?? '')) return { ok: false, reason: 'malformed' };
    const given = Buffer.from(parts[3] ?? '', 'ascii');
    const expected = Buffer.from(this.sign(body), 'ascii');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };

    let payload: Payload;
    try {
      payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Payload;
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (payload.a !== subject.action || payload.m !== subject.machineId || payload.c !== sha256(subject.comment)) {
      return { ok: false, reason: 'mismatch' };
    }
    if (payload.p !== (subject.principal ? sha256(`principal:${subject.principal}`) : undefined)) return { ok: false, reason: 'other_user' };
    if (!(typeof payload.e === 'number' && this.now() < payload.e)) return { ok: false, reason: 'expired' };
    if (this.redeemed.has(payload.n)) return { ok: false, reason: 'replayed' };
    this.redeemed.set(payload.n, payload.e);
    return { ok: true, hostName: payload.h, confirmationId: confirmationId(payload.n) };
  }

  private sign(body: string): string {
    return createHmac('sha256', this.key).update(`${TOKEN_PREFIX}.${body}`).digest('base64url');
  }

  private prune(): void {
    const now = this.now();
    for (const [nonce, expiry] of this.redeemed) if (expiry <= now) this.redeemed.delete(nonce);
  }
}
