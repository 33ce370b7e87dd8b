/**
 * The tool call in progress, as seen from code that runs on its behalf but is shared by every session
 * (the Defender client's token lookup, the logger's MCP sink, the audit trail, the confirmation gate).
 * The error boundary in server.ts enters it around each handler; async work started by the handler
 * (including what runs after an elicitation answer arrives) sees the same call.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ServerNotification } from '@modelcontextprotocol/sdk/types.js';
import { principalKey, type Caller } from './auth/caller.js';
import type { LogFields } from './log.js';
import type { TokenProvider } from './auth/token-provider.js';

export interface CallScope {
  /** The MCP server (session) the call arrived on. */
  server: object;
  /** The MCP session (HTTP), for the client's logging level. */
  sessionId: string | undefined;
  /** The JSON-RPC id of the call: elicitation and notifications go out on its own stream. */
  requestId: string | number;
  /** The tool called (JSON logs name it). */
  tool?: string;
  /** Remote mode: who is calling (undefined over stdio). */
  caller: Caller | undefined;
  /** Remote mode: the identity Defender calls of this caller use (OBO, or the app's own). */
  tokens: TokenProvider | undefined;
  /** Aborted when the client cancels the call (or its connection goes). */
  signal?: AbortSignal;
  /** Send a notification related to this call. */
  notify(notification: ServerNotification): Promise<void>;
}

const storage = new AsyncLocalStorage<CallScope>();

export function runInCall<T>(scope: CallScope, fn: () => T): T {
  return storage.run(scope, fn);
}

export function currentCall(): CallScope | undefined {
  return storage.getStore();
}

/** What a JSON log line says about the call in progress: its request id, tool, user and session (a prefix). */
export function callLogFields(): LogFields | undefined {
  const call = storage.getStore();
  if (!call) return undefined;
  const c = call.caller;
  const user = c?.kind === 'user' ? (c.preferredUsername ?? c.oid) : c?.kind === 'app' ? `app ${c.appId}` : undefined;
  return {
    requestId: call.requestId,
    ...(call.tool ? { tool: call.tool } : {}),
    ...(user ? { user } : {}),
    // A prefix, as the text lines give it: the id itself lets its holder use the session.
    ...(call.sessionId ? { session: call.sessionId.slice(0, 8) } : {}),
  };
}

/** Whose fair share of the API budget the call in progress counts against: its signed-in principal. */
export function currentPrincipal(): string | undefined {
  const caller = currentCall()?.caller;
  return caller && caller.kind !== 'anonymous' ? principalKey(caller) : undefined;
}
