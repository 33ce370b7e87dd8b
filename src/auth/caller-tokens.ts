/**
 * Which identity a Defender call uses in remote mode, decided per caller:
 *  - a signed-in user: a token obtained On-Behalf-Of that user (Defender records the analyst);
 *  - an app allowed by MDE_APP_CALLER_ROLE: the server's own app identity;
 *  - nobody signed in (`MDE_HTTP_AUTH=none`, loopback only): the server's own identity.
 * With Entra sign-in, a call without a caller fails closed instead of falling back to the app identity.
 */
import { ToolError } from '../errors.js';
import { currentCall } from '../request-scope.js';
import type { Caller } from './caller.js';
import type { OboTokenSource } from './obo.js';
import type { TokenProvider } from './token-provider.js';

export function createCallerTokens(opts: { app: TokenProvider; obo: OboTokenSource | undefined }) {
  return (caller: Caller): TokenProvider => {
    switch (caller.kind) {
      case 'user':
        if (!opts.obo) throw new Error('On-Behalf-Of is not configured');
        return opts.obo.forAssertion(caller.token, caller.preferredUsername ?? caller.oid);
      case 'app':
      case 'anonymous':
        return opts.app;
    }
  };
}

/**
 * The Defender client's provider in remote mode. Tools and the Defender client are shared by every
 * session, but each request carries its own (possibly refreshed) caller token, so the provider is looked
 * up per call, from the call in progress. Outside a call, or for a call without a caller, it refuses.
 */
export function perCallTokenProvider(description: string): TokenProvider {
  const active = (): TokenProvider => {
    const tokens = currentCall()?.tokens;
    if (!tokens) {
      throw new ToolError(
        'authentication',
        'No signed-in caller is attached to this Defender request, so it was not sent.',
        'This is a server bug: report it. Nothing was sent to Defender.',
      );
    }
    return tokens;
  };
  return {
    description,
    getToken: () => active().getToken(),
    invalidate: () => currentCall()?.tokens?.invalidate(),
  };
}
