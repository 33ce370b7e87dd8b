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
  | 'store_unavailable';

export interface UpstreamDetails {
  /** HTTP status returned by the Defender API, when there was a response. */
  status?: number;
  /** The documented error code (`error.code`), e.g. `Forbidden`, `ResourceNotFound`. */
  code?: string;
  /** The correlation id (`error.target`) to quote to Microsoft support. */
  target?: string;
}

/** What some kinds carry besides their text. */
export interface ErrorDetails {
  /** rate_limited: seconds until the API accepts calls again, when known. */
  retryAfterSeconds?: number;
  /** authentication: the AADSTS code from Entra ID, when the token endpoint returned one. */
  aadsts?: string;
  /** policy: the rule that refused. */
  rule?: string;
  /** upstream: Defender's "Action is already in progress"; internal, the tools turn it into `already_pending`. */
  alreadyInProgress?: boolean;
}

/** One error type for everything a tool call can end in; the kind says which, the text says what to do. */
export class ToolError extends Error {
  readonly kind: ErrorKind;
  readonly nextStep: string;
  readonly upstream: UpstreamDetails;
  readonly details: ErrorDetails;

  constructor(kind: ErrorKind, message: string, nextStep: string, upstream: UpstreamDetails = {}, details: ErrorDetails = {}) {
    super(message);
    this.name = 'ToolError';
    this.kind = kind;
    this.nextStep = nextStep;
    this.upstream = upstream;
    this.details = details;
  }
}

/** Whether `error` is a ToolError of this kind (the one test deep code needs). */
export function isToolError(error: unknown, kind?: ErrorKind): error is ToolError {
  return error instanceof ToolError && (kind === undefined || error.kind === kind);
}

/** "Action is already in progress" from the API. Internal: the Defender layer turns it into `already_pending`. */
export function alreadyInProgress(upstream: UpstreamDetails): ToolError {
  return new ToolError(
    'upstream',
    'Defender reports that an action is already in progress for this device.',
    'Follow the pending action instead of sending a new one.',
    upstream,
    { alreadyInProgress: true },
  );
}

/**
 * A setting that stops the server at start: every problem at once, so one restart fixes them all.
 * Configuration parsing, the audit file check and the certificate check all end here, exit code 2.
 */
export class StartupError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    const footer = problems.some((p) => p.includes('--help')) ? '' : '\nRun with --help to list every setting.';
    super(`Configuration is incomplete or contradictory:\n${problems.map((p) => `  - ${p}`).join('\n')}${footer}`);
    this.name = 'StartupError';
    this.problems = problems;
  }
}

/** Replace every occurrence of each secret with a marker. Used on all text that leaves the server. */
/** The URL without its user and password, for messages. */
export function redactUrl(text: string): string {
  // Up to the last "@": a password may hold a raw "@", "/" or "#" that a URL parser would have split on.
  return text.replace(/^([a-z]+:\/\/)[\s\S]*@/i, '$1');
}

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
