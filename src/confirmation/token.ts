/**
 * Confirmation tokens for clients that cannot show an elicitation: HMAC-SHA256 signed with a key that
 * lives only in this process, or with MDE_CONFIRMATION_KEY shared by every replica (the key's id travels
 * in the token, so a token from an earlier run or another key is recognised), bound to the exact action,
 * machine and comment, valid for a few minutes, and redeemable once (the ledger: memory, or Redis). A
 * token proves that this server showed this exact request first; it does not by itself prove a human saw
 * it (see docs/security-model.md).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const TOKEN_PREFIX = 'mdeconfirm.v1';
export const DEFAULT_TOKEN_TTL_MS = 5 * 60_000;

export interface TokenSubject {
  action: string;
  /** Undefined while it is not known yet (cancel learns it from the action): checked again once it is. */
  machineId: string | undefined;
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
  k?: string; // id of the signing key: tells a token from an earlier run of the server from a forged one
  p?: string; // sha256 of the principal the token was issued to (remote mode)
}

export type TokenRejection = 'malformed' | 'bad_signature' | 'earlier_run' | 'unknown_key' | 'mismatch' | 'other_user' | 'expired' | 'replayed';

/** A token whose signature, binding and expiry are good; not yet spent. */
export interface VerifiedToken {
  /** Single-use id for the ledger (the nonce); never shown. */
  nonce: string;
  expiresAtMs: number;
  hostName: string | undefined;
  confirmationId: string;
}

export type VerifyResult = ({ ok: true } & VerifiedToken) | { ok: false; reason: TokenRejection };

/**
 * Where spent tokens are remembered until they expire. In memory for one process; a shared store (Redis
 * SET NX PX) makes a token single-use across replicas.
 */
export interface TokenLedger {
  isSpent(nonce: string): Promise<boolean>;
  /** Mark spent; false when it already was (a concurrent redeem won). */
  spend(nonce: string, expiresAtMs: number): Promise<boolean>;
}

export class MemoryTokenLedger implements TokenLedger {
  private readonly spent = new Map<string, number>();
  constructor(private readonly now: () => number = Date.now) {}

  async isSpent(nonce: string): Promise<boolean> {
    return this.spentNow(nonce);
  }
  async spend(nonce: string, expiresAtMs: number): Promise<boolean> {
    // Checked and marked with no await between: two concurrent redeems cannot both see it unspent.
    if (this.spentNow(nonce)) return false;
    this.spent.set(nonce, expiresAtMs);
    return true;
  }
  private spentNow(nonce: string): boolean {
    const now = this.now();
    for (const [n, expiry] of this.spent) if (expiry <= now) this.spent.delete(n);
    return this.spent.has(nonce);
  }
}

export const REJECTION_TEXT: Record<TokenRejection, string> = {
  malformed: 'the confirmation token is not one this server issued (malformed)',
  bad_signature: 'the confirmation token\'s signature is invalid (forged or altered)',
  earlier_run: 'the confirmation token was signed by an earlier run of this server (it was restarted since), so its signature is invalid here',
  unknown_key: 'the confirmation token was signed with a key this server does not hold (a replica with another MDE_CONFIRMATION_KEY, or a key rotated out)',
  mismatch: 'the confirmation token was issued for a different machine, comment or action',
  other_user: 'the confirmation token was issued to another user; only the person who asked can redeem it',
  expired: 'the confirmation token has expired',
  replayed: 'the confirmation token has already been used',
};

const b64url = (buf: Buffer | string) => Buffer.from(buf).toString('base64url');
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('base64url');
const principalHash = (principal: string) => sha256(`principal:${principal}`);
/** A public name for one token (for the audit trail), from which the token cannot be rebuilt. */
const confirmationId = (nonce: string) => `c-${sha256(`id:${nonce}`).slice(0, 16)}`;

const keyIdOf = (key: Buffer) => createHash('sha256').update('kid:').update(key).digest('base64url').slice(0, 8);

export class ConfirmationTokens {
  private readonly key: Buffer;
  /** Names the key in every token (not secret): a token signed with another key is from another run. */
  readonly keyId: string;
  /** Keys that verify: the signing key, and previous keys during a rotation, by id. */
  private readonly verifying: Map<string, Buffer>;
  /** A configured key (MDE_CONFIRMATION_KEY) outlives the process: another key is not an earlier run. */
  private readonly configured: boolean;
  private readonly ttlMs: number;
  private readonly now: () => number;
  /** Spent tokens; the server's default ledger too. */
  readonly ledger: MemoryTokenLedger;

  /**
   * `key`: MDE_CONFIRMATION_KEY, so every replica signs and checks alike (a random key per process when
   * unset). `previousKeys`: MDE_CONFIRMATION_KEY_PREVIOUS: still accepted, never used to sign.
   */
  constructor(opts: { key?: Buffer; previousKeys?: Buffer[]; ttlMs?: number; now?: () => number } = {}) {
    this.key = opts.key ?? randomBytes(32);
    this.keyId = keyIdOf(this.key);
    this.configured = opts.key !== undefined;
    this.verifying = new Map([...(opts.previousKeys ?? []).map((k) => [keyIdOf(k), k] as const), [this.keyId, this.key]]);
    this.ttlMs = opts.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
    this.now = opts.now ?? Date.now;
    this.ledger = new MemoryTokenLedger(this.now);
  }

  issue(subject: TokenSubject & { machineId: string }, hostName?: string): { token: string; expiresAt: Date; confirmationId: string } {
    const payload: Payload = {
      a: subject.action,
      m: subject.machineId,
      c: sha256(subject.comment),
      e: this.now() + this.ttlMs,
      n: randomBytes(16).toString('base64url'),
      ...(hostName ? { h: hostName } : {}),
      k: this.keyId,
      ...(subject.principal ? { p: principalHash(subject.principal) } : {}),
    };
    const body = b64url(JSON.stringify(payload));
    return { token: `${TOKEN_PREFIX}.${body}.${this.sign(body)}`, expiresAt: new Date(payload.e), confirmationId: confirmationId(payload.n) };
  }

  /** Check a token against the request it must match, without spending it. Pure apart from the clock. */
  verify(token: string, subject: TokenSubject): VerifyResult {
    const parts = token.trim().split('.');
    if (parts.length !== 4 || `${parts[0]}.${parts[1]}` !== TOKEN_PREFIX) return { ok: false, reason: 'malformed' };
    const body = parts[2] ?? '';
    // Compare the exact text: base64url decoding skips stray characters, so decoded bytes could match
    // for a token that is not the one issued.
    if (!/^[A-Za-z0-9_-]+$/.test(body) || !/^[A-Za-z0-9_-]+$/.test(parts[3] ?? '')) return { ok: false, reason: 'malformed' };
    let payload: Payload | undefined;
    try {
      payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Payload;
    } catch {
      payload = undefined;
    }
    const given = Buffer.from(parts[3] ?? '', 'ascii');
    // The key id is unauthenticated here: it only picks which of our keys to check with, and the words of
    // a refusal; only a valid signature lets a token in.
    const key = (typeof payload?.k === 'string' && this.verifying.get(payload.k)) || this.key;
    const expected = Buffer.from(this.sign(body, key), 'ascii');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      const otherKey = typeof payload?.k === 'string' && !this.verifying.has(payload.k);
      return { ok: false, reason: otherKey ? (this.configured ? 'unknown_key' : 'earlier_run') : 'bad_signature' };
    }
    if (!payload) return { ok: false, reason: 'malformed' };
    // Whose it is first: another user's token is named as such even when what it was for differs too
    // (an approval's comment names its approver).
    if (payload.p !== (subject.principal ? principalHash(subject.principal) : undefined)) return { ok: false, reason: 'other_user' };
    if (payload.a !== subject.action || (subject.machineId !== undefined && payload.m !== subject.machineId) || payload.c !== sha256(subject.comment)) {
      return { ok: false, reason: 'mismatch' };
    }
    if (!(typeof payload.e === 'number' && this.now() < payload.e)) return { ok: false, reason: 'expired' };
    return { ok: true, nonce: payload.n, expiresAtMs: payload.e, hostName: payload.h, confirmationId: confirmationId(payload.n) };
  }

  private sign(body: string, key: Buffer = this.key): string {
    return createHmac('sha256', key).update(`${TOKEN_PREFIX}.${body}`).digest('base64url');
  }
}
