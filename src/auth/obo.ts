/**
 * On-Behalf-Of: in remote mode with Entra sign-in, Defender is called with a token Entra issues *for the
 * signed-in analyst*, in exchange for the analyst's own token (the assertion) plus this server's secret or
 * certificate. Defender then records the analyst as requestor and applies the analyst's roles. The
 * caller's token goes to the Entra token endpoint as the assertion and nowhere else.
 *
 * A dedicated MSAL client serves OBO only: msal-node looks up client-credential tokens with an empty
 * account id, so sharing one client with the app's own identity could hand a user's OBO token to an
 * app-only call (see remote.md). MSAL caches OBO tokens per assertion hash, but looks them up by the
 * requested scope, which a `.default` request never matches once Entra answered with the granted scopes:
 * so this module keeps its own small cache per assertion hash.
 */
import { createHash } from 'node:crypto';
import type { Credential } from './credential.js';
import { ToolError } from '../errors.js';
import type { Logger } from '../log.js';
import { authorityOptions, loadCertificate, msalSystemOptions, toAuthenticationError, type MsalOptions } from './msal.js';
import { cachedTokenProvider, type TokenProvider } from './token-provider.js';

/** The same options as the app's own sign-in: OBO uses the server's secret or certificate. */
export type OboOptions = MsalOptions;

export interface OboTokenSource {
  /** A token provider for one caller's requests, exchanging that caller's token. */
  forAssertion(assertion: string, who: string): TokenProvider;
}

const OBO_HINTS: Record<string, string> = {
  AADSTS65001: 'The analyst (or an admin) has not consented to the Defender permissions of this app: grant admin consent for Machine.RestrictExecution and Machine.Read.',
  AADSTS7000114: 'Only user tokens can be exchanged On-Behalf-Of: sign in as a user.',
  AADSTS50013: 'The caller\'s token was not accepted as an assertion: sign in again.',
  AADSTS500133: 'The caller\'s token has expired: sign in again.',
};

export function createOboTokenSource(opts: OboOptions): OboTokenSource {
  const certificate = opts.credential.kind === 'certificate' ? loadCertificate(opts.credential.path, opts.credential.password) : undefined;
  let app: Promise<import('@azure/msal-node').ConfidentialClientApplication> | undefined;
  const getApp = () =>
    (app ??= import('@azure/msal-node').then(
      ({ ConfidentialClientApplication, LogLevel }) =>
        new ConfidentialClientApplication({
          auth: {
            clientId: opts.clientId,
            ...authorityOptions(opts.authorityHost, opts.tenantId),
            ...(certificate ? { clientCertificate: certificate } : { clientSecret: (opts.credential as { secret: string }).secret }),
          },
          system: msalSystemOptions(LogLevel.Warning, opts.logger),
        }),
    ));

  /** Per-assertion providers, most recently used last; bounded so a flood of callers cannot grow it. */
  const providers = new Map<string, TokenProvider>();
  const MAX_CACHED_CALLERS = 1_000;

  return {
    forAssertion(assertion, who) {
      const key = createHash('sha256').update(assertion).digest('base64url');
      const known = providers.get(key);
      if (known) {
        providers.delete(key);
        providers.set(key, known);
        return known;
      }
      const created = createProvider(assertion, who);
      providers.set(key, created);
      if (providers.size > MAX_CACHED_CALLERS) providers.delete(providers.keys().next().value!);
      return created;
    },
  };

  function createProvider(assertion: string, who: string): TokenProvider {
    // After a 401 from Defender the next exchange must not come from MSAL's cache.
    let skipCache = false;
    const provider = cachedTokenProvider(
      `On-Behalf-Of ${who}`,
      async () => {
        let result;
        try {
          result = await (await getApp()).acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [opts.scope], skipCache });
        } catch (error) {
          const e = toAuthenticationError(error, opts.authorityHost);
          const hint = e.details.aadsts ? OBO_HINTS[e.details.aadsts] : undefined;
          throw hint ? new ToolError('authentication', e.message, hint, {}, { aadsts: e.details.aadsts }) : e;
        } finally {
          skipCache = false;
        }
        if (!result?.accessToken) {
          throw new ToolError('authentication', 'Entra ID returned no On-Behalf-Of token.', 'Check the app registration\'s delegated Defender permissions, then retry.');
        }
        return { accessToken: result.accessToken, expiresOnMs: result.expiresOn ? result.expiresOn.getTime() : Date.now() + 60 * 60_000 };
      },
      { timeoutMs: opts.timeoutMs, authorityHost: opts.authorityHost },
    );
    return {
      description: provider.description,
      getToken: () => provider.getToken(),
      invalidate() {
        skipCache = true;
        provider.invalidate();
      },
    };
  }
}
