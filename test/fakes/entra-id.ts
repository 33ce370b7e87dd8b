/**
 * A fake of Microsoft Entra ID for remote mode, over HTTPS with the test CA: the tenant's key set
 * (`/{tenant}/discovery/v2.0/keys`) with rotatable RS256 keys, a token minter for callers' access tokens
 * (good and deliberately bad ones), and the token endpoint answering the On-Behalf-Of grant and the
 * client-credentials grant the way Entra does (with `client_info`). Every request is recorded.
 */
import { constants, createHash, randomBytes, randomUUID, verify as verifySignature, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type JWTPayload } from 'jose';

const tls = (name: string) => readFileSync(fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url)));

export const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const API_CLIENT_ID = '6b0c5e1a-2f3d-4c4e-9a8b-1c2d3e4f5a6b';
export const API_SECRET = 'api-app-secret~for.tests';
export const ANALYST = { oid: '11111111-2222-4333-8444-555555555555', preferred_username: 'ada@contoso.com', name: 'Ada Analyst' };
export const SECOND_ANALYST = { oid: '99999999-8888-4777-8666-555555555555', preferred_username: 'bob@contoso.com', name: 'Bob Analyst' };
export const CALLING_APP = { oid: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee', azp: '0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9' };

export interface RecordedEntraRequest {
  method: string;
  path: string;
  form: Record<string, string>;
}

interface SigningKey {
  kid: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  publicJwk: JWK;
}

async function newKey(kid = `k-${randomBytes(4).toString('hex')}`): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256' } };
}

export class FakeEntra {
  readonly requests: RecordedEntraRequest[] = [];
  /** Keys published in the key set; the first one signs new tokens. */
  private published: SigningKey[] = [];
  private server: Server | undefined;
  authorityHost = '';
  /** OBO answers: which assertion (caller token) each issued OBO token came from. */
  readonly oboIssued: { assertion: string; accessToken: string; oid: string; scope: string }[] = [];
  /** Called with every access token this fake issues (OBO or client credentials), for the Defender fake. */
  onIssue: ((token: string, who: { requestor: string; expiresAt: number }) => void) | undefined;
  /** Answer key set requests with 503 (an outage), still recording them. */
  failKeySet = false;
  /** Answer the next OBO requests with this AADSTS failure. */
  failObo: { code: number; error: string; description: string } | undefined;

  constructor(
    readonly opts: { tenant?: string; clientId?: string; clientSecret?: string; clientCertificatePem?: string; now?: () => number } = {},
  ) {}

  get tenant() {
    return this.opts.tenant ?? TENANT;
  }
  get clientId() {
    return this.opts.clientId ?? API_CLIENT_ID;
  }
  get issuer() {
    return `${this.authorityHost}/${this.tenant}/v2.0`;
  }
  private now() {
    return this.opts.now?.() ?? Date.now();
  }

  async start(): Promise<string> {
    this.published = [await newKey()];
    this.server = createServer({ key: tls('server.key'), cert: tls('server.pem') }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'https://fake');
        const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
        this.requests.push({ method: req.method ?? 'GET', path: url.pathname, form });
        const answer = this.route(req.method ?? 'GET', url.pathname, form);
        res.writeHead(answer.status, { 'Content-Type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.authorityHost = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.authorityHost;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  keySetRequests() {
    return this.requests.filter((r) => r.path.endsWith('/discovery/v2.0/keys'));
  }
  tokenRequests() {
    return this.requests.filter((r) => r.path.endsWith('/oauth2/v2.0/token'));
  }

  /** Publish a new signing key (new tokens use it); `keepOld` keeps the previous one published too. */
  async rotate(opts: { keepOld?: boolean } = {}): Promise<string> {
    const key = await newKey();
    this.published = opts.keepOld ? [key, ...this.published] : [key];
    return key.kid;
  }

  /** A key that is not (yet) published: tokens signed with it have an unknown key id. */
  async unpublishedKey(): Promise<SigningKey> {
    return newKey();
  }

  /** Publish an extra key (after tokens were signed with it). */
  publish(key: SigningKey): void {
    this.published.push(key);
  }

  /** The public key of the current signer, as PEM-less JWK (for the HS256-with-public-key attack). */
  currentPublicJwk(): JWK {
    return this.published[0]!.publicJwk;
  }

  /** A user's delegated access token for this API, as Entra would issue it; overrides make bad ones. */
  async userToken(
    opts: { user?: { oid: string; preferred_username: string; name: string }; claims?: JWTPayload; key?: SigningKey; lifetimeSec?: number; notBeforeSec?: number } = {},
  ): Promise<string> {
    const user = opts.user ?? ANALYST;
    const now = Math.floor(this.now() / 1000);
    const claims: JWTPayload = {
      aud: this.clientId,
      iss: this.issuer,
      iat: now,
      nbf: now + (opts.notBeforeSec ?? 0),
      exp: now + (opts.lifetimeSec ?? 3600),
      tid: this.tenant,
      oid: user.oid,
      sub: `sub-${user.oid}`,
      preferred_username: user.preferred_username,
      name: user.name,
      scp: 'user_impersonation',
      azp: 'aebc6443-996d-45c2-90f0-388ff96faa56', // VS Code's client id
      uti: randomBytes(8).toString('base64url'), // Entra's unique token id: no two tokens are alike
      ver: '2.0',
      ...opts.claims,
    };
    return this.sign(claims, opts.key);
  }

  /** An app-only (client credentials) token for this API: no `scp`, app roles in `roles`. */
  async appToken(opts: { roles?: string[]; claims?: JWTPayload } = {}): Promise<string> {
    const now = Math.floor(this.now() / 1000);
    return this.sign({
      aud: this.clientId,
      iss: this.issuer,
      iat: now,
      nbf: now,
      exp: now + 3600,
      tid: this.tenant,
      oid: CALLING_APP.oid,
      sub: CALLING_APP.oid,
      azp: CALLING_APP.azp,
      idtyp: 'app',
      roles: opts.roles ?? [],
      uti: randomBytes(8).toString('base64url'),
      ver: '2.0',
      ...opts.claims,
    });
  }

  async sign(claims: JWTPayload, key: SigningKey = this.published[0]!): Promise<string> {
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid }).sign(key.privateKey);
  }

  private route(method: string, path: string, form: Record<string, string>): { status: number; body: unknown } {
    const base = `/${this.tenant}`;
    if (method === 'GET' && path === `${base}/discovery/v2.0/keys`) {
      if (this.failKeySet) return { status: 503, body: { error: 'temporarily_unavailable' } };
      return { status: 200, body: { keys: this.published.map((k) => k.publicJwk) } };
    }
    if (method === 'POST' && path === `${base}/oauth2/v2.0/token`) return this.token(form);
    return { status: 404, body: { error: 'not_found' } };
  }

  private token(form: Record<string, string>): { status: number; body: unknown } {
    const fail = (status: number, code: number, error: string, description: string) => ({
      status,
      body: { error, error_description: `AADSTS${code}: ${description} Trace ID: ${randomUUID()}`, error_codes: [code], trace_id: randomUUID(), correlation_id: randomUUID() },
    });
    if (form.client_id !== this.clientId) return fail(400, 700016, 'unauthorized_client', `Application with identifier '${form.client_id}' was not found in the directory.`);
    if (form.client_assertion !== undefined) {
      if (!this.opts.clientCertificatePem || !assertionSignedBy(form.client_assertion, this.opts.clientCertificatePem, this.clientId)) {
        return fail(401, 700027, 'invalid_client', 'Client assertion failed signature validation.');
      }
    } else if (form.client_secret !== (this.opts.clientSecret ?? API_SECRET)) {
      return fail(401, 7000215, 'invalid_client', 'Invalid client secret provided.');
    }
    const lifetime = 3599;
    const expiresAt = this.now() + lifetime * 1000;
    if (form.grant_type === 'client_credentials') {
      const accessToken = `app-${randomBytes(16).toString('hex')}`;
      this.onIssue?.(accessToken, { requestor: this.clientId, expiresAt });
      return { status: 200, body: { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: accessToken } };
    }
    if (form.grant_type !== 'urn:ietf:params:oauth:grant-type:jwt-bearer' || form.requested_token_use !== 'on_behalf_of') {
      return fail(400, 70003, 'unsupported_grant_type', 'The app requested an unsupported grant type.');
    }
    if (this.failObo) return fail(400, this.failObo.code, this.failObo.error, this.failObo.description);
    // The assertion must be a user token for this API (Entra checks its signature; so does this fake,
    // by trusting only what it issued: the payload is read after checking the issuer and audience).
    const claims = decodePayload(form.assertion ?? '');
    if (!claims || claims.iss !== this.issuer || (claims.aud !== this.clientId && !String(claims.aud).startsWith('api://'))) {
      return fail(400, 50013, 'invalid_grant', 'Assertion failed signature validation.');
    }
    if (typeof claims.scp !== 'string') return fail(400, 7000114, 'invalid_grant', "Application 'x' is not allowed to make application on-behalf-of calls.");
    const oid = String(claims.oid);
    const accessToken = `obo-${createHash('sha256').update(form.assertion!).digest('hex').slice(0, 12)}-${randomBytes(8).toString('hex')}`;
    this.oboIssued.push({ assertion: form.assertion!, accessToken, oid, scope: form.scope ?? '' });
    this.onIssue?.(accessToken, { requestor: String(claims.preferred_username ?? oid), expiresAt });
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    return {
      status: 200,
      body: {
        token_type: 'Bearer',
        scope: 'https://api.securitycenter.microsoft.com/Machine.RestrictExecution https://api.securitycenter.microsoft.com/Machine.Read',
        expires_in: lifetime,
        ext_expires_in: lifetime,
        access_token: accessToken,
        client_info: b64({ uid: oid, utid: String(claims.tid) }),
      },
    };
  }
}

/** A certificate credential's client assertion: RS256 (or PS256) signed by the registered certificate's key, iss = sub = client id. */
function assertionSignedBy(assertion: string, certificatePem: string, clientId: string): boolean {
  const [h, p, sig] = assertion.split('.');
  if (!h || !p || !sig) return false;
  const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: string };
  const key = new X509Certificate(certificatePem).publicKey;
  const options = header.alg === 'PS256' ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : key;
  const signed = verifySignature('sha256', Buffer.from(`${h}.${p}`), options, Buffer.from(sig, 'base64url'));
  const claims = decodePayload(assertion);
  return signed && claims?.iss === clientId && claims?.sub === clientId;
}

function decodePayload(jwt: string): JWTPayload | undefined {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as JWTPayload;
  } catch {
    return undefined;
  }
}

/** A compact JWT with a chosen header and payload and a made-up signature (alg none, HS256, ...). */
export function forgedToken(header: Record<string, unknown>, payload: JWTPayload, signature = ''): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64(header)}.${b64(payload)}.${signature}`;
}
