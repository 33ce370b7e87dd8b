/**
 * Metrics over prom-client, served at /metrics on their own listener (MDE_METRICS_PORT). A lazy chunk:
 * cli.ts loads it only when metrics are on, so stdio start-up does not pay for prom-client. The listener
 * has no authentication: it binds to loopback unless MDE_METRICS_HOST says otherwise.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { StartupError } from '../errors.js';
import type { Metrics } from './metrics.js';

/** A label value must be a short code word; anything else is folded into `other` (no unbounded labels). */
const WORD = /^[a-z][a-z0-9_]{0,39}$/;
const word = (value: string) => (WORD.test(value) ? value : 'other');
const STATUS = /^(\d{3}|network|timeout|cancelled)$/;
const AADSTS = /^AADSTS\d{1,10}$/;

const LATENCY_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const CALL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const WAIT_BUCKETS = [0, 0.1, 0.5, 1, 5, 10, 20, 60];

export interface PrometheusMetrics extends Metrics {
  readonly registry: Registry;
  /** The exposition text, as /metrics serves it. */
  scrape(): Promise<string>;
}

/** A registry of its own (never prom-client's global one), with the process metrics unless told otherwise. */
export function createPrometheusMetrics(opts: { processMetrics?: boolean } = {}): PrometheusMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  const toolCalls = new Counter({ name: 'mde_tool_calls_total', help: 'Tool calls by tool and outcome (result outcome, ok, or error kind).', labelNames: ['tool', 'outcome'], registers });
  const toolDuration = new Histogram({ name: 'mde_tool_call_duration_seconds', help: 'Tool call duration, confirmation prompts included.', labelNames: ['tool'], buckets: CALL_BUCKETS, registers });
  const confirmations = new Counter({ name: 'mde_confirmations_total', help: 'Confirmation results by path (elicitation_accepted, elicitation_declined, token_issued, token_rejected, ...).', labelNames: ['path'], registers });
  const requests = new Counter({ name: 'mde_defender_requests_total', help: 'HTTP requests to the Defender API by operation and status (network, timeout: no answer; cancelled: the call was cancelled in flight).', labelNames: ['operation', 'status'], registers });
  const latency = new Histogram({ name: 'mde_defender_request_duration_seconds', help: 'Defender API request latency by operation.', labelNames: ['operation'], buckets: LATENCY_BUCKETS, registers });
  const throttled = new Counter({ name: 'mde_defender_rate_limited_total', help: 'Upstream HTTP 429 answers from the Defender API by operation.', labelNames: ['operation'], registers });
  const budgetWait = new Histogram({ name: 'mde_budget_wait_seconds', help: 'Time each Defender request waited for the call budget (0: a slot was free).', buckets: WAIT_BUCKETS, registers });
  const budgetRefusals = new Counter({ name: 'mde_budget_refusals_total', help: 'Calls refused because the call budget would not free up within MDE_RATE_LIMIT_MAX_WAIT_MS.', registers });
  const signIn = new Counter({ name: 'mde_sign_in_failures_total', help: 'Tool calls that failed at an Entra ID sign-in (app credentials, managed identity, device code, On-Behalf-Of), by AADSTS code; none: Entra gave no code (network, timeout).', labelNames: ['code'], registers });
  const refused = new Counter({ name: 'mde_http_auth_refusals_total', help: 'Remote mode: requests refused at sign-in by HTTP status and reason (the OAuth error code).', labelNames: ['status', 'reason'], registers });
  const store = new Counter({ name: 'mde_store_errors_total', help: 'Errors of the shared store (Redis) by operation.', labelNames: ['operation'], registers });

  let readBudget: (() => { minute: number; hour: number } | Promise<{ minute: number; hour: number }>) | undefined;
  let limits: { perMinute: number; perHour: number } | undefined;
  new Gauge({
    name: 'mde_budget_used',
    help: 'Defender calls made or reserved in the current rolling window (minute, hour).',
    labelNames: ['window'],
    registers,
    async collect() {
      if (!readBudget) return;
      try {
        const used = await readBudget();
        this.set({ window: 'minute' }, used.minute);
        this.set({ window: 'hour' }, used.hour);
      } catch {
        // The shared store cannot be read (counted in mde_store_errors_total): no value rather than a stale one.
        this.reset();
      }
    },
  });
  new Gauge({
    name: 'mde_budget_limit',
    help: 'The call budget per rolling window (MDE_RATE_LIMIT_PER_MINUTE, MDE_RATE_LIMIT_PER_HOUR).',
    labelNames: ['window'],
    registers,
    collect() {
      if (!limits) return;
      this.set({ window: 'minute' }, limits.perMinute);
      this.set({ window: 'hour' }, limits.perHour);
    },
  });
  let readSessions: (() => number) | undefined;
  new Gauge({
    name: 'mde_http_sessions_open',
    help: 'Remote mode: open MCP sessions.',
    registers,
    collect() {
      if (readSessions) this.set(readSessions());
    },
  });
  let readApprovals: (() => number | Promise<number>) | undefined;
  new Gauge({
    name: 'mde_approvals_pending',
    help: 'Two-person approvals waiting for a second person.',
    registers,
    async collect() {
      if (!readApprovals) return;
      try {
        this.set(await readApprovals());
      } catch {
        this.reset();
      }
    },
  });

  return {
    registry,
    scrape: () => registry.metrics(),
    toolCall(tool, outcome, seconds) {
      toolCalls.inc({ tool: word(tool), outcome: word(outcome) });
      toolDuration.observe({ tool: word(tool) }, seconds);
    },
    confirmation: (path) => confirmations.inc({ path: word(path) }),
    defenderRequest(operation, status, seconds) {
      const op = word(operation);
      requests.inc({ operation: op, status: STATUS.test(status) ? status : 'other' });
      latency.observe({ operation: op }, seconds);
      if (status === '429') throttled.inc({ operation: op });
    },
    budgetWait: (seconds) => budgetWait.observe(seconds),
    budgetRefused: () => budgetRefusals.inc(),
    signInFailure: (code) => signIn.inc({ code: AADSTS.test(code) ? code : code === 'none' ? 'none' : 'other' }),
    callerRefused: (status, reason) => refused.inc({ status: String(Math.trunc(status)), reason: word(reason) }),
    storeError: (operation) => store.inc({ operation: word(operation) }),
    watchBudget(read, l) {
      readBudget = read;
      limits = l;
    },
    watchSessions(read) {
      readSessions = read;
    },
    watchApprovals(read) {
      readApprovals = read;
    },
  };
}

export interface MetricsListener {
  /** `http://<host>:<port>/metrics` as bound. */
  readonly url: string;
  /** The bound address (what the tests check: loopback unless MDE_METRICS_HOST says otherwise). */
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** Serve GET /metrics (nothing else) on its own listener. */
export async function serveMetrics(metrics: PrometheusMetrics, opts: { host: string; port: number }): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found: metrics are at /metrics.\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('Method not allowed.\n');
      return;
    }
    metrics.scrape().then(
      (text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (error: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`Metrics could not be collected: ${error instanceof Error ? error.message : String(error)}\n`),
    );
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new StartupError([`Cannot serve metrics on ${opts.host}:${opts.port} (${code}). Pick another MDE_METRICS_PORT (--metrics-port; 0 picks a free one) or MDE_METRICS_HOST (--metrics-host).`]);
  }
  // Scrapers keep connections open; they must not hold the process at shutdown.
  server.unref();
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/metrics`,
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
