/**
 * createServer(deps): wires the tools to the MCP SDK and owns the one boundary that turns every thrown
 * error into an `isError` result with actionable text. Knows nothing about transports or config files.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { NO_AUDIT, type AuditTrail } from './audit.js';
import { NO_POLICY, type ConfirmationMode, type Policy } from './config.js';
import { ConfirmationGate, type Elicitor } from './confirmation/gate.js';
import { ConfirmationTokens } from './confirmation/token.js';
import type { DefenderApi } from './defender/client.js';
import { ToolError, renderError } from './errors.js';
import type { Logger } from './log.js';
import { createRemoveAppRestrictionTool } from './tools/remove-app-restriction.js';
import { createWriteGuard } from './tools/write-guard.js';
import { VERSION } from './version.js';

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
}

export const ELICITATION_TIMEOUT_MS = 5 * 60_000;

export function createServer(deps: ServerDeps): McpServer {
  const server = new McpServer(
    { name: 'mde-app-restriction-mcp', version: VERSION },
    {
      capabilities: { tools: {} },
      instructions:
        'Lifts Microsoft Defender for Endpoint app-execution restrictions after a human confirms. Never pass a confirmationToken the human has not approved.',
    },
  );

  const elicitor: Elicitor = {
    canElicit: () => Boolean(server.server.getClientCapabilities()?.elicitation?.form),
    elicit: async (message, requestedSchema) => {
      const answer = await server.server.elicitInput(
        { message, requestedSchema },
        { timeout: deps.elicitationTimeoutMs ?? ELICITATION_TIMEOUT_MS },
      );
      return { action: answer.action, content: answer.content as Record<string, unknown> | undefined };
    },
  };
  const gate = new ConfirmationGate({
    mode: deps.confirmation.mode,
    skip: deps.confirmation.skip,
    tokens: deps.tokens ?? new ConfirmationTokens({ now: deps.now }),
    elicitor,
  });

  const writeGuard = createWriteGuard({
    api: deps.api,
    gate,
    audit: deps.audit ?? NO_AUDIT,
    policy: deps.policy ?? NO_POLICY,
    logger: deps.logger,
    clientInfo: () => server.server.getClientVersion(),
  });

  // In read-only mode the write tools are not registered at all: clients never see them.
  if (!deps.readOnly) {
    const tool = createRemoveAppRestrictionTool({ api: deps.api, guard: writeGuard, now: deps.now });
    server.registerTool(tool.name, tool.config, guard(tool.name, tool.handler, deps));
  }
  return server;
}

/** The error boundary: typed errors become `isError` results; nothing escapes to crash the server. */
function guard<A>(name: string, handler: (args: A) => Promise<CallToolResult>, deps: ServerDeps) {
  return async (args: A): Promise<CallToolResult> => {
    try {
      return await handler(args);
    } catch (error) {
      const text = renderError(error, deps.secrets ?? []);
      if (error instanceof ToolError) deps.logger.info(`${name}: ${text.split('\n')[0]}`);
      else deps.logger.error(`${name}: unexpected ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      return { isError: true, content: [{ type: 'text', text }] };
    }
  };
}
