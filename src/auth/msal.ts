/**
 * Client-credentials sign-in through @azure/msal-node, with a client secret or a certificate.
 * MSAL is imported on first use, not at start-up: an IDE spawns this server often, and most sessions
 * never call the write tool.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Credential } from './credential.js';
import { ToolError, StartupError } from '../errors.js';
import type { Logger } from '../log.js';
import { proxyFailure } from '../net/proxy.js';
import { cachedTokenProvider, type TokenProvider } from './token-provider.js';

export interface MsalOptions {
  tenantId: string;
  clientId: string;
  credential: Extract<Credential, { kind: 'secret' | 'certificate' }>;
  authorityHost: string;
  scope: string;
  logger: Logger;
  /** Bound on one sign-in (MSAL's own HTTP client has none). */
  timeoutMs?: number;
}

export interface CertificateCredential {
  thumbprintSha256: string;
  privateKey: string;
  x5c: string;
}

/**
 * Read a PEM file holding a private key (optionally encrypted) and its certificate, into what MSAL needs.
 * Called at start-up, so a missing or unreadable file stops the server with a clear message.
 */
export function loadCertificate(path: string, password: string | undefined): CertificateCredential {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new StartupError([
      `AZURE_CLIENT_CERTIFICATE_PATH points at ${path}, which cannot be read (${reason}).` +
        ' ' +
        'Point AZURE_CLIENT_CERTIFICATE_PATH at a PEM file that holds the private key and the certificate.',
    ]);
  }
  const keyBlock = pem.match(/-----BEGIN ((?:ENCRYPTED |RSA |EC )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/);
  const certBlocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!keyBlock || !certBlocks) {
    throw new StartupError([
      `${path} must hold both a private key and a certificate in PEM form (found ${keyBlock ? 'a key' : 'no key'} and ${certBlocks ? 'a certificate' : 'no certificate'}).` +
        ' ' +
        'Concatenate the key and the certificate into one PEM file, e.g. `cat key.pem cert.pem > app.pem`.',
    ]);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyBlock[0], format: 'pem', passphrase: password });
  } catch {
    throw new StartupError([
      `The private key in ${path} could not be read${keyBlock[1]?.startsWith('ENCRYPTED') ? ': the password is wrong or missing' : ''}.` +
        ' ' +
        'Set AZURE_CLIENT_CERTIFICATE_PASSWORD to the key\'s password, or use an unencrypted key.',
    ]);
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certBlocks[0]);
  } catch {
    throw new StartupError([`The certificate in ${path} (AZURE_CLIENT_CERTIFICATE_PATH) could not be read. Export it again as PEM.`]);
  }
  // A key and a certificate from different pairs would sign assertions Entra ID refuses at every call.
  if (!leaf.checkPrivateKey(key)) {
    throw new StartupError([
      `The private key in ${path} (AZURE_CLIENT_CERTIFICATE_PATH) does not match its certificate (thumbprint ${leaf.fingerprint256.replace(/:/g, '').slice(0, 12).toLowerCase()}…). ` +
        'Put the certificate that belongs to this key first in the file, e.g. `cat key.pem cert.pem > app.pem` from one key pair.',
    ]);
  }
  const privateKey = key.export({ format: 'pem', type: 'pkcs8' }).toString();
  return {
    thumbprintSha256: leaf.fingerprint256.replace(/:/g, '').toLowerCase(),
    privateKey,
    x5c: certBlocks.join('\n'),
  };
}

export function createMsalTokenProvider(opts: MsalOptions): TokenProvider {
  const certificate =
    opts.credential.kind === 'certificate' ? loadCertificate(opts.credential.path, opts.credential.password) : undefined;
  const method = certificate ? `certificate ${certificate.thumbprintSha256.slice(0, 12)}…` : 'client secret';
  const getApp = lazyMsal(
    ({ ConfidentialClientApplication, LogLevel }) =>
      new ConfidentialClientApplication({
        auth: {
          ...appAuth(opts),
          ...(certificate ? { clientCertificate: certificate } : { clientSecret: (opts.credential as { secret: string }).secret }),
        },
        system: msalSystemOptions(LogLevel.Warning, opts.logger),
      }),
  );

  return cachedTokenProvider(
    `client credentials (${method}) for app ${opts.clientId} in tenant ${opts.tenantId} via ${opts.authorityHost}`,
    async () => {
      let result;
      try {
        result = await (await getApp()).acquireTokenByClientCredential({ scopes: [opts.scope], skipCache: true });
      } catch (error) {
        throw toAuthenticationError(error, opts.authorityHost);
      }
      if (!result?.accessToken) {
        throw new ToolError(
          'authentication',
          'Entra ID returned no access token.',
          'Check the app registration and the scope (MDE_SCOPE), then retry.',
        );
      }
      return {
        accessToken: result.accessToken,
        expiresOnMs: result.expiresOn ? result.expiresOn.getTime() : Date.now() + 60 * 60_000,
      };
    },
    { timeoutMs: opts.timeoutMs, authorityHost: opts.authorityHost },
  );
}

/** MSAL, imported on first use (not at start-up), and the app built from it once. */
export function lazyMsal<T>(create: (msal: typeof import('@azure/msal-node')) => T): () => Promise<T> {
  let app: Promise<T> | undefined;
  return () => (app ??= import('@azure/msal-node').then(create));
}

/** MSAL's own log lines go to our logger at debug level, never with personal data. */
export function msalSystemOptions(logLevel: number, logger: Logger) {
  return {
    loggerOptions: {
      logLevel,
      piiLoggingEnabled: false,
      loggerCallback: (_level: unknown, message: string) => logger.debug(`msal: ${message}`),
    },
  };
}

/** An app registration in a tenant, as MSAL's `auth` options want it. */
export function appAuth(o: { clientId: string; tenantId: string; authorityHost: string }) {
  return { clientId: o.clientId, ...authorityOptions(o.authorityHost, o.tenantId) };
}

/**
 * MSAL's authority settings for any https sign-in host. MSAL trusts only hosts it knows, so the host goes
 * into knownAuthorities (sovereign clouds, test fakes). The endpoints follow from the authority's shape,
 * so MSAL need not fetch them: one round trip less on the first sign-in, and token endpoints without a
 * discovery document work too.
 */
export function authorityOptions(authorityHost: string, tenantId: string) {
  const authority = `${authorityHost}/${encodeURIComponent(tenantId)}`;
  return { authority, knownAuthorities: [new URL(authorityHost).host], authorityMetadata: JSON.stringify(authorityMetadata(authority)) };
}

/** The OpenID metadata MSAL would otherwise download from `{authority}/v2.0/.well-known/openid-configuration`. */
export function authorityMetadata(authorityUrl: string) {
  return {
    token_endpoint: `${authorityUrl}/oauth2/v2.0/token`,
    authorization_endpoint: `${authorityUrl}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${authorityUrl}/oauth2/v2.0/devicecode`,
    end_session_endpoint: `${authorityUrl}/oauth2/v2.0/logout`,
    issuer: `${authorityUrl}/v2.0`,
    jwks_uri: `${authorityUrl}/discovery/v2.0/keys`,
  };
}

const AADSTS_HINTS: Record<string, string> = {
  AADSTS7000215: 'The client secret is wrong: copy the secret *value* (not its id) into AZURE_CLIENT_SECRET.',
  AADSTS7000222: 'The client secret has expired: create a new one under the app registration\'s Certificates & secrets.',
  AADSTS700016: 'No application with AZURE_CLIENT_ID exists in this tenant: check AZURE_CLIENT_ID and AZURE_TENANT_ID.',
  AADSTS90002: 'The tenant was not found: check AZURE_TENANT_ID (and AZURE_AUTHORITY_HOST for sovereign clouds).',
  AADSTS900023: 'AZURE_TENANT_ID is not a valid tenant id or domain.',
  AADSTS700027: 'The certificate is not registered on the app: upload its public part under Certificates & secrets.',
  AADSTS500011: 'The Defender API (WindowsDefenderATP) is not found in this tenant: check MDE_SCOPE and that Defender for Endpoint is provisioned.',
  AADSTS7000112: 'The application is disabled in this tenant.',
};

/** Turn an MSAL failure into an authentication ToolError naming the AADSTS code and what to fix. */
export function toAuthenticationError(error: unknown, authorityHost: string): ToolError {
  const e = error as { errorCode?: string; errorMessage?: string; message?: string };
  const text = `${e.errorMessage ?? ''} ${e.message ?? ''}`;
  const aadsts = text.match(/AADSTS\d+/)?.[0];
  // The first sentence of Entra's message is informative and never holds the secret; cut the trace ids.
  const firstSentence = (e.errorMessage ?? e.message ?? '').replace(/^AADSTS\d+:\s*/, '').split(/\r?\n|(?<=\.)\s/)[0] ?? '';
  const network = /network|ECONNREFUSED|ENOTFOUND|ETIMEDOUT|socket|certificate|self[- ]signed/i.test(text) && !aadsts;
  // Token requests are safe to repeat, so the proxy's recorded reason may be used here.
  const viaProxy = network ? proxyFailure(error, authorityHost, { recordedReason: true }) : undefined;
  if (viaProxy) {
    return new ToolError(
      'authentication',
      viaProxy.neverSent
        ? `Could not reach the Entra ID token endpoint at ${authorityHost}: ${viaProxy.text}.`
        : `Could not reach the Entra ID token endpoint at ${authorityHost} (${e.errorCode ?? 'network error'}, ${viaProxy.text}).`,
      'Check HTTPS_PROXY (and the proxy\'s rules for this host), or list the host in NO_PROXY if it must be reached directly; then retry.',
    );
  }
  if (network) {
    return new ToolError(
      'authentication',
      `Could not reach the Entra ID token endpoint at ${authorityHost} (${e.errorCode ?? 'network error'}).`,
      'Check AZURE_AUTHORITY_HOST, the network path to it, and any proxy or TLS interception; then retry.',
    );
  }
  const refusal = aadsts !== undefined || /^(invalid_|unauthorized_client|access_denied)/.test(e.errorCode ?? '');
  if (!refusal) {
    return new ToolError(
      'authentication',
      `The Entra ID sign-in failed: the token endpoint at ${authorityHost} gave an answer that could not be used${e.errorCode ? ` [${e.errorCode}]` : ''}: ${firstSentence.slice(0, 200)}`,
      'Retry in a moment; if it repeats, check that AZURE_AUTHORITY_HOST is an Entra ID endpoint and that no proxy rewrites its answers.',
    );
  }
  const hint = (aadsts && AADSTS_HINTS[aadsts]) ?? 'Check AZURE_TENANT_ID, AZURE_CLIENT_ID and the credential, then retry.';
  return new ToolError(
    'authentication',
    `Entra ID refused the sign-in${aadsts ? ` (${aadsts})` : ''}${e.errorCode ? ` [${e.errorCode}]` : ''}: ${firstSentence.slice(0, 300)}`,
    hint,
    {},
    { aadsts },
  );
}

/** The simulator's sign-in: a fixed token it accepts. No credentials exist in simulator mode. */
export function simulatorTokenProvider(token: string): TokenProvider {
  return cachedTokenProvider('simulator (no credentials)', async () => ({
    accessToken: token,
    expiresOnMs: Date.now() + 60 * 60_000,
  }));
}
