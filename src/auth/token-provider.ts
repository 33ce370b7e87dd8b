/**
 * The seam between the Defender client and whatever signs in. The client asks for a bearer token per
 * request; providers cache it, so one token serves every call until it nears expiry.
 */
export interface TokenProvider {
  /** A bearer token for the Defender API. */
  getToken(): Promise<string>;
  /** Forget the cached token (after a 401), so the next call signs in again. */
  invalidate(): void;
  /** Which sign-in method is in use, for the start-up line. Never contains a secret. */
  readonly description: string;
}

export interface AcquiredToken {
  accessToken: string;
  /** When the token expires, in epoch milliseconds. */
  expiresOnMs: number;
}

/** Renew this long before expiry, so a token never expires in flight (MSAL uses the same margin). */
export const RENEW_BEFORE_EXPIRY_MS = 5 * 60_000;

/**
 * Wraps an acquire function with an in-memory cache and single-flight: concurrent first calls share one
 * sign-in, and later calls reuse the token until five minutes before it expires.
 */
export function cachedTokenProvider(
  description: string,
  acquire: () => Promise<AcquiredToken>,
  now: () => number = Date.now,
): TokenProvider {
  let cached: AcquiredToken | undefined;
  let inFlight: Promise<AcquiredToken> | undefined;
  return {
    description,
    async getToken() {
      if (cached && cached.expiresOnMs - now() > RENEW_BEFORE_EXPIRY_MS) return cached.accessToken;
      inFlight ??= acquire().finally(() => {
        inFlight = undefined;
      });
      cached = await inFlight;
      return cached.accessToken;
    },
    invalidate() {
      cached = undefined;
    },
  };
}
