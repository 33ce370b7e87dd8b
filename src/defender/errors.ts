/**
 * How the Defender client's failures read: a non-2xx answer mapped to a typed error with the next step,
 * Defender's own message (redacted, cut), Retry-After, and the cancellations. Pure.
 */
import { ToolError, type UpstreamDetails, alreadyInProgress, redact } from '../errors.js';
import type { Operation } from './client.js';
import { apiErrorSchema } from './schemas.js';

export const CHECK_ACTIONS =
  'Do not send it again blindly: list the device\'s machine actions (or check the Defender portal\'s Action center) for a pending or in-progress action first.';

/** Ended by the client before the request left: nothing was sent. */
export function cancelled(op: Operation): ToolError {
  return new ToolError('not_confirmed', `Not performed: the client cancelled the call before ${op} was sent. Nothing was sent to Defender.`, 'Call again if it is still wanted.');
}

/** Ended by the client while the request was on the wire: a write's fate is then unknown. */
export function cancelledInFlight(op: Operation, isWrite: boolean): ToolError {
  return isWrite
    ? new ToolError('outcome_unknown', `The client cancelled the call while ${op} was being sent; Defender may or may not have accepted it.`, CHECK_ACTIONS)
    : new ToolError('not_confirmed', `The client cancelled the call during ${op}.`, 'Call again if it is still wanted.');
}

export function parseEntity<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new ToolError(
      'upstream',
      `The Defender API returned a ${what} this server cannot read.`,
      'Retry in a moment; if it repeats, the API may have changed: report it.',
    );
  }
  return parsed.data;
}

/** Seconds in `Retry-After` (or an HTTP date), else exponential back-off from one second. */
export function retryAfterMs(header: string | null, attempt: number, nowMs: number): number {
  if (header) {
    const trimmed = header.trim();
    if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000);
    const date = Date.parse(trimmed);
    if (!Number.isNaN(date)) return Math.max(0, date - nowMs);
  }
  return 1000 * 2 ** attempt;
}

/** Defender's message is quoted at most this long; redacted first, so a cut can never leave part of a secret. */
export const QUOTED_MESSAGE_MAX = 300;

export function errorDetails(text: string, secrets: readonly string[] = []): UpstreamDetails & { message?: string } {
  try {
    const parsed = apiErrorSchema.safeParse(JSON.parse(text));
    if (parsed.success) {
      const { code, message, target } = parsed.data.error;
      return { code, target, message: message === undefined ? undefined : redact(message, secrets).slice(0, QUOTED_MESSAGE_MAX) };
    }
  } catch {
    // not JSON: the status alone must do
  }
  return {};
}

const PERMISSION_FOR: Record<Operation, string> = {
  unrestrict: 'Machine.RestrictExecution',
  cancel: 'Machine.RestrictExecution',
  read_machine: 'Machine.Read.All',
  list_actions: 'Machine.Read.All',
  read_action: 'Machine.Read.All',
  find_machines: 'Machine.Read.All',
};
export const WRITES: ReadonlySet<Operation> = new Set(['unrestrict', 'cancel']);

/** Map a non-2xx answer (other than 429) to a typed error with the next step. Pure. */
export function mapErrorResponse(op: Operation, status: number, text: string, secrets: readonly string[] = []): ToolError {
  const { message, ...upstream } = errorDetails(text, secrets);
  const details: UpstreamDetails = { status, ...upstream };
  const said = message ? ` Defender said: "${message}"` : '';
  if (status === 400 && (upstream.code === 'ActiveRequestAlreadyExists' || /already in progress/i.test(message ?? ''))) {
    return alreadyInProgress(details);
  }
  if (status === 401) {
    return new ToolError(
      'authentication',
      `The Defender API rejected the access token (HTTP 401).${said}`,
      'Check that the token is for the Defender API (MDE_SCOPE) and tenant, and that the app is not disabled.',
      details,
    );
  }
  if (status === 403) {
    if (upstream.code === 'DisabledFeature') {
      return new ToolError('permission', `A Defender feature this call needs is turned off in the tenant.${said}`, 'Ask a Defender administrator to enable it in the Defender portal settings.', details);
    }
    const permission = PERMISSION_FOR[op];
    return new ToolError(
      'permission',
      `The app is not allowed to ${op === 'unrestrict' ? 'lift app restrictions' : op === 'cancel' ? 'cancel machine actions' : 'read devices or actions'} (HTTP 403): it needs the application permission ${permission}.${said}`,
      `In Entra ID > App registrations > API permissions, add WindowsDefenderATP > Application permissions > ${permission}, then "Grant admin consent" (an administrator must). Tokens pick it up within the hour; restart the server to sign in again at once.`,
      details,
    );
  }
  if (status === 404) {
    if (op === 'read_action' || op === 'cancel') {
      return new ToolError(
        'not_found',
        `Defender has no machine action with this id (HTTP 404).${said}`,
        'Check the actionId: it is the GUID returned when the action was requested (list_machine_actions shows a device\'s actions).',
        details,
      );
    }
    return new ToolError(
      'not_found',
      op === 'list_actions' || op === 'find_machines' ? `Defender found no such resource (HTTP 404).${said}` : `Defender has no device with this id (HTTP 404).${said}`,
      'Check the machineId: it is the 40-character device id from the Defender portal or the devices API (find_machine resolves a host name), and the device must be within the retention period and visible to this app.',
      details,
    );
  }
  if (status >= 500) {
    return new ToolError(
      'upstream',
      `The Defender API failed (HTTP ${status}).${said}`,
      WRITES.has(op)
        ? 'Check the device\'s machine actions before retrying: Defender answers a duplicate with the pending action, so a retry is safe but may be redundant.'
        : 'Retry in a minute; if it persists, check the Microsoft 365 service health.',
      details,
    );
  }
  return new ToolError(
    'upstream',
    `Defender rejected the request (HTTP ${status}${upstream.code ? `, ${upstream.code}` : ''}).${said}`,
    upstream.code === 'OsPlatformNotSupported' || upstream.code === 'ClientVersionNotSupported'
      ? 'This device\'s platform or sensor version does not support app restriction; lift it from the Defender portal.'
      : 'Fix what Defender names, then call again.',
    details,
  );
}
