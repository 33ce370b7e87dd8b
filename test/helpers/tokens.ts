/**
 * Verify-and-spend in one synchronous step, for tests of the token format: what confirm.ts does with the
 * server's ledger (verify, then spend once), without the ledger's asynchronous interface.
 */
import type { ConfirmationTokens, TokenSubject } from '../../src/confirmation/token.js';

const spentBy = new WeakMap<ConfirmationTokens, Set<string>>();

export function redeem(tokens: ConfirmationTokens, token: string, subject: TokenSubject) {
  const v = tokens.verify(token, subject);
  if (!v.ok) return v;
  let spent = spentBy.get(tokens);
  if (!spent) spentBy.set(tokens, (spent = new Set()));
  if (spent.has(v.nonce)) return { ok: false as const, reason: 'replayed' as const };
  spent.add(v.nonce);
  return { ok: true as const, hostName: v.hostName, confirmationId: v.confirmationId };
}
