/**
 * An embedded simulator of the Defender for Endpoint API and of the Entra ID token endpoint it needs.
 * `--simulator` serves the real tools against it, the demo uses it, and the tests use it as their HTTP
 * fake (it records every request and can inject faults). It keeps the real API's rules: case-sensitive
 * `Comment`, "Action is already in progress" on duplicates, 429 with Retry-After past the budget, the
 * documented error shape, and actions that move Pending -> InProgress -> Succeeded over a few seconds.
 */
import { constants, createHash, createPublicKey, randomBytes, randomUUID, verify as verifySignature, X509Certificate } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { SIM_MACHINES, type SimMachine } from './fixtures.js';

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

export interface SimAction extends Record<string, unknown> {
  id: string;
  type: string;
  machineId: string;
  requestorComment: string;
  creationDateTimeUtc: string;
}

export interface SimulatorOptions {
  now?: () => number;
  /** Calls a rolling minute before 429 (Defender's documented budget is 100). */
  rateLimitPerMinute?: number;
  /** How the API answers a duplicate unrestrict: HTTP 400, or 201 with the pending action. */
  duplicateBehavior?: 'error' | 'return_pending';
  /** Milliseconds after creation at which an action on an active device is InProgress / Succeeded. */
  inProgressAfterMs?: number;
  succeededAfterMs?: number;
  /** Token endpoint: the accepted client secret and/or certificate (PEM), and the token lifetime. */
  clientSecret?: string;
  clientCertificatePem?: string;
  tokenLifetimeSeconds?: number;
  /** Application roles granted to issued tokens. */
  roles?: string[];
  /** The secret a managed-identity request must carry in X-IDENTITY-HEADER (App Service protocol). */
  identityHeader?: string;
  requestor?: string;
}

export const ALL_ROLES = ['Machine.Read.All', 'Machine.RestrictExecution'];
const OPEN = new Set(['Pending', 'InProgress']);
const FINAL = new Set(['Succeeded', 'Failed', 'TimeOut', 'Cancelled']);

export class DefenderSimulator {
  readonly requests: RecordedRequest[] = [];
  /** A token the Defender endpoints accept without a sign-in (simulator mode). */
  readonly token = `sim-${randomBytes(12).toString('hex')}`;
  roles: string[];
  /** Called with each request as it arrives, before it is answered (tests use it to observe ordering). */
  onRequest: ((request: RecordedRequest) => void) | undefined;
  duplicateBehavior: 'error' | 'return_pending';
  private readonly now: () => number;
  private readonly machines = new Map<string, SimMachine & { restrictedState: boolean }>();
  private readonly actions: SimAction[] = [];
  /** Access tokens this simulator accepts, with who they stand for (the MachineAction's requestor). */
  private readonly issuedTokens = new Map<string, { expiresAt: number; roles: string[]; requestor?: string }>();
  private readonly refreshTokens = new Map<string, { clientId: string; tenant: string }>();
  private readonly deviceCodes = new Map<string, { userCode: string; approved: boolean; clientId: string; tenant: string; expiresAt: number }>();
  private readonly faults: FaultRule[] = [];
  private readonly callTimes: number[] = [];
  private readonly servers: Server[] = [];
  private readonly hanging = new Set<ServerResponse>();
  private seq = 0;

  constructor(private readonly opts: SimulatorOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.roles = opts.roles ?? [...ALL_ROLES];
    this.duplicateBehavior = opts.duplicateBehavior ?? 'error';
    this.issuedTokens.set(this.token, { expiresAt: Number.MAX_SAFE_INTEGER, roles: [] });
    const start = this.now();
    for (const m of SIM_MACHINES) {
      this.machines.set(m.id, { ...m, restrictedState: m.restricted });
      if (m.restricted) {
        this.actions.push(this.newAction(m, 'RestrictCodeExecution', 'Suspicious PowerShell activity; restricting pending investigation', start - 26 * 3600_000, 'soc-analyst@contoso.com', 'Succeeded'));
      }
      if (m.unrestrictPending) {
        this.actions.push(this.newAction(m, 'UnrestrictCodeExecution', 'INC-4411: re-imaged, lifting restriction', start - 20 * 3600_000, 'it-oncall@contoso.com', 'Pending'));
      }
    }
  }

  // ---- test and demo controls -------------------------------------------------------------------

  /** Answer the next `times` requests matching method and path with a fault. */
  injectFault(match: { method?: string; path: RegExp | string }, fault: Fault, times = 1): void {
    const path = typeof match.path === 'string' ? new RegExp(escapeRegExp(match.path)) : match.path;
    this.faults.push({ method: match.method, path, fault, remaining: times });
  }

  /** Accept an access token issued elsewhere (a test's Entra fake), standing for `requestor`. */
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

  machineActions(): SimAction[] {
    return this.actions.map((a) => this.withStatus(a));
  }

  isRestricted(machineId: string): boolean | undefined {
    const m = this.machines.get(machineId);
    if (!m) return undefined;
    // Restriction state follows the newest succeeded restrict/unrestrict action.
    const last = this.machineActions()
      .filter((a) => a.machineId === machineId && a.status === 'Succeeded' && /CodeExecution$/.test(a.type))
      .sort((a, b) => b.creationDateTimeUtc.localeCompare(a.creationDateTimeUtc))[0];
    return last ? last.type === 'RestrictCodeExecution' : m.restrictedState;
  }

  async listen(opts: { tls?: { key: string | Buffer; cert: string | Buffer }; port?: number } = {}): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    const server = opts.tls ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : createHttpServer(handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    this.servers.push(server);
    const { port } = server.address() as AddressInfo;
    return `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.closeAllConnections();
            s.close(() => resolve());
          }),
      ),
    );
    this.servers.length = 0;
  }

  // ---- request handling ---------------------------------------------------------------------------

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const body = await readBody(req);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : (v ?? '');
    const method = req.method ?? 'GET';
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
    const answer = this.route(method, url, headers, body);
    res.writeHead(answer.status, {
      'Content-Type': answer.contentType ?? 'application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8',
      ...answer.headers,
    });
    res.end(answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
  }

  private route(method: string, url: URL, headers: Record<string, string>, body: string): Answer {
    const path = url.pathname.replace(/^\/api\/v1\.0\//, '/api/');
    const tokenPath = path.match(/^\/([^/]+)\/oauth2\/v2\.0\/token$/);
    if (tokenPath && method === 'POST') return this.issueToken(tokenPath[1]!, url, body);
    const deviceCode = path.match(/^\/([^/]+)\/oauth2\/v2\.0\/devicecode$/);
    if (deviceCode && method === 'POST') return this.startDeviceCode(deviceCode[1]!, body);
    if (path.endsWith('/msi/token') && method === 'GET') return this.managedIdentityToken(url, headers);
    const discovery = path.match(/^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/);
    if (discovery && method === 'GET') return this.openIdConfiguration(discovery[1]!, headers, url);
    if (!path.startsWith('/api/')) return apiError(404, 'NotFound', `No route for ${path}`);

    // The Defender API: budget first (a refused call still counts at Microsoft), then auth.
    const limited = this.rateLimit();
    if (limited) return limited;
    const auth = (headers.authorization ?? '').match(/^Bearer (.+)$/);
    const grant = auth ? this.issuedTokens.get(auth[1]!) : undefined;
    if (!grant || grant.expiresAt <= this.now()) return apiError(401, 'Unauthorized', 'Invalid Authorization payload.');
    const roles = grant.roles.length > 0 ? grant.roles : this.roles;

    let m: RegExpMatchArray | null;
    if ((m = path.match(/^\/api\/machines\/([^/]+)\/(unrestrictCodeExecution|restrictCodeExecution)$/)) && method === 'POST') {
      if (!roles.includes('Machine.RestrictExecution')) return missingRole('Machine.RestrictExecution');
      return this.codeExecution(decodeURIComponent(m[1]!), m[2] === 'restrictCodeExecution' ? 'RestrictCodeExecution' : 'UnrestrictCodeExecution', headers, body, grant.requestor);
    }
    if ((m = path.match(/^\/api\/machineactions\/([^/]+)\/cancel$/)) && method === 'POST') {
      if (!roles.includes('Machine.RestrictExecution')) return missingRole('Machine.RestrictExecution');
      return this.cancel(decodeURIComponent(m[1]!), body, grant.requestor);
    }
    if (method !== 'GET') return apiError(405, 'BadRequest', `Method ${method} is not supported on ${path}`);
    if (!roles.includes('Machine.Read.All')) return missingRole('Machine.Read.All');
    if ((m = path.match(/^\/api\/machines\/([^/]+)$/))) return this.getMachine(decodeURIComponent(m[1]!));
    if (path === '/api/machines') return this.listMachines(url);
    if ((m = path.match(/^\/api\/machineactions\/([^/]+)$/))) {
      const action = this.actions.find((a) => a.id === decodeURIComponent(m![1]!));
      return action ? ok(200, { '@odata.context': `${ODATA}#MachineActions/$entity`, ...this.withStatus(action) }) : { status: 404 };
    }
    if (path === '/api/machineactions') return this.listActions(url);
    return apiError(404, 'NotFound', `No route for ${path}`);
  }

  private rateLimit(): Answer | undefined {
    const limit = this.opts.rateLimitPerMinute ?? 100;
    const now = this.now();
    while (this.callTimes.length > 0 && this.callTimes[0]! <= now - 60_000) this.callTimes.shift();
    if (this.callTimes.length >= limit) {
      const retryAfter = Math.max(1, Math.ceil((this.callTimes[0]! + 60_000 - now) / 1000));
      return apiError(429, 'TooManyRequests', 'Rate limit is exceeded. Try again later.', { 'Retry-After': String(retryAfter) });
    }
    this.callTimes.push(now);
    return undefined;
  }

  private findMachine(idOrName: string) {
    const key = idOrName.toLowerCase();
    return this.machines.get(key) ?? [...this.machines.values()].find((m) => m.computerDnsName.toLowerCase() === key);
  }

  private machineEntity(m: SimMachine) {
    const lastSeen = new Date(this.now() - m.lastSeenHoursAgo * 3600_000).toISOString();
    return {
      id: m.id,
      computerDnsName: m.computerDnsName,
      firstSeen: '2024-03-11T09:12:44.1234567Z',
      lastSeen,
      osPlatform: m.osPlatform,
      version: m.version,
      osProcessor: 'x64',
      lastIpAddress: m.lastIpAddress,
      lastExternalIpAddress: '203.0.113.10',
      osBuild: m.osBuild,
      healthStatus: m.healthStatus,
      rbacGroupId: m.rbacGroupId,
      rbacGroupName: m.rbacGroupName,
      riskScore: m.riskScore,
      exposureLevel: m.exposureLevel,
      isAadJoined: true,
      aadDeviceId: uuidFrom(m.id),
      machineTags: m.machineTags,
      onboardingStatus: 'Onboarded',
      osArchitecture: '64-bit',
      deviceValue: 'Normal',
    };
  }

  private getMachine(idOrName: string): Answer {
    const m = this.findMachine(idOrName);
    if (!m) return apiError(404, 'ResourceNotFound', `Machine ${idOrName} was not found`);
    return ok(200, { '@odata.context': `${ODATA}#Machines/$entity`, ...this.machineEntity(m) });
  }

  private listMachines(url: URL): Answer {
    const filter = url.searchParams.get('$filter') ?? '';
    let list = [...this.machines.values()];
    const eq = filter.match(/computerDnsName eq '([^']*)'/i);
    const starts = filter.match(/startswith\(computerDnsName,\s*'([^']*)'\)/i);
    if (eq) list = list.filter((m) => m.computerDnsName.toLowerCase() === eq[1]!.toLowerCase());
    if (starts) list = list.filter((m) => m.computerDnsName.toLowerCase().startsWith(starts[1]!.toLowerCase()));
    return ok(200, { '@odata.context': `${ODATA}#Machines`, value: list.map((m) => this.machineEntity(m)) });
  }

  private listActions(url: URL): Answer {
    const filter = url.searchParams.get('$filter') ?? '';
    const clauses = [...filter.matchAll(/(\w+) eq '([^']*)'/g)].map((c) => [c[1]!, c[2]!] as const);
    const known = new Set(['id', 'status', 'machineId', 'type', 'requestor', 'creationDateTimeUtc']);
    for (const [field] of clauses) if (!known.has(field)) return apiError(400, 'ODataError', `Invalid filter field ${field}`);
    // Clauses on the same field are alternatives (or); different fields must all hold (and).
    const byField = new Map<string, string[]>();
    for (const [f, v] of clauses) byField.set(f, [...(byField.get(f) ?? []), v]);
    let list = this.machineActions().filter((a) => [...byField].every(([f, vs]) => vs.includes(String(a[f]))));
    list.sort((a, b) => b.creationDateTimeUtc.localeCompare(a.creationDateTimeUtc));
    const top = Number(url.searchParams.get('$top') ?? '10000');
    list = list.slice(0, Math.min(top, 10_000));
    return ok(200, { '@odata.context': `${ODATA}#MachineActions`, value: list });
  }

  private codeExecution(idOrName: string, type: 'RestrictCodeExecution' | 'UnrestrictCodeExecution', headers: Record<string, string>, body: string, requestor?: string): Answer {
    if (!(headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) {
      return apiError(415, 'BadRequest', 'Content-Type must be application/json');
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return apiError(400, 'InvalidRequestBody', 'Request body is incorrect');
    }
    const comment = (parsed as { Comment?: unknown } | null)?.Comment;
    if (typeof comment !== 'string' || comment.trim() === '') return apiError(400, 'MissingRequiredParameter', 'Parameter Comment is missing');
    const m = this.findMachine(idOrName);
    if (!m) return apiError(404, 'ResourceNotFound', `Machine ${idOrName} was not found`);
    if (m.osPlatform === 'macOS' || m.osPlatform === 'Linux') {
      return apiError(400, 'OsPlatformNotSupported', `OS Platform ${m.osPlatform} is not supported for this action`);
    }
    const open = this.machineActions().find((a) => a.machineId === m.id && /CodeExecution$/.test(a.type) && OPEN.has(String(a.status)));
    if (open) {
      if (this.duplicateBehavior === 'return_pending') return ok(201, { '@odata.context': `${ODATA}#MachineActions/$entity`, ...open });
      return apiError(400, 'ActiveRequestAlreadyExists', 'Action is already in progress');
    }
    const action = this.newAction(m, type, comment, this.now(), requestor ?? this.opts.requestor ?? APP_REQUESTOR, 'Pending');
    this.actions.push(action);
    return ok(201, { '@odata.context': `${ODATA}#MachineActions/$entity`, ...this.withStatus(action) });
  }

  private cancel(actionId: string, body: string, requestor?: string): Answer {
    const action = this.actions.find((a) => a.id === actionId);
    if (!action) return apiError(404, 'ResourceNotFound', `Action ${actionId} was not found`);
    let comment: unknown;
    try {
      comment = (JSON.parse(body) as { Comment?: unknown }).Comment;
    } catch {
      return apiError(400, 'InvalidRequestBody', 'Request body is incorrect');
    }
    if (typeof comment !== 'string' || comment.trim() === '') return apiError(400, 'MissingRequiredParameter', 'Parameter Comment is missing');
    const current = this.withStatus(action);
    if (FINAL.has(String(current.status))) return apiError(400, 'BadRequest', `Action is already in a final state (${current.status})`);
    Object.assign(action, {
      fixedStatus: 'Cancelled',
      cancellationRequestor: requestor ?? this.opts.requestor ?? APP_REQUESTOR,
      cancellationComment: comment,
      cancellationDateTimeUtc: new Date(this.now()).toISOString(),
      lastUpdateDateTimeUtc: new Date(this.now()).toISOString(),
    });
    return ok(200, { '@odata.context': `${ODATA}#MachineActions/$entity`, ...this.withStatus(action) });
  }

  private newAction(m: SimMachine, type: string, comment: string, createdMs: number, requestor: string, status: string): SimAction {
    const created = new Date(createdMs).toISOString();
    return {
      id: randomUUID(),
      type,
      title: null,
      requestor,
      requestorComment: comment,
      status,
      machineId: m.id,
      computerDnsName: m.computerDnsName,
      creationDateTimeUtc: created,
      lastUpdateDateTimeUtc: created,
      cancellationRequestor: null,
      cancellationComment: null,
      cancellationDateTimeUtc: null,
      errorHResult: 0,
      scope: null,
      externalId: null,
      requestSource: 'PublicApi',
      relatedFileInfo: null,
      commands: [],
      troubleshootInfo: null,
      // Seeded actions keep their status; new ones on active devices move along with time.
      fixedStatus: status === 'Pending' && m.healthStatus === 'Active' && createdMs >= this.now() - 60_000 ? undefined : status,
    };
  }

  /** The action as the API shows it now: status follows the clock unless fixed (seeded or cancelled). */
  private withStatus(action: SimAction): SimAction {
    const { fixedStatus, ...visible } = action as SimAction & { fixedStatus?: string };
    if (fixedStatus) return { ...visible, status: fixedStatus } as SimAction;
    const age = this.now() - Date.parse(action.creationDateTimeUtc);
    const inProgress = this.opts.inProgressAfterMs ?? 2_000;
    const succeeded = this.opts.succeededAfterMs ?? 5_000;
    const status = age >= succeeded ? 'Succeeded' : age >= inProgress ? 'InProgress' : 'Pending';
    const updatedMs = Date.parse(action.creationDateTimeUtc) + (status === 'Succeeded' ? succeeded : status === 'InProgress' ? inProgress : 0);
    return { ...visible, status, lastUpdateDateTimeUtc: new Date(updatedMs).toISOString() } as SimAction;
  }

  // ---- delegated sign-in (device code) and managed identity -------------------------------------------

  /** The person signs in on another device: approve the newest (or the given) pending device code. */
  approveDeviceCode(userCode?: string): boolean {
    const entry = [...this.deviceCodes.values()].reverse().find((d) => !d.approved && (!userCode || d.userCode === userCode));
    if (!entry) return false;
    entry.approved = true;
    return true;
  }

  private startDeviceCode(tenant: string, body: string): Answer {
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

  private delegatedToken(tenant: string, form: URLSearchParams, fail: (s: number, c: number, e: string, d: string) => Answer): Answer {
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

  private managedIdentityToken(url: URL, headers: Record<string, string>): Answer {
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

  private openIdConfiguration(tenant: string, headers: Record<string, string>, url: URL): Answer {
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

  private issueToken(tenant: string, url: URL, body: string): Answer {
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

// ---- helpers ------------------------------------------------------------------------------------------

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  contentType?: string;
}

const ODATA = 'https://api.security.microsoft.com/api/$metadata';
/** The app's client id, as Defender records it for actions requested with an application token. */
const APP_REQUESTOR = 'b3f1c2d4-5e6f-4a1b-9c8d-7e6f5a4b3c2d';
/** The person a delegated (device code) sign-in stands for. */
export const SIM_ANALYST = 'analyst@contoso.com';

const ok = (status: number, body: unknown): Answer => ({ status, body });

function apiError(status: number, code: string, message: string, headers?: Record<string, string>): Answer {
  return { status, headers, body: { error: { code, message, target: randomUUID() } } };
}

function missingRole(role: string): Answer {
  return apiError(403, 'Forbidden', `Missing application roles. API required roles: ${role}, application roles: .`);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function uuidFrom(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
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
