/**
 * The one renderer of what the human reads before an action: the elicitation prompt, the text of a
 * `confirmation_required` result and the cancel prompt all come from here. Every text that came from
 * somewhere else (the agent's comment, Defender's host names, groups, tags, requestors and comments) is
 * escaped, so line breaks (U+2028 too), quotes, bidirectional overrides or invisible characters in it
 * cannot fake extra lines in a prompt or hide text (characters.ts says which, by Unicode property).
 */
import type { MachineAction } from '../defender/schemas.js';
import { HIDDEN, escapeCodePoint } from './characters.js';

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
  /** What Defender's action history shows about the restriction (remove_app_restriction). */
  history?: string;
}

/** A write as the confirmation step and the audit trail see it. */
export interface ActionRequest {
  /** The action, as bound into tokens: `unrestrict`, `cancel:<id>`, ... */
  action: string;
  /** One line for the human: what will happen, e.g. "Lift the app restriction". */
  verb: string;
  /** Why it matters, in plain words, shown in the prompt. */
  consequence: string;
  machineId: string;
  comment: string;
  /** For an action on an action (cancel): the MachineAction it targets, shown to the human. */
  target?: MachineAction;
  /** Remote mode: who asks (`principalKey`), bound into confirmation tokens so only they can redeem them. */
  principal?: string;
}

/** Text from outside, on one line, with nothing hidden: every hidden or line-breaking character becomes \uXXXX. */
export function displayText(text: string): string {
  return text.replace(HIDDEN, escapeCodePoint);
}

/** A quoted value (the comment): quotes and line breaks escaped, so it stays one visible string. */
export function quoteForDisplay(text: string): string {
  return displayText(JSON.stringify(text));
}

export function describeDevice(preview: DevicePreview): string {
  const parts = [
    preview.hostName ? displayText(preview.hostName) : '(host name unavailable)',
    preview.osPlatform ? displayText(`${preview.osPlatform}${preview.osVersion ? ` ${preview.osVersion}` : ''}`) : undefined,
    preview.deviceGroup ? `device group ${quoteForDisplay(preview.deviceGroup)}` : undefined,
    preview.healthStatus ? `health ${displayText(preview.healthStatus)}` : undefined,
    preview.lastSeen ? `last seen ${displayText(preview.lastSeen)}` : undefined,
    preview.tags.length > 0 ? `tags: ${preview.tags.map((t) => quoteForDisplay(t)).join(', ')}` : undefined,
  ].filter(Boolean);
  return parts.join('; ');
}

/** The device as the prompt names it: its host name, else its id. */
export function deviceName(preview: DevicePreview): string {
  return preview.hostName ? displayText(preview.hostName) : `device ${displayText(preview.machineId)}`;
}

/** The one-line question (the prompt's first line and the elicitation field's title). */
export function approvalTitle(request: ActionRequest, preview: DevicePreview): string {
  return `${displayText(request.verb)} on ${deviceName(preview)}`;
}

/** The question the human answers, with everything they need to answer it. */
export function approvalText(request: ActionRequest, preview: DevicePreview): string {
  const t = request.target;
  return [
    `${approvalTitle(request, preview)}?`,
    '',
    ...(t
      ? [
          `Action: ${displayText(t.type ?? 'unknown type')} ${displayText(t.status ?? 'unknown status')}, requested by ${displayText(t.requestor ?? 'unknown')} at ${displayText(t.creationDateTimeUtc ?? 'unknown time')}` +
            (t.requestorComment ? `, comment ${quoteForDisplay(t.requestorComment)}` : ''),
        ]
      : []),
    `Device: ${describeDevice(preview)}`,
    `Device id: ${displayText(preview.machineId)}`,
    ...(preview.history ? [`History: ${displayText(preview.history)}`] : []),
    ...(preview.note ? [`Note: ${displayText(preview.note)}`] : []),
    `Comment recorded in Defender: ${quoteForDisplay(request.comment)}`,
    '',
    request.consequence,
  ].join('\n');
}

/** The text of a `confirmation_required` result: what the agent must show, and how to come back. */
export function confirmationRequiredText(
  request: ActionRequest,
  preview: DevicePreview,
  c: { tool: string; sameArguments: string; token: string; expiresAt: string },
): string {
  return [
    'Confirmation required: nothing has been sent to Defender.',
    'Show the human exactly this and ask whether to proceed:',
    ...approvalText(request, preview)
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => `  ${line}`),
    `Only if the human explicitly approves, call ${c.tool} again with the same ${c.sameArguments} and confirmationToken "${c.token}".`,
    `The token works once and expires at ${c.expiresAt}. If the human declines, do not call again.`,
  ].join('\n');
}
