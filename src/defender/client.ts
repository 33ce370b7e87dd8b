/**
 * The Defender for Endpoint API client: only the calls this server makes, each mapped from HTTP to typed
 * errors. Rules it keeps: a 429 was not accepted, so it is retried after `Retry-After` (bounded); a write
 * that may have reached the API (timeout or reset after sending) is never re-sent here.
 */
import type { TokenProvider } from '../auth/token-provider.js';
import { ToolError, isToolError } from '../errors.js';
import type { Logger } from '../log.js';
import { NO_METRICS, type Metrics } from '../metrics/metrics.js';
import { proxyFailure, proxyFor } from '../net/proxy.js';
import { abortable } from './abortable.js';
import { CHECK_ACTIONS, WRITES, cancelled, cancelledInFlight, errorDetails, mapErrorResponse, parseEntity, retryAfterMs } from './errors.js';
import type { RateBudget as CallBudget } from '../store/types.js';
import { WireFailure, wireRequest, type WireAnswer } from './transport.js';
import {
  machineActionListSchema,
  machineActionSchema,
  machineListSchema,
  machineSchema,
  type Machine,
  type MachineAction,
} from './schemas.js';

/**
 * Every call takes an optional AbortSignal: the client's cancellation. It ends the budget wait, the
 * Retry-After sleep and the HTTP request itself; once it fired, nothing more is sent.
 */
export interface DefenderApi {
  getMachine(machineId: string, signal?: AbortSignal): Promise<Machine>;
  /** POST unrestrictCodeExecution. Throws AlreadyInProgressError on "Action is already in progress". */
  unrestrictCodeExecution(machineId: string, comment: string, signal?: AbortSignal): Promise<MachineAction>;
  /** Actions for one device, optionally of one type and status, newest first. */
  listMachineActions(query: { machineId: string; type?: string; status?: string }, signal?: AbortSignal): Promise<MachineAction[]>;
  getMachineAction(actionId: string, signal?: AbortSignal): Promise<MachineAction>;
  /** POST machineactions/{id}/cancel. */
  cancelMachineAction(actionId: string, comment: string, signal?: AbortSignal): Promise<MachineAction>;
  /** Devices by exact host name, or by host-name prefix. */
  findMachines(name: string, match: 'exact' | 'prefix', signal?: AbortSignal): Promise<Machine[]>;
}

export type Operation = 'read_machine' | 'unrestrict' | 'list_actions' | 'read_action' | 'cancel' | 'find_machines';

export interface DefenderClientOptions {
  baseUrl: string;
  tokens: TokenProvider;
  timeoutMs: number;
  logger: Logger;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** How many times a 429 is retried before giving up. */
  max429Retries?: number;
  /**
   * The longest time one call may spend waiting on Retry-After, all retries together; a longer demand
   * fails fast with the time to wait, so a tool call ends before a typical client's 60-second timeout.
   */
  maxRetryWaitMs?: number;
  /** Values that must never leave in an error (client secret, certificate password): redacted before Defender's message is cut. */
  secrets?: readonly string[];
  /** The call budget (this process's, or the replicas' shared one); every attempt, retries included, takes a slot. */
  limiter?: CallBudget;
  /** Whose fair share of the budget the current call counts against (remote mode: the signed-in caller). */
  budgetUser?: () => string | undefined;
  now?: () => number;
  /** Requests by operation and status, their latency, and time waiting on the budget. */
  metrics?: Metrics;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class DefenderClient implements DefenderApi {
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly max429Retries: number;
  private readonly maxRetryWaitMs: number;
  private readonly now: () => number;
  private readonly metrics: Metrics;
  /** Whether requests take the node:http(s) path (decided at the first request, after the proxy is set up). */
  private direct: boolean | undefined;

  constructor(private readonly opts: DefenderClientOptions) {
    this.metrics = opts.metrics ?? NO_METRICS;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.fetchImpl = opts.fetch ?? fetch;
    this.sleep = opts.sleep ?? realSleep;
    this.max429Retries = opts.max429Retries ?? 3;
    this.maxRetryWaitMs = opts.maxRetryWaitMs ?? 45_000;
    this.now = opts.now ?? Date.now;
  }

  async getMachine(machineId: string, signal?: AbortSignal): Promise<Machine> {
    const body = await this.send('read_machine', 'GET', `/api/machines/${encodeURIComponent(machineId)}`, undefined, signal);
    parseEntity(machineSchema, body, 'Machine');
    return body as Machine;
  }

  async unrestrictCodeExecution(machineId: string, comment: string, signal?: AbortSignal): Promise<MachineAction> {
    // `Comment` is case-sensitive on the wire; `comment` gets InvalidRequestBody.
    const body = await this.send('unrestrict', 'POST', `/api/machines/${encodeURIComponent(machineId)}/unrestrictCodeExecution`, {
      Comment: comment,
    }, signal);
    const parsed = machineActionSchema.safeParse(body);
    if (!parsed.success) {
      throw new ToolError('outcome_unknown', 'Defender accepted the request, but returned a MachineAction this server cannot read.', CHECK_ACTIONS);
    }
    // Hand back the object as the API sent it (field order and unknown fields kept), now known to be valid.
    return body as MachineAction;
  }

  async listMachineActions(query: { machineId: string; type?: string; status?: string }, signal?: AbortSignal): Promise<MachineAction[]> {
    // Values come from validated input (hex ids, enum names); quotes are doubled anyway, as OData wants.
    const clauses = [`machineId eq '${odata(query.machineId)}'`];
    if (query.type) clauses.push(`type eq '${odata(query.type)}'`);
    if (query.status) clauses.push(`status eq '${odata(query.status)}'`);
    const body = await this.send('list_actions', 'GET', `/api/machineactions?${queryString({ $filter: clauses.join(' and ') })}`, undefined, signal);
    parseEntity(machineActionListSchema, body, 'MachineAction list');
    return [...(body as { value: MachineAction[] }).value].sort((a, b) => (b.creationDateTimeUtc ?? '').localeCompare(a.creationDateTimeUtc ?? ''));
  }

  async getMachineAction(actionId: string, signal?: AbortSignal): Promise<MachineAction> {
    const body = await this.send('read_action', 'GET', `/api/machineactions/${encodeURIComponent(actionId)}`, undefined, signal);
    parseEntity(machineActionSchema, body, 'MachineAction');
    return body as MachineAction;
  }

  async cancelMachineAction(actionId: string, comment: string, signal?: AbortSignal): Promise<MachineAction> {
    const body = await this.send('cancel', 'POST', `/api/machineactions/${encodeURIComponent(actionId)}/cancel`, { Comment: comment }, signal);
    const parsed = machineActionSchema.safeParse(body);
    if (!parsed.success) {
      throw new ToolError('outcome_unknown', 'Defender accepted the cancellation, but returned a MachineAction this server cannot read.', 'Read the action again to see its status.');
    }
    return body as MachineAction;
  }

  async findMachines(name: string, match: 'exact' | 'prefix', signal?: AbortSignal): Promise<Machine[]> {
    const filter = match === 'exact' ? `computerDnsName eq '${odata(name)}'` : `startswith(computerDnsName,'${odata(name)}')`;
    let body: unknown;
    try {
      body = await this.send('find_machines', 'GET', `/api/machines?${queryString({ $filter: filter, $top: '50' })}`, undefined, signal);
    } catch (error) {
      // The list API answers 404 when no recent device matches.
      if (isToolError(error, 'not_found')) return [];
      throw error;
    }
    parseEntity(machineListSchema, body, 'Machine list');
    return (body as { value: Machine[] }).value;
  }

  /** One API call with auth, timeout, 429 handling and error mapping. Returns the parsed JSON body. */
  private async send(op: Operation, method: 'GET' | 'POST', path: string, payload?: unknown, signal?: AbortSignal): Promise<unknown> {
    const isWrite = WRITES.has(op);
    let retried401 = false;
    let waited = 0;
    let rateLimited = 0; // 429s so far: each is retried (bounded); the one re-sign-in after a 401 is not counted
    for (;;) {
      const token = await this.opts.tokens.getToken();
      if (this.opts.limiter) await this.acquire(this.opts.limiter, signal);
      // The last moment to stop: after it, the request is on the wire.
      if (signal?.aborted) throw cancelled(op);
      const sentAt = performance.now();
      let answer: { status: number; header(name: string): string | null; text: string };
      try {
        answer = await this.request(method, path, token, payload, signal);
        this.metrics.defenderRequest(op, String(answer.status), (performance.now() - sentAt) / 1000);
      } catch (failure) {
        const { error, timedOut } = failure as WireFailure;
        this.metrics.defenderRequest(op, signal?.aborted ? 'cancelled' : timedOut ? 'timeout' : 'network', (performance.now() - sentAt) / 1000);
        if (signal?.aborted) throw cancelledInFlight(op, isWrite);
        throw this.networkError(error, op, isWrite, timedOut);
      }
      const { status, text } = answer;

      if (status === 429) {
        const waitMs = retryAfterMs(answer.header('retry-after'), rateLimited, this.now());
        rateLimited++;
        // Hold every other call too: Defender counts them against the same budget.
        // (If the shared store is down, the next acquire fails with store_unavailable anyway.)
        await this.opts.limiter?.pauseFor(Math.min(waitMs, this.maxRetryWaitMs)).catch(() => undefined);
        if (rateLimited <= this.max429Retries && waited + waitMs <= this.maxRetryWaitMs) {
          waited += waitMs;
          this.opts.logger.info(`Defender API rate limit (429) on ${op}; retrying in ${Math.ceil(waitMs / 1000)} s.`);
          await abortable(this.sleep(waitMs), signal, () => cancelled(op));
          continue;
        }
        const { code, target } = errorDetails(text, this.opts.secrets);
        throw new ToolError(
          'rate_limited',
          `The Defender API is rate-limiting this app (HTTP 429); the request was not accepted.`,
          `Wait ${Math.ceil(waitMs / 1000)} seconds and call again. The API allows 100 calls a minute and 1,500 an hour per app.`,
          { status, code, target },
          { retryAfterSeconds: Math.ceil(waitMs / 1000) },
        );
      }
      if (status === 401 && !retried401) {
        // A revoked or rotated token: sign in again once. The request was refused, so resending is safe.
        retried401 = true;
        this.opts.tokens.invalidate();
        continue;
      }
      if (status >= 200 && status < 300) {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          const what = `The Defender API answered HTTP ${status} to ${op} with ${text.trim() === '' ? 'an empty body' : 'a body that is not JSON'}`;
          if (isWrite) {
            throw new ToolError('outcome_unknown', `${what}: the request was accepted, but its action could not be read.`, CHECK_ACTIONS);
          }
          throw new ToolError('upstream', `${what}.`, 'Retry in a moment; if it repeats, a proxy may be rewriting responses.', { status });
        }
      }
      throw mapErrorResponse(op, status, text, this.opts.secrets);
    }
  }

  /**
   * One HTTP exchange. Without an injected `fetch` and without a proxy for the API host, node:http(s) on a
   * keep-alive Agent (transport.ts); otherwise `fetch` (undici's proxy dispatcher when HTTPS_PROXY applies).
   * The same headers either way. Failures come back as a WireFailure saying whether the timeout ended it.
   */
  private async request(method: 'GET' | 'POST', path: string, token: string, payload: unknown, signal: AbortSignal | undefined): Promise<WireAnswer> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${token}`,
      Accept: 'application/json',
      ...(payload !== undefined ? { 'Content-Type': 'application/json' } : {}),
    };
    const body = payload !== undefined ? JSON.stringify(payload) : undefined;
    const url = `${this.baseUrl}${path}`;
    this.direct ??= !this.opts.fetch && /^https?:$/.test(new URL(this.baseUrl).protocol) && proxyFor(this.baseUrl) === undefined;
    if (this.direct) {
      // `fetch` sends `user-agent: node`; so does this path, so the API sees the same client.
      return wireRequest({ method, url: new URL(url), headers: { ...headers, 'User-Agent': 'node' }, body, timeoutMs: this.opts.timeoutMs, signal });
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.opts.timeoutMs);
    const onCancel = () => controller.abort();
    signal?.addEventListener('abort', onCancel, { once: true });
    try {
      const res = await this.fetchImpl(url, { method, headers, body, signal: controller.signal });
      const text = await res.text();
      return { status: res.status, header: (name) => res.headers.get(name), text };
    } catch (error) {
      throw new WireFailure(error, controller.signal.aborted && !signal?.aborted, !!signal?.aborted);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onCancel);
    }
  }

  /** Take a budget slot, counting the wait (on the budget's own clock) or the refusal. */
  private async acquire(limiter: CallBudget, signal: AbortSignal | undefined): Promise<void> {
    const start = this.now();
    try {
      await limiter.acquire({ user: this.opts.budgetUser?.(), signal });
    } catch (error) {
      if (isToolError(error, 'rate_limited')) this.metrics.budgetRefused();
      throw error;
    }
    this.metrics.budgetWait((this.now() - start) / 1000);
  }

  private networkError(error: unknown, op: Operation, isWrite: boolean, timedOut: boolean): ToolError {
    const cause = (error as { cause?: { code?: string } }).cause;
    const code = cause?.code ?? (error as { code?: string }).code;
    const viaProxy = timedOut ? undefined : proxyFailure(error, this.baseUrl);
    if (viaProxy?.neverSent) {
      // The proxy refused the tunnel or could not be reached: nothing left for Defender.
      return new ToolError(
        'upstream',
        `Could not reach the Defender API at ${this.baseUrl}: ${viaProxy.text}.`,
        'Check HTTPS_PROXY / HTTP_PROXY (and the proxy\'s rules for this host), or list the host in NO_PROXY if it must be reached directly; then retry. Nothing was sent.',
      );
    }
    const neverSent = !timedOut && (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN');
    if (isWrite && !neverSent) {
      // The request may have reached Defender: its fate is unknown, so it must not be re-sent blindly.
      return new ToolError(
        'outcome_unknown',
        timedOut
          ? `The Defender API did not answer ${op} within ${this.opts.timeoutMs} ms; the request may or may not have been accepted.`
          : `The connection to the Defender API failed during ${op} (${code ?? 'network error'}); the request may or may not have been accepted.`,
        CHECK_ACTIONS,
      );
    }
    if (timedOut) {
      return new ToolError(
        'timeout',
        `The Defender API did not answer ${op} within ${this.opts.timeoutMs} ms.`,
        'Retry; raise MDE_HTTP_TIMEOUT_MS if the network is slow.',
      );
    }
    return new ToolError(
      'upstream',
      `Could not reach the Defender API at ${this.baseUrl} (${code ?? (error as Error).message}${viaProxy ? `, ${viaProxy.text}` : ''}).`,
      'Check MDE_API_URL and the network path to it, then retry. Nothing was sent.',
    );
  }
}

const odata = (value: string) => value.replace(/'/g, "''");
const queryString = (params: Record<string, string>) => new URLSearchParams(params).toString().replace(/\+/g, '%20');

