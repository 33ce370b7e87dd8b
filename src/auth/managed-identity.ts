/**
 * Managed identity sign-in (system- or user-assigned) through msal-node, for servers running in Azure.
 * MSAL picks the identity source from the environment (App Service / Functions: IDENTITY_ENDPOINT and
 * IDENTITY_HEADER; Azure Arc; Cloud Shell; else the VM metadata service), so the client config must pass
 * those variables through.
 */
import { ToolError } from '../errors.js';
import type { Logger } from '../log.js';
import { lazyMsal, msalSystemOptions, toAuthenticationError } from './msal.js';
import { cachedTokenProvider, type TokenProvider } from './token-provider.js';

export function createManagedIdentityTokenProvider(opts: {
  userAssignedClientId: string | undefined;
  scope: string;
  logger: Logger;
  timeoutMs?: number;
}): TokenProvider {
  // Managed identity takes a resource, not a scope: the audience without "/.default".
  const resource = opts.scope.replace(/\/\.default$/, '');
  const which = opts.userAssignedClientId ? `user-assigned ${opts.userAssignedClientId}` : 'system-assigned';
  const getApp = lazyMsal(
    ({ ManagedIdentityApplication, LogLevel }) =>
      new ManagedIdentityApplication({
        ...(opts.userAssignedClientId ? { managedIdentityIdParams: { userAssignedClientId: opts.userAssignedClientId } } : {}),
        system: msalSystemOptions(LogLevel.Warning, opts.logger),
      }),
  );
  return cachedTokenProvider(
    `managed identity (${which})`,
    async () => {
      let result;
      try {
        result = await (await getApp()).acquireToken({ resource });
      } catch (error) {
        const e = toAuthenticationError(error, 'the managed identity endpoint');
        throw new ToolError(
          'authentication',
          `Managed identity sign-in failed: ${e.message}`,
          'Check that this host has a managed identity (and, for a user-assigned one, that AZURE_CLIENT_ID is its client id), that the identity has the WindowsDefenderATP application permission, and that the client config passes IDENTITY_ENDPOINT and IDENTITY_HEADER through.',
          {},
          e.details,
        );
      }
      return { accessToken: result.accessToken, expiresOnMs: result.expiresOn ? result.expiresOn.getTime() : Date.now() + 60 * 60_000 };
    },
    { timeoutMs: opts.timeoutMs, authorityHost: 'the managed identity endpoint' },
  );
}
