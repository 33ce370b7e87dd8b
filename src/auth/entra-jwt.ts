/**
 * Validation of the Entra ID access tokens that callers present in remote (HTTP) mode, with jose.
 * A token passes only when it is signed RS256 by a key of the tenant's key set (fetched over HTTPS,
 * cached, refetched at most once a minute for an unknown key id), its issuer is the tenant's v2.0 issuer,
 * `tid` is the tenant, `aud` is this API (client id or App ID URI) and it is within exp/nbf (60 s skew).
 * Then the caller must be a user with the required delegated scope, or an app holding the operator's
 * app role. Loaded only in HTTP mode.
 */
import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { displayValue, type Caller } from './caller.js';
import { GUID } from '../net/hosts.js';

export { principalKey, type Caller } from './caller.js';

type SignedInCaller = Exclude<Caller, { kind: 'anonymous' }>;

/** A refusal at the HTTP edge: 401 (no or bad token), 403 (good token, not allowed), 503 (keys unreachable). */
export class BearerError extends Error {
  constructor(
    readonly status: 401 | 403 | 503,
    /** RFC 6750 error code; undefined when no token was given at all. */
    readonly code: 'invalid_token' | 'insufficient_scope' | 'invalid_request' | undefined,
    /** Safe to show the client: never contains the token. */
    readonly description: string,
  ) {
    super(description);
    this.name = 'BearerError';
  }
}

export interface EntraVerifierOptions {
  authorityHost: string;
  tenantId: string;
  clientId: string;
  appIdUri: string;
  /** Short name, as Entra writes it in `scp` (e.g. `user_impersonation`). */
  requiredScope: string;
  /** App role an app-only caller must carry; undefined: app-only callers are refused. */
  appCallerRole: string | undefined;
  /** Injected in tests; defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Seconds; the clock skew allowed on exp/nbf. */
  clockToleranceSec?: number;
  /** After a failed key set fetch, how long before the next attempt (ms). */
  retryAfterFailureMs?: number;
  /** jose's minimum time between key set fetches (ms). */
  cooldownMs?: number;
  /** How long a token that passed is taken as checked (ms); 0 checks every request. */
  reuseMs?: number;
  /** How many such tokens are remembered at most; the oldest goes first. */
  maxReused?: number;
}

export const CLOCK_TOLERANCE_SEC = 60;
/**
 * A token that passed is not checked again for this long (nor past its expiry): a client sends the same
 * token with every request, and the signature check is most of what sign-in costs a call. Bounded so that
 * a key Entra withdraws stops being honoured soon even for a token that carries a far-off `exp`.
 */
export const VERIFIED_TOKEN_REUSE_MS = 5 * 60_000;
/** At most this many verified tokens are remembered (a few hundred analysts hold one or two each). */
export const MAX_VERIFIED_TOKENS = 1_000;
export const JWKS_COOLDOWN_MS = 60_000;
/** Matches the Retry-After of the 503 a caller gets meanwhile. */
export const KEY_SET_RETRY_AFTER_FAILURE_MS = 10_000;

export interface TokenVerifier {
  verify(authorizationHeader: string | undefined): Promise<Caller>;
  /** Can tokens be checked now: keys cached, or the key set reachable. */
  ready(): Promise<boolean>;
  readonly issuer: string;
  readonly jwksUrl: string;
}

export function createEntraVerifier(opts: EntraVerifierOptions): TokenVerifier {
  // Entra writes the tenant GUID lower case in `iss` and `tid`.
  const tenantId = opts.tenantId.toLowerCase();
  const tenantBase = `${opts.authorityHost.replace(/\/+$/, '')}/${encodeURIComponent(tenantId)}`;
  const issuer = `${tenantBase}/v2.0`;
  const jwksUrl = `${tenantBase}/discovery/v2.0/keys`;
  if (new URL(jwksUrl).protocol !== 'https:') throw new Error(`The key set must be fetched over HTTPS (${jwksUrl}).`);
  // jose's cool-down starts only at a successful fetch: while the key set fails, every token with a
  // made-up key id (no valid signature needed) would be one more request to Entra. After a failure, the
  // next attempt waits a while; callers whose key is cached are served meanwhile.
  const baseFetch = opts.fetch ?? fetch;
  let failedAt = -Infinity;
  const keySetFetch = async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]): Promise<Response> => {
    if (Date.now() - failedAt < (opts.retryAfterFailureMs ?? KEY_SET_RETRY_AFTER_FAILURE_MS)) throw new Error('The key set could not be fetched moments ago; not retried yet.');
    try {
      const response = await baseFetch(input, init);
      if (response.status !== 200) failedAt = Date.now();
      return response;
    } catch (error) {
      failedAt = Date.now();
      throw error;
    }
  };
  const jwks = createRemoteJWKSet(new URL(jwksUrl), {
    cooldownDuration: opts.cooldownMs ?? JWKS_COOLDOWN_MS,
    cacheMaxAge: 24 * 3600_000,
    timeoutDuration: 5_000,
    [customFetch]: keySetFetch as never,
  });

  // Tokens that passed, by their exact text (another token, even one character apart, is checked in
  // full), with the time their pass lapses. Only passes are kept: a refused token is checked every time.
  const reuseMs = opts.reuseMs ?? VERIFIED_TOKEN_REUSE_MS;
  const tolerance = opts.clockToleranceSec ?? CLOCK_TOLERANCE_SEC;
  const passed = new Map<string, { caller: SignedInCaller; lapsesAtMs: number }>();

  async function verify(header: string | undefined): Promise<Caller> {
    if (header === undefined || header === '') throw new BearerError(401, undefined, 'A bearer token is required.');
    const m = header.match(/^Bearer[ ]+([A-Za-z0-9\-_.~+/]+=*)$/i);
    if (!m) throw new BearerError(401, 'invalid_token', 'The Authorization header must be "Bearer <token>".');
    const token = m[1]!;
    const known = passed.get(token);
    if (known) {
      if (Date.now() < known.lapsesAtMs) return known.caller;
      passed.delete(token); // checked again in full below: expired, or due for a fresh signature check
    }
    const caller = await check(token);
    if (reuseMs > 0) {
      if (passed.size >= (opts.maxReused ?? MAX_VERIFIED_TOKENS)) passed.delete(passed.keys().next().value!); // the oldest
      // The same rule as jose's: valid while exp > now - tolerance.
      passed.set(token, { caller, lapsesAtMs: Math.min(Date.now() + reuseMs, (caller.expiresAt + tolerance) * 1000) });
    }
    return caller;
  }

  async function check(token: string): Promise<SignedInCaller> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer,
        audience: [opts.clientId, opts.appIdUri],
        algorithms: ['RS256'],
        clockTolerance: tolerance,
        requiredClaims: ['exp', 'tid', 'oid'],
      }));
    } catch (error) {
      // The key set could not be fetched: the token is not known to be bad, the server cannot check it.
      if (keySetUnavailable(error)) {
        throw new BearerError(503, undefined, 'The sign-in keys cannot be fetched right now; retry in a moment.');
      }
      throw new BearerError(401, 'invalid_token', describeJoseError(error));
    }
    if (payload.tid !== tenantId) throw new BearerError(401, 'invalid_token', 'The token was issued for another tenant.');
    // The object id keys sessions, caps and confirmation tokens: it must be one, or principals collapse.
    if (typeof payload.oid !== 'string' || !GUID.test(payload.oid)) throw new BearerError(401, 'invalid_token', "The token's oid claim is missing or invalid.");
    const oid = payload.oid.toLowerCase();
    const tid = String(payload.tid);
    const expiresAt = payload.exp!;
    const scp = typeof payload.scp === 'string' ? payload.scp.split(' ') : undefined;
    const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
    // Without scp, only an app-only access token may pass: idtyp says so, or (the claim is optional)
    // sub equals oid. Anything else (an ID token whose audience is this app, a user carrying a
    // user-assignable app role) would otherwise be served under the app's own identity.
    const appOnly = payload.idtyp === 'app' || (payload.idtyp === undefined && payload.sub === payload.oid);
    if (scp === undefined && !appOnly) {
      throw new BearerError(401, 'invalid_token', 'The token is neither a delegated user token (scp) nor an app-only access token: send an access token for this API.');
    }
    if (scp !== undefined) {
      if (!scp.includes(opts.requiredScope)) {
        throw new BearerError(403, 'insufficient_scope', `The token lacks the delegated scope ${opts.requiredScope}.`);
      }
      // Frozen: the same caller answers every request that carries this token.
      return Object.freeze({
        kind: 'user',
        oid,
        tid,
        preferredUsername: displayValue(payload.preferred_username),
        name: displayValue(payload.name),
        roles: Object.freeze(roles),
        token,
        expiresAt,
      });
    }
    // No delegated scope: an application calling with its own identity (client credentials).
    if (!opts.appCallerRole || !roles.includes(opts.appCallerRole)) {
      throw new BearerError(
        403,
        'insufficient_scope',
        opts.appCallerRole
          ? `App-only tokens must carry the app role ${opts.appCallerRole}.`
          : 'App-only tokens are not accepted: sign in as a user (the operator can allow apps with MDE_APP_CALLER_ROLE).',
      );
    }
    const appId = typeof payload.azp === 'string' ? payload.azp : typeof payload.appid === 'string' ? payload.appid : 'unknown-app';
    return Object.freeze({ kind: 'app', appId, oid, tid, token, expiresAt });
  }

  return {
    issuer,
    jwksUrl,
    verify,
    async ready() {
      if (jwks.fresh) return true;
      if (jwks.coolingDown || jwks.reloading) return jwks.fresh;
      try {
        await jwks.reload();
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** jose reports a failed key set fetch as a timeout, an invalid set, a bare JOSEError (non-200) or a fetch error. */
function keySetUnavailable(error: unknown): boolean {
  if (!(error instanceof joseErrors.JOSEError)) return true;
  return error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid || error.constructor === joseErrors.JOSEError;
}

/** What went wrong, in words that help the caller and reveal nothing about the keys or the token. */
function describeJoseError(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'The token has expired.';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'iss':
        return 'The token was issued by another authority or tenant.';
      case 'aud':
        return 'The token was issued for another resource (audience).';
      case 'nbf':
        return 'The token is not valid yet.';
      default:
        return `The token's ${error.claim} claim is missing or invalid.`;
    }
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'The token must be signed with RS256.';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'The token was signed with a key this tenant does not publish.';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'The token signature is invalid.';
  return 'The token is malformed or invalid.';
}
