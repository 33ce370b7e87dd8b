/**
 * Confirmation: nothing is written to Defender until a human said yes, by the strongest means the client
 * offers. `decide` is the one place that chooses: skip (the operator's flag), ask (MCP elicitation),
 * issue a token (no elicitation, mode auto), redeem a token (checked offline here, spent only after the
 * device passed the policy), or refuse. Its words (`ConfirmationPath`) are the audit's, the logs' and,
 * through `CONFIRMED_BY`, the results'.
 */
import { ToolError } from '../errors.js';

/** MDE_CONFIRMATION: auto (elicitation, else a token) or elicitation only. */
export type ConfirmationMode = 'auto' | 'elicitation';
import { approvalText, approvalTitle, deviceName, displayText, type ActionRequest, type DevicePreview } from './render.js';
import { REJECTION_TEXT, type TokenSubject, type ConfirmationTokens, type TokenLedger, type TokenRejection, type VerifiedToken } from './token.js';

/** Every way a confirmation can end: the one vocabulary of audit records, logs and results. */
export type ConfirmationPath =
  | 'elicitation_accepted'
  | 'elicitation_declined'
  | 'elicitation_cancelled'
  | 'elicitation_failed'
  | 'token_issued'
  | 'token_redeemed'
  | 'token_rejected'
  | 'skipped_by_flag';

export type ConfirmedPath = 'elicitation_accepted' | 'token_redeemed' | 'skipped_by_flag';
/** Results say by which means a write was confirmed: the first word of its path. */
export const CONFIRMED_BY = { elicitation_accepted: 'elicitation', token_redeemed: 'token', skipped_by_flag: 'skipped' } as const;
export type ConfirmedBy = (typeof CONFIRMED_BY)[ConfirmedPath];

export interface Refusal {
  kind: 'refuse';
  path: Exclude<ConfirmationPath, ConfirmedPath | 'token_issued'>;
  error: ToolError;
  rejection?: TokenRejection;
}

export type Decision =
  | { kind: 'skip' }
  | { kind: 'ask' }
  | { kind: 'issue_token' }
  | { kind: 'redeem_token'; token: VerifiedToken }
  | Refusal;

export interface Confirmed {
  kind: 'confirmed';
  path: ConfirmedPath;
  confirmationId?: string;
  hostName?: string;
}

export interface ElicitOutcome {
  action: 'accept' | 'decline' | 'cancel';
  content?: Record<string, unknown>;
}

export interface ConfirmSchema {
  type: 'object';
  properties: { confirm: { type: 'boolean'; title: string; description: string } };
  required: ['confirm'];
  [key: string]: unknown;
}

/** The slice of the MCP connection confirmation needs; server.ts builds it from the live session. */
export interface Elicitor {
  canElicit(): boolean;
  /** `call.signal` aborts the prompt when the tool call is cancelled; `call.requestId` ties it to the call. */
  elicit(message: string, requestedSchema: ConfirmSchema, call: { signal?: AbortSignal; requestId?: string | number }): Promise<ElicitOutcome>;
}

export interface ConfirmationDeps {
  mode: ConfirmationMode;
  skip: boolean;
  tokens: ConfirmationTokens;
  ledger: TokenLedger;
  elicitor: Elicitor;
}

const notConfirmed = (message: string, nextStep: string) => new ToolError('not_confirmed', message, nextStep);

const ASK_AGAIN =
  'Call again without confirmationToken to get a fresh preview and token, show them to the human, and pass the new token back only after the human approves.';
const NEXT_STEP: Partial<Record<TokenRejection, string>> = {
  // A restarted server cannot honour its earlier tokens. Say so, and name the case where asking again
  // cannot help, so the agent does not go round in a loop.
  earlier_run:
    `Tokens do not survive a restart. ${ASK_AGAIN} If the server is started anew for every call (a one-shot CLI, such as the MCP Inspector's CLI mode), no token can ever be redeemed: stop and tell the human to use a client that keeps one connection open or supports elicitation.`,
};

/** Choose how this call is confirmed. Offline: a bad token is refused before anything is read. */
export async function decide(deps: ConfirmationDeps, request: TokenSubject, token: string | undefined): Promise<Decision> {
  if (deps.skip) return { kind: 'skip' };
  if (deps.elicitor.canElicit()) return { kind: 'ask' };
  if (deps.mode === 'elicitation') {
    return {
      kind: 'refuse',
      path: 'elicitation_failed',
      error: notConfirmed(
        'Not performed: this server requires confirmation through MCP elicitation (MDE_CONFIRMATION=elicitation), and this client did not declare the elicitation capability.',
        'Use an MCP client that supports elicitation (form mode), or ask the server\'s operator to set MDE_CONFIRMATION=auto to allow confirmation tokens.',
      ),
    };
  }
  if (!token?.trim()) return { kind: 'issue_token' };
  const verified = deps.tokens.verify(token, request);
  if (verified.ok && (await deps.ledger.isSpent(verified.nonce))) return rejected('replayed');
  return verified.ok ? { kind: 'redeem_token', token: verified } : rejected(verified.reason);
}

function rejected(reason: TokenRejection): Refusal {
  return {
    kind: 'refuse',
    path: 'token_rejected',
    rejection: reason,
    error: notConfirmed(`Not performed: ${REJECTION_TEXT[reason]}.`, NEXT_STEP[reason] ?? ASK_AGAIN),
  };
}

/** Spend a verified token: the last step before the write. A concurrent redeem of the same token loses. */
export async function redeem(deps: ConfirmationDeps, token: VerifiedToken): Promise<Confirmed | Refusal> {
  if (!(await deps.ledger.spend(token.nonce, token.expiresAtMs))) return rejected('replayed');
  return { kind: 'confirmed', path: 'token_redeemed', confirmationId: token.confirmationId, hostName: token.hostName };
}

/** Ask the human through elicitation. Only an explicit accept with `confirm: true` confirms. */
export async function ask(
  deps: ConfirmationDeps,
  request: ActionRequest,
  preview: DevicePreview,
  call: { signal?: AbortSignal; requestId?: string | number },
): Promise<Confirmed | Refusal> {
  const host = deviceName(preview);
  let outcome: ElicitOutcome;
  try {
    outcome = await deps.elicitor.elicit(
      approvalText(request, preview),
      {
        type: 'object',
        properties: {
          confirm: { type: 'boolean', title: approvalTitle(request, preview), description: 'Check to confirm. Anything else leaves the device as it is.' },
        },
        required: ['confirm'],
      },
      call,
    );
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      kind: 'refuse',
      path: 'elicitation_failed',
      error: notConfirmed(
        `Not performed: the confirmation prompt could not be completed (${displayText(reason.slice(0, 200))}). Nothing was sent to Defender.`,
        'Ask the human whether they want to proceed, then call again to show the prompt once more.',
      ),
    };
  }
  if (outcome.action === 'accept' && outcome.content?.confirm === true) return { kind: 'confirmed', path: 'elicitation_accepted' };
  if (outcome.action === 'cancel') {
    return {
      kind: 'refuse',
      path: 'elicitation_cancelled',
      // Headless clients (claude -p) cancel a prompt themselves: say what is known, not that a human chose.
      error: notConfirmed(
        `Not performed: the client cancelled the confirmation prompt for ${host} (nobody answered it, or it was dismissed). Nothing was sent to Defender.`,
        'Do not retry on your own; ask the human what they want to do.',
      ),
    };
  }
  return {
    kind: 'refuse',
    path: 'elicitation_declined',
    error: notConfirmed(`Not performed: the human declined to ${displayText(request.verb.toLowerCase())} on ${host}. Nothing was sent to Defender.`, 'Do not retry unless the human asks for it.'),
  };
}
