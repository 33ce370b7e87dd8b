/**
 * The confirmation gate: nothing is written to Defender until a human said yes, by the strongest means
 * the client offers.
 *  - The client declared elicitation: the server asks the human directly (`elicitation/create`). Only an
 *    explicit accept with `confirm: true` passes; decline, cancel and failures do not.
 *  - Mode `auto` without elicitation: the first call returns a preview and a signed single-use token that
 *    the agent must show the human and pass back on an identical second call.
 *  - Mode `elicitation` without elicitation: refused (fail closed).
 */
import { ToolError } from '../errors.js';
import type { ConfirmationMode } from '../config.js';
import { REJECTION_TEXT, type ConfirmationTokens, type TokenRejection } from './token.js';

/** What the human is shown: the device in words they recognise, not just a 40-hex id. */
export interface DevicePreview {
  machineId: string;
  hostName: string | null;
  osPlatform: string | null;
  osVersion: string | null;
  deviceGroup: string | null;
  healthStatus: string | null;
  lastSeen: string | null;
  tags: string[];
  /** Why details are missing, when they are (e.g. the app lacks Machine.Read.All). */
  note?: string;
}

export interface ElicitOutcome {
  action: 'accept' | 'decline' | 'cancel';
  content?: Record<string, unknown>;
}

/** The slice of the MCP server the gate needs; server.ts builds it from the live connection. */
export interface Elicitor {
  canElicit(): boolean;
  /** `signal` aborts the prompt when the tool call is cancelled. */
  elicit(message: string, requestedSchema: ConfirmSchema, signal?: AbortSignal): Promise<ElicitOutcome>;
}

export interface ConfirmSchema {
  type: 'object';
  properties: { confirm: { type: 'boolean'; title: string; description: string } };
  required: ['confirm'];
  [key: string]: unknown;
}

export interface ActionRequest {
  /** The action, as bound into tokens: `unrestrict`, `cancel`, ... */
  action: string;
  /** One line for the human: what will happen, e.g. "Lift the app restriction". */
  verb: string;
  /** Why it matters, in plain words, shown in the prompt. */
  consequence: string;
  machineId: string;
  comment: string;
}

export type ConfirmationPath =
  | 'elicitation_accepted'
  | 'elicitation_declined'
  | 'elicitation_cancelled'
  | 'elicitation_failed'
  | 'token_issued'
  | 'token_redeemed'
  | 'token_rejected'
  | 'skipped_by_flag';

export type GateDecision =
  | { kind: 'confirmed'; path: 'elicitation_accepted' | 'token_redeemed' | 'skipped_by_flag'; hostName?: string; confirmationId?: string }
  | { kind: 'token_issued'; token: string; expiresAt: Date; confirmationId: string };

/** Thrown when the gate says no; carries the path for the audit trail. */
export class GateRefusal extends NotConfirmedError {
  constructor(
    readonly path: ConfirmationPath,
    message: string,
    nextStep: string,
    readonly rejection?: TokenRejection,
  ) {
    super(message, nextStep);
  }
}

export class ConfirmationGate {
  constructor(
    private readonly opts: {
      mode: ConfirmationMode;
      skip: boolean;
      tokens: ConfirmationTokens;
      elicitor: Elicitor;
    },
  ) {}

  /**
   * What the gate needs before it can decide: a preview (for a prompt or a token) or nothing (a token to
   * check offline, or the skip flag). Lets the tool avoid reading the device when it is not needed, and
   * refuse before touching the API when no confirmation is possible.
   */
  plan(confirmationToken: string | undefined): 'skip' | 'elicit' | 'redeem_token' | 'issue_token' {
    if (this.opts.skip) return 'skip';
    if (this.opts.elicitor.canElicit()) return 'elicit';
    if (this.opts.mode === 'elicitation') {
      throw new GateRefusal(
        'elicitation_failed',
        'Not performed: this server requires confirmation through MCP elicitation (MDE_CONFIRMATION=elicitation), and this client did not declare the elicitation capability.',
        'Use an MCP client that supports elicitation (form mode), or ask the server\'s operator to set MDE_CONFIRMATION=auto to allow confirmation tokens.',
      );
    }
    return confirmationToken?.trim() ? 'redeem_token' : 'issue_token';
  }

  /** Redeem a token offline: no request is made to Defender for a bad one. */
  redeem(request: ActionRequest, token: string): GateDecision {
    const result = this.opts.tokens.redeem(token, request);
    if (!result.ok) {
      throw new GateRefusal(
        'token_rejected',
        `Not performed: ${REJECTION_TEXT[result.reason]}.`,
        'Call again without confirmationToken to get a fresh preview and token, show them to the human, and pass the new token back only after the human approves.',
        result.reason,
      );
    }
    return { kind: 'confirmed', path: 'token_redeemed', hostName: result.hostName, confirmationId: result.confirmationId };
  }

  issue(request: ActionRequest, preview: DevicePreview): GateDecision {
    const { token, expiresAt, confirmationId } = this.opts.tokens.issue(request, preview.hostName ?? undefined);
    return { kind: 'token_issued', token, expiresAt, confirmationId };
  }

  async elicit(request: ActionRequest, preview: DevicePreview, signal?: AbortSignal): Promise<GateDecision> {
    const host = preview.hostName ?? `device ${preview.machineId}`;
    let outcome: ElicitOutcome;
    try {
      outcome = await this.opts.elicitor.elicit(confirmationMessage(request, preview), {
        type: 'object',
        properties: {
          confirm: {
            type: 'boolean',
            title: `${request.verb} on ${host}`,
            description: 'Check to confirm. Anything else leaves the device as it is.',
          },
        },
        required: ['confirm'],
      }, signal);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new GateRefusal(
        'elicitation_failed',
        `Not performed: the confirmation prompt could not be completed (${reason.slice(0, 200)}). Nothing was sent to Defender.`,
        'Ask the human whether they want to proceed, then call again to show the prompt once more.',
      );
    }
    if (outcome.action === 'accept' && outcome.content?.confirm === true) {
      return { kind: 'confirmed', path: 'elicitation_accepted' };
    }
    if (outcome.action === 'cancel') {
      throw new GateRefusal(
        'elicitation_cancelled',
        `Not performed: the human dismissed the confirmation prompt for ${host}. Nothing was sent to Defender.`,
        'Do not retry on your own; ask the human what they want to do.',
      );
    }
    throw new GateRefusal(
      'elicitation_declined',
      `Not performed: the human declined to ${request.verb.toLowerCase()} on ${host}. Nothing was sent to Defender.`,
      'Do not retry unless the human asks for it.',
    );
  }
}

/**
 * A comment as the human sees it in a prompt: quoted and escaped, so line breaks or quotes in text the
 * agent wrote cannot fake extra lines (another host, another consequence) in the confirmation.
 */
export function quoteForDisplay(text: string): string {
  return JSON.stringify(text);
}

export function describeDevice(preview: DevicePreview): string {
  const parts = [
    preview.hostName ?? '(host name unavailable)',
    preview.osPlatform ? `${preview.osPlatform}${preview.osVersion ? ` ${preview.osVersion}` : ''}` : undefined,
    preview.deviceGroup ? `device group "${preview.deviceGroup}"` : undefined,
    preview.healthStatus ? `health ${preview.healthStatus}` : undefined,
    preview.lastSeen ? `last seen ${preview.lastSeen}` : undefined,
    preview.tags.length > 0 ? `tags: ${preview.tags.join(', ')}` : undefined,
  ].filter(Boolean);
  return parts.join('; ');
}

export function confirmationMessage(request: ActionRequest, preview: DevicePreview): string {
  return [
    `${request.verb} on ${preview.hostName ?? 'this device'}?`,
    '',
    `Device: ${describeDevice(preview)}`,
    `Device id: ${preview.machineId}`,
    ...(preview.note ? [`Note: ${preview.note}`] : []),
    `Comment recorded in Defender: ${quoteForDisplay(request.comment)}`,
    '',
    request.consequence,
  ].join('\n');
}
