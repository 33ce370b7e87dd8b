import { ToolError } from '../errors.js';

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

/** A sign-in that hangs must not hang every tool call behind it. */
function withTimeout<T>(promise: Promise<T>, timeoutMs: number | undefined, host = 'Entra ID'): Promise<T> {
  if (!timeoutMs) return promise;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ToolError(
            'authentication',
            `The token endpoint at ${host} did not answer within ${timeoutMs} ms; nothing was sent to Defender.`,
            'Retry in a moment; check AZURE_AUTHORITY_HOST and the network path to it, or raise MDE_HTTP_TIMEOUT_MS.',
          ),
        ),
      timeoutMs,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
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
  opts: { now?: () => number; timeoutMs?: number; authorityHost?: string } = {},
): TokenProvider {
  const now = opts.now ?? Date.now;
  let cached: AcquiredToken | undefined;
  let inFlight: Promise<AcquiredToken> | undefined;
  return {
    description,
    async getToken() {
      if (cached && cached.expiresOnMs - now() > RENEW_BEFORE_EXPIRY_MS) return cached.accessToken;
      inFlight ??= withTimeout(acquire(), opts.timeoutMs, opts.authorityHost).finally(() => {
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
