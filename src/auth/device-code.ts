/**
 * Delegated sign-in with the device code flow: actions run as the analyst, so the MachineAction's
 * requestor is the person and their device-group permissions apply. The sign-in prompt never touches
 * stdout: it goes to the logger, which writes stderr and sends MCP logging notifications to the client.
 * Tokens live in MSAL's in-memory cache (refreshed silently); MDE_TOKEN_CACHE_PATH keeps them in a 0600
 * file across restarts.
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import type { ICachePlugin } from '@azure/msal-node';
import { ToolError } from '../errors.js';
import type { Logger } from '../log.js';
import { appAuth, lazyMsal, msalSystemOptions, toAuthenticationError } from './msal.js';
import { cachedTokenProvider, type TokenProvider } from './token-provider.js';

export function fileCachePlugin(path: string): ICachePlugin {
  return {
    async beforeCacheAccess(context) {
      try {
        context.tokenCache.deserialize(await readFile(path, 'utf8'));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    },
    async afterCacheAccess(context) {
      if (!context.cacheHasChanged) return;
      await writeFile(path, context.tokenCache.serialize(), { mode: 0o600 });
      await chmod(path, 0o600); // writeFile's mode applies only to a new file
    },
  };
}

export function createDeviceCodeTokenProvider(opts: {
  tenantId: string;
  clientId: string;
  authorityHost: string;
  scope: string;
  tokenCachePath: string | undefined;
  /** How long one sign-in waits for the person (MSAL stops polling then). */
  timeoutSeconds: number;
  logger: Logger;
}): TokenProvider {
  const getApp = lazyMsal(
    ({ PublicClientApplication, LogLevel }) =>
      new PublicClientApplication({
        auth: appAuth(opts),
        ...(opts.tokenCachePath ? { cache: { cachePlugin: fileCachePlugin(opts.tokenCachePath) } } : {}),
        system: msalSystemOptions(LogLevel.Warning, opts.logger),
      }),
  );

  return cachedTokenProvider(
    `delegated device code sign-in (app ${opts.clientId}, tenant ${opts.tenantId}${opts.tokenCachePath ? ', cached on disk' : ', cached in memory'})`,
    async () => {
      const pca = await getApp();
      const scopes = [opts.scope];
      // A session already signed in (in memory or in the cache file) refreshes silently.
      const [account] = await pca.getTokenCache().getAllAccounts();
      if (account) {
        try {
          const silent = await pca.acquireTokenSilent({ account, scopes });
          if (silent?.accessToken) return { accessToken: silent.accessToken, expiresOnMs: silent.expiresOn?.getTime() ?? Date.now() + 60 * 60_000 };
        } catch (error) {
          opts.logger.info(`The saved sign-in for ${account.username} could not be refreshed (${(error as { errorCode?: string }).errorCode ?? 'error'}); signing in again.`);
        }
      }
      let result;
      try {
        result = await pca.acquireTokenByDeviceCode({
          scopes,
          timeout: opts.timeoutSeconds,
          deviceCodeCallback: (response) => {
            // The human must see this: stderr and the MCP client (logging notification), never stdout.
            opts.logger.warning(`Sign-in required for Defender: ${response.message} (this sign-in waits at most ${Math.min(opts.timeoutSeconds, response.expiresIn || opts.timeoutSeconds)} s).`);
          },
        });
      } catch (error) {
        const code = (error as { errorCode?: string }).errorCode;
        if (code === 'user_timeout_reached' || code === 'device_code_expired') {
          throw new ToolError(
            'authentication',
            `Nobody completed the device code sign-in within ${opts.timeoutSeconds} s (MDE_DEVICE_CODE_TIMEOUT_SECONDS); nothing was sent to Defender.`,
            'Call again for a new code, and enter it at the address shown before it expires.',
          );
        }
        throw toAuthenticationError(error, opts.authorityHost);
      }
      if (!result?.accessToken) {
        throw new ToolError('authentication', 'The device code sign-in returned no access token.', 'Call again to restart the sign-in.');
      }
      opts.logger.info(`Signed in to Defender as ${result.account?.username ?? 'the user'}.`);
      return { accessToken: result.accessToken, expiresOnMs: result.expiresOn?.getTime() ?? Date.now() + 60 * 60_000 };
    },
  );
}
