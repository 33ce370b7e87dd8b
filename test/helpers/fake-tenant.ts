/**
 * Test-only: the product's Defender simulator, extended with what only tests need. It records every
 * request, injects faults (status codes, malformed bodies, resets, hangs, delays, "processed but never
 * answered"), and plays Entra ID: the token endpoint over HTTPS (client secret, certificate assertions
 * checked against the registered certificate, device code with refresh tokens, discovery) and the App
 * Service managed identity endpoint. None of it ships in dist/.
 */
import { constants, createPublicKey, randomBytes, randomUUID, verify as verifySignature, X509Certificate } from 'node:crypto';
import type { ServerResponse, IncomingMessage } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { DefenderSimulator, ok, readRequest, reply, type Answer, type SimAction, type SimulatorOptions as ProductOptions } from '../../src/simulator/simulator.js';

export type { SimAction };

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string;
  /** Monotonic order across every listener of this simulator. */
  seq: number;
}

export type Fault =
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  | { kind: 'hang' }
  | { kind: 'reset' }
  | { kind: 'delay'; ms: number }
  /** Do the work (state changes), then never answer: a write whose fate the client cannot know. */
  | { kind: 'process_then_hang' }
  | { kind: 'process_then_reset' };

interface FaultRule {
  method?: string;
  path: RegExp;
  fault: Fault;
  remaining: number;
}

export interface SimulatorOptions extends ProductOptions {
  /** Token endpoint: the accepted client secret and/or certificate (PEM), and the token lifetime. */
  clientSecret?: string;
  clientCertificatePem?: string;
  tokenLifetimeSeconds?: number;
  /** The secret a managed-identity request must carry in X-IDENTITY-HEADER (App Service protocol). */
  identityHeader?: string;
}

/** The person a delegated (device code) sign-in stands for. */
export const SIM_ANALYST = 'analyst@contoso.com';

export class FakeTenant extends DefenderSimulator {
  readonly requests: RecordedRequest[] = [];
  /** Called with each request as it arrives, before it is answered (tests use it to observe ordering). */
  onRequest: ((request: RecordedRequest) => void) | undefined;
  private readonly faults: FaultRule[] = [];
  private readonly hanging = new Set<ServerResponse>();
  private readonly refreshTokens = new Map<string, { clientId: string; tenant: string }>();
  private readonly deviceCodes = new Map<string, { userCode: string; approved: boolean; clientId: string; tenant: string; expiresAt: number }>();
  private seq = 0;

  constructor(protected override readonly opts: SimulatorOptions = {}) {
    super(opts);
  }

  /** Answer the next `times` requests matching method and path with a fault. */
  injectFault(match: { method?: string; path: RegExp | string }, fault: Fault, times = 1): void {
    const path = typeof match.path === 'string' ? new RegExp(escapeRegExp(match.path)) : match.path;
    this.faults.push({ method: match.method, path, fault, remaining: times });
  }

  /** Accept an access token issued by another fake (remote mode's Entra ID), standing for `requestor`. */
  acceptToken(token: string, grant: { requestor: string; expiresAt: number; roles?: string[] }): void {
    this.issuedTokens.set(token, { expiresAt: grant.expiresAt, roles: grant.roles ?? [], requestor: grant.requestor });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Requests to the Defender API (not the token endpoint), optionally of one method and path. */
  apiRequests(method?: string, pathPart?: string): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.path.startsWith('/api/') && (!method || r.method === method) && (!pathPart || r.path.includes(pathPart)),
    );
  }

  tokenRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.path.endsWith('/oauth2/v2.0/token') || r.path.endsWith('/msi/token'));
  }

  /** Whether the device is restricted now, as the action history says. */
  isRestricted(machineId: string): boolean | undefined {
    const m = this.machines.get(machineId);
    if (!m) return undefined;
    // Restriction state follows the newest succeeded restrict/unrestrict action.
    const last = this.machineActions()
      .filter((a) => a.machineId === machineId && a.status === 'Succeeded' && /CodeExecution$/.test(a.type))
      .sort((a, b) => b.creationDateTimeUtc.localeCompare(a.creationDateTimeUtc))[0];
    return last ? last.type === 'RestrictCodeExecution' : m.restrictedState;
  }

  /** Plain http, or https with the test CA's certificate (the Entra ID fakes). */
  override async listen(opts: { tls?: { key: string | Buffer; cert: string | Buffer }; port?: number } = {}): Promise<string> {
    if (!opts.tls) return super.listen(opts);
    return this.listenOn(createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, (req, res) => void this.serve(req, res)), 'https', opts.port);
  }

  override async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    await super.close();
  }

  protected override async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { method, url, headers, body } = await readRequest(req);
    const recorded = { method, path: url.pathname, query: Object.fromEntries(url.searchParams), headers, body, seq: this.seq++ };
    this.requests.push(recorded);
    this.onRequest?.(recorded);

    const rule = this.faults.find((f) => f.remaining > 0 && (!f.method || f.method === method) && f.path.test(url.pathname));
    if (rule) {
      rule.remaining--;
      const fault = rule.fault;
      if (fault.kind === 'status') {
        res.writeHead(fault.status, { 'Content-Type': 'application/json', ...fault.headers });
        res.end(fault.body ?? '');
        return;
      }
      if (fault.kind === 'hang') return void this.hanging.add(res);
      if (fault.kind === 'reset') return void req.socket.destroy();
      if (fault.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
      if (fault.kind === 'process_then_hang' || fault.kind === 'process_then_reset') {
        this.route(method, url, headers, body); // the work is done; the answer is lost
        if (fault.kind === 'process_then_reset') return void req.socket.destroy();
        return void this.hanging.add(res);
      }
    }
    reply(res, this.route(method, url, headers, body));
  }

  protected override route(method: string, url: URL, headers: Record<string, string>, body: string): Answer {
    const path = url.pathname;
    const tokenPath = path.match(/^\/([^/]+)\/oauth2\/v2\.0\/token$/);
    if (tokenPath && method === 'POST') return this.issueToken(tokenPath[1]!, url, body);
    const deviceCode = path.match(/^\/([^/]+)\/oauth2\/v2\.0\/devicecode$/);
    if (deviceCode && method === 'POST') return this.startDeviceCode(deviceCode[1]!, body);
    if (path.endsWith('/msi/token') && method === 'GET') return this.managedIdentityToken(url, headers);
    const discovery = path.match(/^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/);
    if (discovery && method === 'GET') return this.openIdConfiguration(discovery[1]!, headers, url);
    return super.route(method, url, headers, body);
  }

  // ---- delegated sign-in (device code) and managed identity -------------------------------------------

  /** The person signs in on another device: approve the newest (or the given) pending device code. */
  approveDeviceCode(userCode?: string): boolean {
    const entry = [...this.deviceCodes.values()].reverse().find((d) => !d.approved && (!userCode || d.userCode === userCode));
    if (!entry) return false;
    entry.approved = true;
    return true;
  }

  protected startDeviceCode(tenant: string, body: string): Answer {
    const form = new URLSearchParams(body);
    const deviceCode = randomBytes(24).toString('base64url');
    const userCode = randomBytes(4).toString('hex').toUpperCase();
    this.deviceCodes.set(deviceCode, { userCode, approved: false, clientId: form.get('client_id') ?? '', tenant, expiresAt: this.now() + 900_000 });
    return ok(200, {
      user_code: userCode,
      device_code: deviceCode,
      verification_uri: 'https://microsoft.com/devicelogin',
      expires_in: 900,
      interval: 1,
      message: `To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code ${userCode} to authenticate.`,
    });
  }

  protected delegatedToken(tenant: string, form: URLSearchParams, fail: (s: number, c: number, e: string, d: string) => Answer): Answer {
    let clientId: string;
    if (form.get('grant_type') === 'refresh_token') {
      const known = this.refreshTokens.get(form.get('refresh_token') ?? '');
      if (!known) return fail(400, 700082, 'invalid_grant', 'The refresh token has expired due to inactivity.');
      clientId = known.clientId;
    } else {
      const entry = this.deviceCodes.get(form.get('device_code') ?? '');
      if (!entry || entry.expiresAt <= this.now()) return fail(400, 70019, 'expired_token', 'Verification code expired.');
      if (!entry.approved) return fail(400, 70016, 'authorization_pending', 'OAuth 2.0 device flow error. Authorization is pending. Continue polling.');
      this.deviceCodes.delete(form.get('device_code') ?? '');
      clientId = entry.clientId;
    }
    const now = Math.floor(this.now() / 1000);
    const oid = '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const idToken = `${b64({ typ: 'JWT', alg: 'RS256', kid: 'sim' })}.${b64({
      aud: clientId,
      iss: `https://login.microsoftonline.com/${tenant}/v2.0`,
      iat: now,
      nbf: now,
      exp: now + 3600,
      name: 'Ada Analyst',
      oid,
      preferred_username: SIM_ANALYST,
      sub: 'sim-analyst-subject',
      tid: tenant,
      ver: '2.0',
    })}.${randomBytes(16).toString('base64url')}`;
    const accessToken = `eyJ0eXAiOiJKV1QifQ.${b64({ upn: SIM_ANALYST, n: randomUUID() })}.${randomBytes(16).toString('base64url')}`;
    const refreshToken = randomBytes(32).toString('base64url');
    const lifetime = this.opts.tokenLifetimeSeconds ?? 3599;
    this.issuedTokens.set(accessToken, { expiresAt: this.now() + lifetime * 1000, roles: [], requestor: SIM_ANALYST });
    this.refreshTokens.set(refreshToken, { clientId, tenant });
    return ok(200, {
      token_type: 'Bearer',
      scope: form.get('scope') ?? '',
      expires_in: lifetime,
      ext_expires_in: lifetime,
      access_token: accessToken,
      refresh_token: refreshToken,
      id_token: idToken,
      client_info: b64({ uid: oid, utid: tenant }),
    });
  }

  protected managedIdentityToken(url: URL, headers: Record<string, string>): Answer {
    if (!this.opts.identityHeader || headers['x-identity-header'] !== this.opts.identityHeader) {
      return { status: 401, body: { statusCode: 401, message: 'Unauthorized request: missing or wrong X-IDENTITY-HEADER' } };
    }
    const resource = url.searchParams.get('resource');
    if (!resource) return { status: 400, body: { statusCode: 400, message: 'resource is required' } };
    const clientId = url.searchParams.get('client_id') ?? 'system-assigned-identity';
    const accessToken = `eyJ0eXAiOiJKV1QifQ.${Buffer.from(JSON.stringify({ mi: clientId, n: randomUUID() })).toString('base64url')}.${randomBytes(16).toString('base64url')}`;
    const lifetime = this.opts.tokenLifetimeSeconds ?? 3599;
    this.issuedTokens.set(accessToken, { expiresAt: this.now() + lifetime * 1000, roles: [], requestor: clientId });
    return ok(200, {
      access_token: accessToken,
      expires_on: String(Math.floor(this.now() / 1000) + lifetime),
      resource,
      token_type: 'Bearer',
      client_id: clientId,
    });
  }

  // ---- Entra ID token endpoint ----------------------------------------------------------------------

  protected openIdConfiguration(tenant: string, headers: Record<string, string>, url: URL): Answer {
    const base = `https://${headers.host ?? url.host}/${tenant}`;
    return ok(200, {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${base}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${base}/oidc/userinfo`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'tid'],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: 'NA',
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
      rbac_url: 'https://pas.windows.net',
    });
  }

  protected issueToken(tenant: string, url: URL, body: string): Answer {
    const form = new URLSearchParams(body);
    const fail = (status: number, code: number, error: string, description: string): Answer =>
      ok(status, {
        error,
        error_description: `AADSTS${code}: ${description} Trace ID: ${randomUUID()} Correlation ID: ${randomUUID()} Timestamp: ${new Date(this.now()).toISOString()}`,
        error_codes: [code],
        timestamp: new Date(this.now()).toISOString(),
        trace_id: randomUUID(),
        correlation_id: randomUUID(),
      });
    const grantType = form.get('grant_type');
    if (grantType === 'device_code' || grantType === 'urn:ietf:params:oauth:grant-type:device_code' || grantType === 'refresh_token') return this.delegatedToken(tenant, form, fail);
    if (grantType !== 'client_credentials') return fail(400, 70003, 'unsupported_grant_type', 'The app requested an unsupported grant type.');
    if (!form.get('client_id')) return fail(400, 900144, 'invalid_request', "The request body must contain the following parameter: 'client_id'.");
    if (!form.get('scope')?.endsWith('/.default')) return fail(400, 1002012, 'invalid_scope', 'The provided value for scope is not valid.');
    const secret = form.get('client_secret');
    const assertion = form.get('client_assertion');
    if (secret !== null) {
      if (secret !== this.opts.clientSecret) {
        return fail(401, 7000215, 'invalid_client', "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + form.get('client_id') + "'.");
      }
    } else if (assertion !== null) {
      if (!this.opts.clientCertificatePem || !verifyAssertion(assertion, this.opts.clientCertificatePem, form.get('client_id') ?? '')) {
        return fail(401, 700027, 'invalid_client', 'Client assertion failed signature validation.');
      }
    } else {
      return fail(401, 7000218, 'invalid_client', "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    void tenant;
    void url;
    const accessToken = `eyJ0eXAiOiJKV1QifQ.${Buffer.from(JSON.stringify({ roles: this.roles, n: randomUUID() })).toString('base64url')}.${randomBytes(16).toString('base64url')}`;
    const lifetime = this.opts.tokenLifetimeSeconds ?? 3599;
    this.issuedTokens.set(accessToken, { expiresAt: this.now() + lifetime * 1000, roles: [] });
    return ok(200, { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: accessToken });
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}


/** Verify a client assertion JWT (RS256 or PS256) against the registered certificate. */
function verifyAssertion(jwt: string, certPem: string, clientId: string): boolean {
  const [h, p, s] = jwt.split('.');
  if (!h || !p || !s) return false;
  try {
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: string };
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as { iss?: string; sub?: string; exp?: number };
    if (payload.iss !== clientId || payload.sub !== clientId) return false;
    const key = createPublicKey(new X509Certificate(certPem).publicKey.export({ format: 'pem', type: 'spki' }));
    const data = Buffer.from(`${h}.${p}`);
    const sig = Buffer.from(s, 'base64url');
    if (header.alg === 'PS256') return verifySignature('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig);
    if (header.alg === 'RS256') return verifySignature('sha256', data, key, sig);
    return false;
  } catch {
    return false;
  }
}
