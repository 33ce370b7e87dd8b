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
      // No timeout: the sign-in waits for a person (MSAL ends it when the code expires).
      return createDeviceCodeTokenProvider({
        tenantId: config.tenantId,
        clientId: config.clientId,
        authorityHost: config.authorityHost,
        scope: config.scope,
        tokenCachePath: credential.tokenCachePath,
        logger,
      });
  }
}
