/**
 * The tool call in progress, as seen from code that runs on its behalf but is shared by every session
 * (the Defender client's token lookup, the logger's MCP sink, the audit trail, the confirmation gate).
 * The error boundary in server.ts enters it around each handler; async work started by the handler
 * (including what runs after an elicitation answer arrives) sees the same call.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ServerNotification } from '@modelcontextprotocol/sdk/types.js';
import { principalKey, type Caller } from './auth/caller.js';
import type { TokenProvider } from './auth/token-provider.js';

export interface CallScope {
  /** The MCP server (session) the call arrived on. */
  server: object;
  /** The MCP session (HTTP), for the client's logging level. */
  sessionId: string | undefined;
  /** The JSON-RPC id of the call: elicitation and notifications go out on its own stream. */
  requestId: string | number;
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

/** The cancellation of the call in progress (remote mode). */
export function currentSignal(): AbortSignal | undefined {
  return currentCall()?.signal;
}

/** Whose fair share of the API budget the call in progress counts against: its signed-in principal. */
export function currentPrincipal(): string | undefined {
  const caller = currentCall()?.caller;
  return caller && caller.kind !== 'anonymous' ? principalKey(caller) : undefined;
}
