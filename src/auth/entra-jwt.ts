/**
 * Validation of the Entra ID access tokens that callers present in remote (HTTP) mode, with jose.
 * A token passes only when it is signed RS256 by a key of the tenant's key set (fetched over HTTPS,
 * cached, refetched at most once a minute for an unknown key id), its issuer is the tenant's v2.0 issuer,
 * `tid` is the tenant, `aud` is this API (client id or App ID URI) and it is within exp/nbf (60 s skew).
 * Then the caller must be a user with the required delegated scope, or an app holding the operator's
 * app role. Loaded only in HTTP mode.
 */
import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Caller } from './caller.js';

export { principalKey, type Caller } from './caller.js';

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
  /** jose's minimum time between key set fetches (ms). */
  cooldownMs?: number;
  /** Current time in seconds (tests). */
  currentDate?: () => Date;
}

export const CLOCK_TOLERANCE_SEC = 60;
export const JWKS_COOLDOWN_MS = 60_000;

export interface TokenVerifier {
  verify(authorizationHeader: string | undefined): Promise<Caller>;
  /** Can tokens be checked now: keys cached, or the key set reachable. */
  ready(): Promise<boolean>;
  readonly issuer: string;
  readonly jwksUrl: string;
}

export function createEntraVerifier(opts: EntraVerifierOptions): TokenVerifier {
  const tenantBase = `${opts.authorityHost.replace(/\/+$/, '')}/${encodeURIComponent(opts.tenantId)}`;
  const issuer = `${tenantBase}/v2.0`;
  const jwksUrl = `${tenantBase}/discovery/v2.0/keys`;
  if (new URL(jwksUrl).protocol !== 'https:') throw new Error(`The key set must be fetched over HTTPS (${jwksUrl}).`);
  const jwks = createRemoteJWKSet(new URL(jwksUrl), {
    cooldownDuration: opts.cooldownMs ?? JWKS_COOLDOWN_MS,
    cacheMaxAge: 24 * 3600_000,
    timeoutDuration: 5_000,
    ...(opts.fetch ? { [customFetch]: opts.fetch as never } : {}),
  });

  async function verify(header: string | undefined): Promise<Caller> {
    if (header === undefined || header === '') throw new BearerError(401, undefined, 'A bearer token is required.');
    const m = header.match(/^Bearer[ ]+([A-Za-z0-9\-_.~+/]+=*)$/i);
    if (!m) throw new BearerError(401, 'invalid_token', 'The Authorization header must be "Bearer <token>".');
    const token = m[1]!;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer,
        audience: [opts.clientId, opts.appIdUri],
        algorithms: ['RS256'],
        clockTolerance: opts.clockToleranceSec ?? CLOCK_TOLERANCE_SEC,
        requiredClaims: ['exp', 'tid', 'oid'],
        ...(opts.currentDate ? { currentDate: opts.currentDate() } : {}),
      }));
    } catch (error) {
      // The key set could not be fetched: the token is not known to be bad, the server cannot check it.
      if (keySetUnavailable(error)) {
        throw new BearerError(503, undefined, 'The sign-in keys cannot be fetched right now; retry in a moment.');
      }
      throw new BearerError(401, 'invalid_token', describeJoseError(error));
    }
    if (payload.tid !== opts.tenantId) throw new BearerError(401, 'invalid_token', 'The token was issued for another tenant.');
    const oid = String(payload.oid);
    const tid = String(payload.tid);
    const expiresAt = payload.exp!;
    const scp = typeof payload.scp === 'string' ? payload.scp.split(' ').filter(Boolean) : undefined;
    if (scp !== undefined) {
      if (!scp.includes(opts.requiredScope)) {
        throw new BearerError(403, 'insufficient_scope', `The token lacks the delegated scope ${opts.requiredScope}.`);
      }
      return {
        kind: 'user',
        oid,
        tid,
        preferredUsername: typeof payload.preferred_username === 'string' ? payload.preferred_username : undefined,
        name: typeof payload.name === 'string' ? payload.name : undefined,
        token,
        expiresAt,
      };
    }
    // No delegated scope: an application calling with its own identity (client credentials).
    const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
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
    return { kind: 'app', appId, oid, tid, token, expiresAt };
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
