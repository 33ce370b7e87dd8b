/**
 * createServer(deps): wires the tools to the MCP SDK and owns the one boundary that turns every thrown
 * error into an `isError` result with actionable text. Knows nothing about transports or config files.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, ServerNotification } from '@modelcontextprotocol/sdk/types.js';
import { NO_AUDIT, type AuditTrail } from './audit.js';
import type { ConfirmationMode } from './confirmation/confirm.js';
import { NO_POLICY, type Policy } from './policy.js';
import type { Elicitor } from './confirmation/confirm.js';
import { ConfirmationTokens, type TokenLedger } from './confirmation/token.js';
import type { DefenderApi } from './defender/client.js';
import { createUnrestrictSubmitter, type UnrestrictSubmitter } from './defender/unrestrict.js';
import type { Approvals } from './approval/approvals.js';
import type { Caller } from './auth/caller.js';
import type { TokenProvider } from './auth/token-provider.js';
import { currentCall, runInCall } from './request-scope.js';
import { isToolError, redact, renderError } from './errors.js';
import type { Logger } from './log.js';
import { NO_METRICS, outcomeOf, type Metrics } from './metrics/metrics.js';
import { cancelMachineAction } from './tools/cancel-machine-action.js';
import type { Boundary, Tool, ToolDeps } from './tools/define.js';
import { findMachine } from './tools/find-machine.js';
import { DEFAULT_POLL_INTERVAL_MS, getMachineAction } from './tools/get-machine-action.js';
import { listMachineActions } from './tools/list-machine-actions.js';
import { removeAppRestriction } from './tools/remove-app-restriction.js';
import { createWriteGuard } from './tools/write-guard.js';
import type { SingleFlight } from './store/types.js';
import { VERSION } from './version.js';

/** Every tool the server offers, one definition per file. */
export const TOOLS: readonly Tool[] = [findMachine, getMachineAction, listMachineActions, removeAppRestriction, cancelMachineAction];

export interface ServerDeps {
  api: DefenderApi;
  logger: Logger;
  confirmation: { mode: ConfirmationMode; skip: boolean };
  /** Audit trail for write tools; none when omitted. */
  audit?: AuditTrail;
  /** Policy guards for write tools; none when omitted. */
  policy?: Policy;
  /** Register only tools whose readOnlyHint is true. */
  readOnly?: boolean;
  /** The tools to offer; all of TOOLS when omitted. */
  tools?: readonly Tool[];
  /** Signs confirmation tokens; a fresh random key per process when omitted. */
  tokens?: ConfirmationTokens;
  /** Where spent tokens are remembered; the signer's in-memory ledger when omitted. */
  ledger?: TokenLedger;
  /** One write per device at a time; in this process when omitted, across replicas with the Redis store. */
  flights?: SingleFlight;
  /** Values that must never appear in a result (client secret, certificate password). */
  secrets?: readonly string[];
  now?: () => number;
  /** How long a human has to answer a confirmation prompt. */
  elicitationTimeoutMs?: number;
  /** Polling of get_machine_action's waitForCompletion (tests use a fake clock). */
  polling?: { pollIntervalMs?: number; now?: () => number; sleep?: (ms: number) => Promise<void> };
  /**
   * Remote mode (one server per HTTP session, everything else shared): the identity each caller's
   * Defender calls use. Logs of a call then go only to that call's stream, never to other sessions.
   */
  remote?: { tokensFor(caller: Caller): TokenProvider };
  /** One write per device at a time across every session (remote mode shares one); per server when omitted. */
  unrestrict?: UnrestrictSubmitter;
  /** What operators count (metrics/metrics.ts); nothing when omitted. */
  metrics?: Metrics;
  /** Enter a call scope over stdio too, so JSON log lines name the call (MDE_LOG_FORMAT=json). */
  scopeCalls?: boolean;
  /**
   * The two-person rule (shared by every session): lifting a restriction waits for a second analyst.
   * Its tools (`APPROVAL_TOOLS`, tools/approval-tools.ts) come with it, loaded only when it is on.
   */
  approvals?: { service: Approvals; tools: readonly Tool[] };
  /**
   * Remote mode: every tool call is passed through here, so shutdown waits for it to end even when its
   * client went away (a write may be on its way to Defender).
   */
  trackCall?: <T>(work: Promise<T>) => Promise<T>;
}

export const ELICITATION_TIMEOUT_MS = 5 * 60_000;

export function createServer(deps: ServerDeps): McpServer {
  const server = new McpServer(
    { name: 'mde-app-restriction-mcp', version: VERSION },
    {
      capabilities: { tools: {}, logging: {} },
      instructions:
        'Lifts Microsoft Defender for Endpoint app-execution restrictions after a human confirms. Never pass a confirmationToken the human has not approved.',
    },
  );

  const elicitor: Elicitor = {
    canElicit: () => Boolean(server.server.getClientCapabilities()?.elicitation?.form),
    elicit: async (message, requestedSchema, call) => {
      const answer = await server.server.elicitInput(
        { message, requestedSchema },
        {
          timeout: deps.elicitationTimeoutMs ?? ELICITATION_TIMEOUT_MS,
          ...(call.signal ? { signal: call.signal } : {}),
          // Over HTTP the prompt must travel on the call's own stream, not the standalone one.
          ...(call.requestId !== undefined ? { relatedRequestId: call.requestId } : {}),
        },
      );
      return { action: answer.action, content: answer.content as Record<string, unknown> | undefined };
    },
  };
  const tokens = deps.tokens ?? new ConfirmationTokens({ now: deps.now });
  const now = deps.now ?? Date.now;
  const metrics = deps.metrics ?? NO_METRICS;
  const toolDeps: ToolDeps = {
    api: deps.api,
    logger: deps.logger,
    unrestrict: deps.unrestrict ?? createUnrestrictSubmitter({ api: deps.api, now, ...(deps.flights ? { flights: deps.flights } : {}) }),
    guard: createWriteGuard({
      api: deps.api,
      confirmation: { ...deps.confirmation, tokens, ledger: deps.ledger ?? tokens.ledger, elicitor },
      audit: deps.audit ?? NO_AUDIT,
      policy: deps.policy ?? NO_POLICY,
      logger: deps.logger,
      metrics,
      ...(deps.approvals ? { approvals: deps.approvals.service } : {}),
      ...(deps.secrets ? { secrets: deps.secrets } : {}),
    }),
    ...(deps.approvals ? { approvals: deps.approvals.service } : {}),
    polling: {
      intervalMs: deps.polling?.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
      now: deps.polling?.now ?? Date.now,
      sleep: deps.polling?.sleep ?? ((ms) => new Promise<void>((resolve) => setTimeout(resolve, ms))),
    },
  };

  // What the human should see in the client (retries, budget waits, confirmation outcomes, sign-in
  // prompts) also goes out as MCP logging notifications: warnings and errors always, info only to a
  // client that asked with logging/setLevel (then the level it asked for and above).
  // During a call they go out on that call's stream (over HTTP, the only one a client must have open);
  // in remote mode only to the session the call belongs to, and nothing outside a call.
  const target = () => {
    if (!server.isConnected()) return undefined;
    const call = currentCall();
    if (call?.server === server) return { call, sessionId: call.sessionId };
    if (deps.remote) return undefined;
    return { call: undefined, sessionId: undefined };
  };
  const removeSink = deps.logger.addSink?.(
    (level, message) => {
      const t = target();
      if (!t || loggingIgnored(server, level, t.sessionId)) return;
      const params = { level, logger: 'mde-app-restriction-mcp', data: message };
      if (t.call) t.call.notify({ method: 'notifications/message', params }).catch(() => undefined);
      else server.server.notification({ method: 'notifications/message', params }).catch(() => undefined);
    },
    // Asked before the message is redacted: nobody to receive it, no work.
    (level) => {
      const t = target();
      return t !== undefined && !loggingIgnored(server, level, t.sessionId);
    },
  );
  server.server.onclose = () => removeSink?.();

  /** The error boundary: typed errors become `isError` results; nothing escapes to crash the server. */
  const boundary: Boundary = (name, run) => {
    const handle = inBoundary(name, run);
    return (extra) => (deps.trackCall ? deps.trackCall(handle(extra)) : handle(extra));
  };
  const inBoundary: Boundary = (name, run) => async (extra) => {
    const started = performance.now();
    try {
      const client = server.server.getClientVersion();
      const caller = extra.authInfo?.extra?.caller as Caller | undefined;
      const ctx = {
        requestId: extra.requestId,
        ...(extra.authInfo ? { authInfo: extra.authInfo } : {}),
        signal: extra.signal,
        progressToken: extra._meta?.progressToken,
        sendNotification: (n: ServerNotification) => extra.sendNotification(n),
        ...(client ? { client: { name: client.name, version: client.version } } : {}),
        ...(caller ? { caller } : {}),
      };
      const counted = (result: CallToolResult) => (metrics.toolCall(name, outcomeOf(result), (performance.now() - started) / 1000), redactResult(result, deps.secrets ?? []));
      // Over stdio there is one client and one identity: no call scope (and no async-context cost),
      // unless JSON log lines must name the call.
      if (!deps.remote && deps.scopeCalls) return counted(await runInCall({ server, sessionId: undefined, requestId: extra.requestId, tool: name, caller: undefined, tokens: undefined, signal: extra.signal, notify: ctx.sendNotification }, () => run(ctx)));
      if (!deps.remote) return counted(await run(ctx));
      if (!caller) throw new Error('remote mode: a call arrived without a caller');
      // Code shared by every session (the Defender client's token lookup, the log sink) finds the call
      // in progress, and with it this caller's Defender identity and this call's stream.
      const scope = { server, sessionId: extra.sessionId, requestId: extra.requestId, tool: name, caller, tokens: deps.remote.tokensFor(caller), signal: extra.signal, notify: ctx.sendNotification };
      return counted(await runInCall(scope, () => run(ctx)));
    } catch (error) {
      countFailure(metrics, name, error, started);
      const text = renderError(error, deps.secrets ?? []);
      if (isToolError(error)) deps.logger.info(`${name}: ${text.split('\n')[0]}`);
      else deps.logger.error(`${name}: unexpected ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      return { isError: true, content: [{ type: 'text', text }] };
    }
  };

  // In read-only mode a tool that is not read-only by its own hint is not registered: clients never see it.
  for (const tool of [...(deps.tools ?? TOOLS), ...(deps.approvals?.tools ?? [])]) {
    if (deps.readOnly && !tool.annotations.readOnlyHint) continue;
    tool.register(server, toolDeps, boundary);
  }
  return server;
}

/**
 * A result never carries a configured secret, a bearer token or a JWT, whatever brought it (a caller's
 * claim in an approval, a device field from Defender): each is replaced by [REDACTED]. Checked once on
 * the whole result; rebuilt only when something must go.
 */
function redactResult(result: CallToolResult, secrets: readonly string[]): CallToolResult {
  const json = JSON.stringify(result);
  if (redact(json, secrets) === json) return result;
  const clean = (value: unknown): unknown => {
    if (typeof value === 'string') return redact(value, secrets);
    if (Array.isArray(value)) return value.map(clean);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clean(v)]));
    return value;
  };
  return clean(result) as CallToolResult;
}

/** A failed call, by error kind; a failed Entra sign-in also by its AADSTS code. */
function countFailure(metrics: Metrics, tool: string, error: unknown, started: number): void {
  const kind = isToolError(error) ? error.kind : 'internal';
  metrics.toolCall(tool, kind, (performance.now() - started) / 1000);
  // An authentication error without an HTTP status came from the token endpoint, not from Defender (401).
  if (isToolError(error, 'authentication') && error.upstream.status === undefined) metrics.signInFailure(error.details.aadsts ?? 'none');
}

/**
 * Whether a logging notification at `level` is not for this session: below warning unless the client
 * asked with logging/setLevel, and below the level it asked for.
 */
function loggingIgnored(server: McpServer, level: string, sessionId: string | undefined): boolean {
  // The SDK keeps the level per session (its logging/setLevel handler) but checks it only in
  // sendLoggingMessage, which cannot target a call's stream, and lets everything through to a client
  // that never asked; its map and check are reused here.
  const sdk = server.server as unknown as { _loggingLevels?: Map<string | undefined, string>; isMessageIgnored?: (level: string, sessionId?: string) => boolean };
  if (!sdk._loggingLevels?.has(sessionId)) return level !== 'warning' && level !== 'error';
  return sdk.isMessageIgnored ? sdk.isMessageIgnored(level, sessionId) : false;
}
