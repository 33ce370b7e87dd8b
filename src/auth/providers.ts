/** Picks the token provider for the configured sign-in method. Loaded lazily by the entry point. */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { createDeviceCodeTokenProvider } from './device-code.js';
import { createManagedIdentityTokenProvider } from './managed-identity.js';
import { createMsalTokenProvider } from './msal.js';
import type { TokenProvider } from './token-provider.js';

export function createTokenProvider(config: Config, logger: Logger): TokenProvider {
  const credential = config.credential;
  if (!credential) throw new Error('no credential in live mode (config validation should have caught this)');
  switch (credential.kind) {
    case 'secret':
    case 'certificate':
      return createMsalTokenProvider({
        tenantId: config.tenantId,
        clientId: config.clientId,
        credential,
        authorityHost: config.authorityHost,
        scope: config.scope,
        logger,
        timeoutMs: config.httpTimeoutMs,
      });
    case 'managed-identity':
      return createManagedIdentityTokenProvider({ userAssignedClientId: credential.userAssignedClientId, scope: config.scope, logger, timeoutMs: config.httpTimeoutMs });
    case 'device-code':
      // Bounded by MDE_DEVICE_CODE_TIMEOUT_SECONDS (at most Entra ID's 15-minute code lifetime), not the HTTP timeout: it waits for a person.
      return createDeviceCodeTokenProvider({
        tenantId: config.tenantId,
        clientId: config.clientId,
        authorityHost: config.authorityHost,
        scope: config.scope,
        tokenCachePath: credential.tokenCachePath,
        timeoutSeconds: credential.timeoutSeconds,
        logger,
      });
  }
}
