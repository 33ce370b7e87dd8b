/**
 * createServer(deps): wires the tools to the MCP SDK and owns the one boundary that turns every thrown
 * error into an `isError` result with actionable text. Knows nothing about transports or config files.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { NO_AUDIT, type AuditTrail } from './audit.js';
import { NO_POLICY, type ConfirmationMode, type Policy } from './config.js';
import type { Elicitor } from './confirmation/confirm.js';
import { ConfirmationTokens, type TokenLedger } from './confirmation/token.js';
import type { DefenderApi } from './defender/client.js';
import { createUnrestrictSubmitter } from './defender/unrestrict.js';
import { isToolError, renderError } from './errors.js';
import type { Logger } from './log.js';
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
  const toolDeps: ToolDeps = {
    api: deps.api,
    logger: deps.logger,
    unrestrict: createUnrestrictSubmitter({ api: deps.api, now, ...(deps.flights ? { flights: deps.flights } : {}) }),
    guard: createWriteGuard({
      api: deps.api,
      confirmation: { ...deps.confirmation, tokens, ledger: deps.ledger ?? tokens.ledger, elicitor },
      audit: deps.audit ?? NO_AUDIT,
      policy: deps.policy ?? NO_POLICY,
      logger: deps.logger,
    }),
    polling: {
      intervalMs: deps.polling?.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
      now: deps.polling?.now ?? Date.now,
      sleep: deps.polling?.sleep ?? ((ms) => new Promise<void>((resolve) => setTimeout(resolve, ms))),
    },
  };

  // What the human should see in the client (retries, budget waits, confirmation outcomes, sign-in
  // prompts) also goes out as MCP logging notifications; the client's logging/setLevel filters them.
  deps.logger.addSink?.((level, message) => {
    if (!server.isConnected()) return;
    server.server.sendLoggingMessage({ level, logger: 'mde-app-restriction-mcp', data: message }).catch(() => undefined);
  });

  /** The error boundary: typed errors become `isError` results; nothing escapes to crash the server. */
  const boundary: Boundary = (name, run) => async (extra) => {
    try {
      const client = server.server.getClientVersion();
      return await run({
        requestId: extra.requestId,
        ...(extra.authInfo ? { authInfo: extra.authInfo } : {}),
        signal: extra.signal,
        progressToken: extra._meta?.progressToken,
        sendNotification: (n) => extra.sendNotification(n),
        ...(client ? { client: { name: client.name, version: client.version } } : {}),
      });
    } catch (error) {
      const text = renderError(error, deps.secrets ?? []);
      if (isToolError(error)) deps.logger.info(`${name}: ${text.split('\n')[0]}`);
      else deps.logger.error(`${name}: unexpected ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      return { isError: true, content: [{ type: 'text', text }] };
    }
  };

  // In read-only mode a tool that is not read-only by its own hint is not registered: clients never see it.
  for (const tool of deps.tools ?? TOOLS) {
    if (deps.readOnly && !tool.annotations.readOnlyHint) continue;
    tool.register(server, toolDeps, boundary);
  }
  return server;
}
