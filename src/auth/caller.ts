/**
 * Who is calling in remote mode, and a stable key for "the same principal". No dependencies: the stdio
 * bundle uses these types without loading any of the HTTP or JOSE code.
 */

/** Who is calling, as far as this server is concerned. Never holds more than the audit needs. */
export type Caller =
  | {
      kind: 'user';
      oid: string;
      tid: string;
      preferredUsername: string | undefined;
      name: string | undefined;
      /** The caller's own token: the OBO assertion, never sent anywhere else. */
      token: string;
      /** Seconds since the epoch. */
      expiresAt: number;
    }
  | {
      kind: 'app';
      /** The calling app's client id (`azp`/`appid`). */
      appId: string;
      /** The calling app's service principal object id. */
      oid: string;
      tid: string;
      token: string;
      expiresAt: number;
    }
  | { kind: 'anonymous' };

/** A stable key for "the same principal" (session ownership, per-user caps, confirmation tokens). */
export function principalKey(caller: Caller): string {
  if (caller.kind === 'anonymous') return 'anonymous';
  return `${caller.kind}:${caller.tid}:${caller.oid}`;
}

/**
 * A value a caller chose (a name claim, the client's declared name) as logs and the audit trail may show
 * it: no control or format characters (a line break would forge a log line, a bidi override would make
 * it read otherwise), at most 256 characters.
 */
export function displayValue(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const clean = [...value.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '').trim()].slice(0, 256).join('').trim();
  return clean === '' ? undefined : clean;
}
