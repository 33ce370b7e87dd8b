/**
 * One shape for every tool: `defineTool` takes the name, the texts, the zod input and output shapes, all
 * four hints and the handler, whose arguments are inferred from the input shape (no hand-written types,
 * no casts at registration). server.ts registers the list; read-only mode keeps the tools whose own
 * `readOnlyHint` is true.
 */
import type { McpServer, ToolCallback } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ShapeOutput } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { Approvals } from '../approval/approvals.js';
import type { Caller } from '../auth/caller.js';
import type { DefenderApi } from '../defender/client.js';
import type { UnrestrictSubmitter } from '../defender/unrestrict.js';
import type { Logger } from '../log.js';
import type { WriteGuard } from './write-guard.js';

export interface ToolHints {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

/**
 * What one tool call knows about its request. An object so that transports can add to it (a remote
 * transport adds the signed-in caller and a per-request token provider) without touching every tool.
 */
export interface RequestContext {
  /** The JSON-RPC id of this call: prompts and notifications that belong to it name it (HTTP transports route by it). */
  requestId?: string | number;
  /** What the transport's authentication established about the caller (remote transports); none over stdio. */
  authInfo?: AuthInfo;
  signal?: AbortSignal;
  progressToken?: string | number;
  sendNotification?: (notification: ServerNotification) => Promise<void>;
  /** The connected MCP client's name and version, for the audit trail. */
  client?: { name: string; version: string };
  /** Remote mode: the signed-in caller (from `authInfo`), named in the audit and bound into confirmation tokens. */
  caller?: Caller;
}

/** The services tools use, built once per server by createServer. */
export interface ToolDeps {
  api: DefenderApi;
  guard: WriteGuard;
  unrestrict: UnrestrictSubmitter;
  logger: Logger;
  polling: { intervalMs: number; now: () => number; sleep: (ms: number) => Promise<void> };
  /** The two-person rule (MDE_APPROVAL=two-person); undefined when off. */
  approvals?: Approvals;
}

/** What else this server registers, for descriptions that name other tools only when they exist. */
export interface Registered {
  /** The two-person rule's tools (approve_action, get_approval, ...). */
  twoPerson: boolean;
}

export interface ToolDefinition<I extends z.ZodRawShape, O extends z.ZodRawShape> {
  name: string;
  title: string;
  description: string | ((registered: Registered) => string);
  inputSchema: I;
  outputSchema: O;
  annotations: ToolHints;
  handler: (args: ShapeOutput<I>, ctx: RequestContext, deps: ToolDeps) => Promise<CallToolResult>;
}

/** Wraps a handler in the server's error boundary and builds its request context. */
export type Boundary = (
  name: string,
  run: (ctx: RequestContext) => Promise<CallToolResult>,
) => (extra: RequestHandlerExtra<ServerRequest, ServerNotification>) => Promise<CallToolResult>;

/** A defined tool: its metadata, and how to register it (the input type stays inside). */
export interface Tool {
  readonly name: string;
  readonly annotations: ToolHints;
  register(server: McpServer, deps: ToolDeps, boundary: Boundary): void;
}

export function defineTool<I extends z.ZodRawShape, O extends z.ZodRawShape>(def: ToolDefinition<I, O>): Tool & { definition: ToolDefinition<I, O> } {
  assertHints(def.name, def.annotations);
  return {
    name: def.name,
    annotations: def.annotations,
    definition: def,
    register(server, deps, boundary) {
      // The SDK types its callback with a conditional type that TypeScript cannot resolve for a generic
      // shape; for every concrete tool it is exactly this function's type, so this is the one place it is
      // spelled out. Handlers themselves are checked against their own schema.
      const callback = ((args: ShapeOutput<I>, extra: RequestHandlerExtra<ServerRequest, ServerNotification>) =>
        boundary(def.name, (ctx) => def.handler(args, ctx, deps))(extra)) as ToolCallback<I>;
      server.registerTool<O, z.ZodObject<I, z.core.$strict>>(
        def.name,
        {
          title: def.title,
          description: typeof def.description === 'function' ? def.description({ twoPerson: deps.approvals !== undefined }) : def.description,
          inputSchema: strictInput(def.name, def.inputSchema),
          outputSchema: def.outputSchema,
          annotations: { title: def.title, ...def.annotations },
        },
        callback,
      );
    },
  };
}

/**
 * Unknown arguments are refused, naming them (an agent that sends `confirmed: true` must learn it means
 * nothing), and the schema says `additionalProperties: false`.
 */
export function strictInput<I extends z.ZodRawShape>(tool: string, shape: I) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown argument${issue.keys.length === 1 ? '' : 's'} ${issue.keys.map((k) => JSON.stringify(k.slice(0, 64))).join(', ')}: ${tool} takes only ${known.join(', ')}. Nothing was sent.`
        : undefined,
  });
}

/** A mislabelled tool is refused: every hint explicit, and read-only never destructive. */
function assertHints(name: string, a: ToolHints): void {
  for (const hint of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const) {
    if (typeof a[hint] !== 'boolean') throw new Error(`Tool ${name} must declare ${hint} explicitly.`);
  }
  if (a.readOnlyHint && a.destructiveHint) throw new Error(`Tool ${name} cannot be both read-only and destructive.`);
}
