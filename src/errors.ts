/**
 * Typed errors. Deep code throws these; the one boundary in server.ts renders them as `isError` tool
 * results. Each carries what happened (message) and what to do next (nextStep), so the agent and the
 * human both know how to proceed. Upstream bodies never pass through verbatim: only the documented
 * `code` and the correlation `target`, which support needs.
 */
export type ErrorKind =
  | 'invalid_input'
  | 'not_confirmed'
  | 'authentication'
  | 'permission'
  | 'not_found'
  | 'rate_limited'
  | 'upstream'
  | 'timeout'
  | 'outcome_unknown'
  | 'policy'
  | 'audit_unavailable'
  | 'store_unavailable'
  | 'configuration';

export interface UpstreamDetails {
  /** HTTP status returned by the Defender API, when there was a response. */
  status?: number;
  /** The documented error code (`error.code`), e.g. `Forbidden`, `ResourceNotFound`. */
  code?: string;
  /** The correlation id (`error.target`) to quote to Microsoft support. */
  target?: string;
}

export class ToolError extends Error {
  readonly kind: ErrorKind;
  readonly nextStep: string;
  readonly upstream: UpstreamDetails;

  constructor(kind: ErrorKind, message: string, nextStep: string, upstream: UpstreamDetails = {}) {
    super(message);
    this.name = 'ToolError';
    this.kind = kind;
    this.nextStep = nextStep;
    this.upstream = upstream;
  }
}

export class InvalidInputError extends ToolError {
  constructor(message: string, nextStep: string) {
    super('invalid_input', message, nextStep);
  }
}

/** The human did not approve, or approval could not be obtained: nothing was sent to Defender. */
export class NotConfirmedError extends ToolError {
  constructor(message: string, nextStep: string) {
    super('not_confirmed', message, nextStep);
  }
}

export class AuthenticationError extends ToolError {
  /** The AADSTS code from Entra ID, when the token endpoint returned one. */
  readonly aadsts: string | undefined;
  constructor(message: string, nextStep: string, upstream: UpstreamDetails = {}, aadsts?: string) {
    super('authentication', message, nextStep, upstream);
    this.aadsts = aadsts;
  }
}

export class PermissionError extends ToolError {
  constructor(message: string, nextStep: string, upstream: UpstreamDetails = {}) {
    super('permission', message, nextStep, upstream);
  }
}

export class NotFoundError extends ToolError {
  constructor(message: string, nextStep: string, upstream: UpstreamDetails = {}) {
    super('not_found', message, nextStep, upstream);
  }
}

export class RateLimitError extends ToolError {
  /** Seconds until the API accepts calls again, when known. */
  readonly retryAfterSeconds: number | undefined;
  constructor(message: string, nextStep: string, retryAfterSeconds?: number, upstream: UpstreamDetails = {}) {
    super('rate_limited', message, nextStep, upstream);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class UpstreamError extends ToolError {
  constructor(message: string, nextStep: string, upstream: UpstreamDetails = {}) {
    super('upstream', message, nextStep, upstream);
  }
}

/** A read did not get an answer in time. (A write that times out is an OutcomeUnknownError.) */
export class TimeoutError extends ToolError {
  constructor(message: string, nextStep: string) {
    super('timeout', message, nextStep);
  }
}

/** A write whose fate is unknown: it may or may not have been accepted. Never re-sent blindly. */
export class OutcomeUnknownError extends ToolError {
  constructor(message: string, nextStep: string) {
    super('outcome_unknown', message, nextStep);
  }
}

/** A policy guard refused the call; nothing was sent. */
export class PolicyError extends ToolError {
  constructor(
    readonly rule: string,
    message: string,
    nextStep: string,
  ) {
    super('policy', message, nextStep);
  }
}

/** The audit trail is configured but cannot be written: the action is refused (fail closed). */
export class AuditUnavailableError extends ToolError {
  constructor(message: string, nextStep: string) {
    super('audit_unavailable', message, nextStep);
  }
}

/** The shared state store (Redis) cannot be used: without the budget and the lock nothing is sent. */
export class StoreUnavailableError extends ToolError {
  constructor(message: string, nextStep: string) {
    super('store_unavailable', message, nextStep);
  }
}

export class ConfigError extends ToolError {
  constructor(message: string, nextStep: string) {
    super('configuration', message, nextStep);
  }
}

/** "Action is already in progress" from the API. Internal: the tool turns it into `already_pending`. */
export class AlreadyInProgressError extends ToolError {
  constructor(upstream: UpstreamDetails) {
    super(
      'upstream',
      'Defender reports that an action is already in progress for this device.',
      'Follow the pending action instead of sending a new one.',
      upstream,
    );
  }
}

/** Replace every occurrence of each secret with a marker. Used on all text that leaves the server. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join('[REDACTED]');
  }
  // Bearer tokens and JWT-looking strings never belong in output, whoever put them there.
  out = out.replace(/Bearer\s+[A-Za-z0-9\-._~+/]+=*/g, 'Bearer [REDACTED]');
  out = out.replace(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, '[REDACTED-JWT]');
  return out;
}

/** The text an agent sees for an error: what happened, what to do, and the ids support needs. */
export function renderError(error: unknown, secrets: readonly string[] = []): string {
  if (error instanceof ToolError) {
    const lines = [`Error (${error.kind}): ${error.message}`];
    const { status, code, target } = error.upstream;
    const ids = [
      status !== undefined ? `HTTP ${status}` : undefined,
      code ? `code ${code}` : undefined,
      target ? `correlation id ${target}` : undefined,
    ].filter(Boolean);
    if (ids.length > 0) lines.push(`Defender API: ${ids.join(', ')}.`);
    lines.push(`Next step: ${error.nextStep}`);
    return redact(lines.join('\n'), secrets);
  }
  const message = error instanceof Error ? error.message : String(error);
  return redact(
    `Error (internal): ${message}\nNext step: check the device's machine actions before retrying, and report this message if it repeats.`,
    secrets,
  );
}
