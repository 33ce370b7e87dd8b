/**
 * createServer(deps): wires the tools to the MCP SDK and owns the one boundary that turns every thrown
 * error into an `isError` result with actionable text. Knows nothing about transports or config files.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import { NO_AUDIT, type AuditTrail } from './audit.js';
import { NO_POLICY, type ConfirmationMode, type Policy } from './config.js';
import { ConfirmationGate, type Elicitor } from './confirmation/gate.js';
import { ConfirmationTokens } from './confirmation/token.js';
import type { DefenderApi } from './defender/client.js';
import { ToolError, renderError } from './errors.js';
import type { Logger } from './log.js';
import { createCancelMachineActionTool } from './tools/cancel-machine-action.js';
import { createFindMachineTool } from './tools/find-machine.js';
import { createGetMachineActionTool } from './tools/get-machine-action.js';
import type { RequestContext } from './tools/shared.js';
import { createListMachineActionsTool } from './tools/list-machine-actions.js';
import { createRemoveAppRestrictionTool } from './tools/remove-app-restriction.js';
import { createWriteGuard } from './tools/write-guard.js';
import { VERSION } from './version.js';
import { principalKey, type Caller } from './auth/caller.js';
import type { TokenProvider } from './auth/token-provider.js';
import { currentCall, runInCall } from './request-scope.js';

export interface ServerDeps {
  api: DefenderApi;
  logger: Logger;
  confirmation: { mode: ConfirmationMode; skip: boolean };
  /** Audit trail for write tools; none when omitted. */
  audit?: AuditTrail;
  /** Policy guards for write tools; none when omitted. */
  policy?: Policy;
  /** Register only read-only tools. */
  readOnly?: boolean;
  /** Signs confirmation tokens; a fresh random key per process when omitted. */
  tokens?: ConfirmationTokens;
  /** Values that must never appear in a result (client secret, certificate password). */
  secrets?: readonly string[];
  now?: () => number;
  /** How long a human has to answer a confirmation prompt. */
  elicitationTimeoutMs?: number;
  /** Polling of get_machine_action's waitForCompletion (tests use a fake clock). */
  polling?: { pollIntervalMs?: number; now?: () => number; sleep?: (ms: number) => Promise<void> };
  /**
   * Remote mode (one server per HTTP session): the identity each caller's Defender calls use. Logs of a
   * call then go only to that call's stream, never to other sessions.
   */
  remote?: { tokensFor(caller: Caller): TokenProvider };
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
    elicit: async (message, requestedSchema, signal) => {
      // On the call's own stream: over HTTP, a client without a standalone GET stream would never see it.
      const relatedRequestId = currentCall()?.requestId;
      const answer = await server.server.elicitInput(
        { message, requestedSchema },
        { timeout: deps.elicitationTimeoutMs ?? ELICITATION_TIMEOUT_MS, ...(signal ? { signal } : {}), ...(relatedRequestId !== undefined ? { relatedRequestId } : {}) },
      );
      return { action: answer.action, content: answer.content as Record<string, unknown> | undefined };
    },
  };
  const gate = new ConfirmationGate({
    mode: deps.confirmation.mode,
    skip: deps.confirmation.skip,
    tokens: deps.tokens ?? new ConfirmationTokens({ now: deps.now }),
    elicitor,
    // Remote mode: a token issued to one analyst cannot be redeemed by another.
    principal: () => {
      const caller = currentCall()?.caller;
      return caller ? principalKey(caller) : undefined;
    },
  });

  const writeGuard = createWriteGuard({
    api: deps.api,
    gate,
    audit: deps.audit ?? NO_AUDIT,
    policy: deps.policy ?? NO_POLICY,
    logger: deps.logger,
    clientInfo: () => server.server.getClientVersion(),
    caller: () => currentCall()?.caller,
  });

  // What the human should see in the client (retries, budget waits, confirmation outcomes, sign-in
  // prompts) also goes out as MCP logging notifications; the client's logging/setLevel filters them.
  // During a call they go out on that call's stream (over HTTP, the only one a client must have open);
  // in remote mode, only to the session the call belongs to, and nothing outside a call.
  const removeSink = deps.logger.addSink?.((level, message) => {
    if (!server.isConnected()) return;
    const call = currentCall();
    if (deps.remote && call?.server !== server) return;
    const params = { level, logger: 'mde-app-restriction-mcp', data: message };
    if (call?.server === server) {
      if (loggingIgnored(server, level, call.sessionId)) return;
      call.notify({ method: 'notifications/message', params }).catch(() => undefined);
      return;
    }
    server.server.sendLoggingMessage(params).catch(() => undefined);
  });
  server.server.onclose = () => removeSink?.();

  const register = <A>(tool: { name: string; config: ToolConfig; handler: (args: A, ctx: RequestContext) => Promise<CallToolResult> }) => {
    assertHints(tool.name, tool.config.annotations);
    return server.registerTool(tool.name, tool.config as never, withErrorBoundary(server, tool.name, tool.handler, deps) as never);
  };

  register(createFindMachineTool({ api: deps.api }));
  register(createGetMachineActionTool({ api: deps.api, logger: deps.logger, ...deps.polling }));
  register(createListMachineActionsTool({ api: deps.api }));
  // In read-only mode the write tools are not registered at all: clients never see them.
  if (!deps.readOnly) {
    register(createRemoveAppRestrictionTool({ api: deps.api, guard: writeGuard, now: deps.now }));
    register(createCancelMachineActionTool({ api: deps.api, guard: writeGuard }));
  }
  return server;
}

/** What every tool file exports: schemas, annotations and description together. */
interface ToolConfig {
  title: string;
  description: string;
  inputSchema: Record<string, unknown>;
  outputSchema: Record<string, unknown>;
  annotations: { title: string; readOnlyHint: boolean; destructiveHint: boolean; idempotentHint: boolean; openWorldHint: boolean };
}

/** Registration refuses a mislabelled tool: every hint explicit, and read-only never destructive. */
function assertHints(name: string, a: ToolConfig['annotations']): void {
  for (const hint of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const) {
    if (typeof a[hint] !== 'boolean') throw new Error(`Tool ${name} must declare ${hint} explicitly.`);
  }
  if (a.readOnlyHint && a.destructiveHint) throw new Error(`Tool ${name} cannot be both read-only and destructive.`);
}

/** The error boundary: typed errors become `isError` results; nothing escapes to crash the server. */
function withErrorBoundary<A>(server: McpServer, name: string, handler: (args: A, ctx: RequestContext) => Promise<CallToolResult>, deps: ServerDeps) {
  return async (args: A, extra: RequestHandlerExtra<ServerRequest, ServerNotification>): Promise<CallToolResult> => {
    try {
      const ctx: RequestContext = {
        signal: extra.signal,
        progressToken: extra._meta?.progressToken,
        sendNotification: (n) => extra.sendNotification(n),
      };
      // Over stdio there is one client and one identity: no call scope (and no async-context cost).
      if (!deps.remote) return await handler(args, ctx);
      const caller = callerOf(extra.authInfo);
      if (!caller) throw new Error('remote mode: a call arrived without a caller');
      const scope = {
        server,
        sessionId: extra.sessionId,
        requestId: extra.requestId,
        caller,
        tokens: deps.remote.tokensFor(caller),
        notify: (n: ServerNotification) => extra.sendNotification(n),
      };
      return await runInCall(scope, () => handler(args, ctx));
    } catch (error) {
      const text = renderError(error, deps.secrets ?? []);
      if (error instanceof ToolError) deps.logger.info(`${name}: ${text.split('\n')[0]}`);
      else deps.logger.error(`${name}: unexpected ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      return { isError: true, content: [{ type: 'text', text }] };
    }
  };
}

/** The caller the HTTP layer attached to the request (remote mode). */
function callerOf(authInfo: { extra?: Record<string, unknown> } | undefined): Caller | undefined {
  return authInfo?.extra?.caller as Caller | undefined;
}

/** Honour the client's logging/setLevel for notifications sent on a call's stream. */
function loggingIgnored(server: McpServer, level: string, sessionId: string | undefined): boolean {
  // The SDK keeps the level per session but only checks it in sendLoggingMessage, which cannot target a
  // call's stream; its check is reused here.
  const check = (server.server as unknown as { isMessageIgnored?: (level: string, sessionId?: string) => boolean }).isMessageIgnored;
  return check ? check(level, sessionId) : false;
}
