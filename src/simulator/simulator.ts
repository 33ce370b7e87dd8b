/**
 * An embedded simulator of the Defender for Endpoint API: what `--simulator` and `npm run demo` serve.
 * It keeps the real API's rules: case-sensitive `Comment`, "Action is already in progress" on duplicates,
 * 429 with Retry-After past the budget, 403 without a role, the documented error shape, and actions that
 * move Pending -> InProgress -> Succeeded over a few seconds. The tests extend it (test/helpers/
 * fake-tenant.ts) with request recording, fault injection and fake Entra ID endpoints, which do not ship.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIM_MACHINES, type SimMachine } from './fixtures.js';

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
  /** Application roles the API grants (all by default). */
  roles?: string[];
  requestor?: string;
}

export const ALL_ROLES = ['Machine.Read.All', 'Machine.RestrictExecution'];
const OPEN = new Set(['Pending', 'InProgress']);
const FINAL = new Set(['Succeeded', 'Failed', 'TimeOut', 'Cancelled']);

export class DefenderSimulator {
  /** A token the Defender endpoints accept without a sign-in (simulator mode). */
  readonly token = `sim-${randomBytes(12).toString('hex')}`;
  roles: string[];
  duplicateBehavior: 'error' | 'return_pending';
  protected readonly now: () => number;
  protected readonly machines = new Map<string, SimMachine & { restrictedState: boolean }>();
  private readonly actions: SimAction[] = [];
  /** Access tokens the API accepts, with who they stand for (the MachineAction's requestor). */
  protected readonly issuedTokens = new Map<string, { expiresAt: number; roles: string[]; requestor?: string }>();
  private readonly callTimes: number[] = [];
  protected readonly servers: Server[] = [];

  /** A token standing for a named person (the approval demo's stand-in analysts): actions record them as requestor. */
  tokenFor(requestor: string): string {
    const token = `sim-${randomBytes(12).toString('hex')}`;
    this.issuedTokens.set(token, { expiresAt: Number.MAX_SAFE_INTEGER, roles: [], requestor });
    return token;
  }

  constructor(protected readonly opts: SimulatorOptions = {}) {
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

  // ---- state, as the API would report it ---------------------------------------------------------

  machineActions(): SimAction[] {
    return this.actions.map((a) => this.withStatus(a));
  }

  async listen(opts: { port?: number } = {}): Promise<string> {
    return this.listenOn(createHttpServer((req, res) => void this.serve(req, res)), 'http', opts.port);
  }

  protected async listenOn(server: Server, scheme: 'http' | 'https', port = 0): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.servers.push(server);
    return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
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

  protected async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const r = await readRequest(req);
    reply(res, this.route(r.method, r.url, r.headers, r.body));
  }

  protected route(method: string, url: URL, headers: Record<string, string>, body: string): Answer {
    const path = url.pathname.replace(/^\/api\/v1\.0\//, '/api/');
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
}

// ---- helpers ------------------------------------------------------------------------------------------

export interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  contentType?: string;
}

const ODATA = 'https://api.security.microsoft.com/api/$metadata';
/** The app's client id, as Defender records it for actions requested with an application token. */
const APP_REQUESTOR = 'b3f1c2d4-5e6f-4a1b-9c8d-7e6f5a4b3c2d';

export const ok = (status: number, body: unknown): Answer => ({ status, body });

export function apiError(status: number, code: string, message: string, headers?: Record<string, string>): Answer {
  return { status, headers, body: { error: { code, message, target: randomUUID() } } };
}

function missingRole(role: string): Answer {
  return apiError(403, 'Forbidden', `Missing application roles. API required roles: ${role}, application roles: .`);
}

export interface SimRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: string;
}

export async function readRequest(req: IncomingMessage): Promise<SimRequest> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : (v ?? '');
  return { method: req.method ?? 'GET', url: new URL(req.url ?? '/', 'http://sim'), headers, body: await readBody(req) };
}

export function reply(res: ServerResponse, answer: Answer): void {
  res.writeHead(answer.status, {
    'Content-Type': answer.contentType ?? 'application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8',
    ...answer.headers,
  });
  res.end(answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function uuidFrom(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

