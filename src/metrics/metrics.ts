/**
 * What the server counts for its operators, as one small interface passed in as a dependency. The
 * default does nothing, so instrumented code pays one empty call when metrics are off; the Prometheus
 * implementation (metrics/prometheus.ts, a lazy chunk with prom-client) is loaded only with
 * MDE_METRICS_PORT. Labels carry bounded words only (tool names, outcome words, HTTP statuses, AADSTS
 * codes): never a machine id, a comment, a user or a token.
 */

/** How a successful call ended, when its result says (`structuredContent.outcome`); read tools are `ok`. */
export const RESULT_OUTCOMES = ['submitted', 'already_pending', 'confirmation_required', 'approval_pending', 'cancelled'] as const;

export interface Metrics {
  /** A tool call ended: its outcome word (see RESULT_OUTCOMES, or `ok`) or its error kind. */
  toolCall(tool: string, outcome: string, seconds: number): void;
  /** A confirmation decision's result: a ConfirmationPath word (confirmation/confirm.ts). */
  confirmation(path: string): void;
  /** One HTTP request to Defender: its HTTP status, or `network` / `timeout` when there was no answer. */
  defenderRequest(operation: string, status: string, seconds: number): void;
  /** Time a Defender call waited for the call budget (0 when a slot was free). */
  budgetWait(seconds: number): void;
  /** A call refused because the budget would not free up in time. */
  budgetRefused(): void;
  /** A sign-in to Entra ID failed: the AADSTS code, or `none` when Entra gave none (network, timeout). */
  signInFailure(code: string): void;
  /** Remote mode: a request refused before reaching MCP (bearer token missing, invalid, or keys unreachable). */
  callerRefused(status: number, reason: string): void;
  /** The shared store (Redis) failed an operation. */
  storeError(operation: string): void;
  /** Values read at scrape time. */
  watchBudget(read: () => { minute: number; hour: number } | Promise<{ minute: number; hour: number }>, limits: { perMinute: number; perHour: number }): void;
  watchSessions(read: () => number): void;
  watchApprovals(read: () => number | Promise<number>): void;
}

const nothing = () => undefined;

/** Metrics off: every method is an empty function. */
export const NO_METRICS: Metrics = {
  toolCall: nothing,
  confirmation: nothing,
  defenderRequest: nothing,
  budgetWait: nothing,
  budgetRefused: nothing,
  signInFailure: nothing,
  callerRefused: nothing,
  storeError: nothing,
  watchBudget: nothing,
  watchSessions: nothing,
  watchApprovals: nothing,
};

/** The outcome word of a finished call (a result, or an error's kind). */
export function outcomeOf(result: { isError?: boolean; structuredContent?: Record<string, unknown> } | undefined): string {
  const outcome = result?.structuredContent?.outcome;
  if (typeof outcome === 'string' && (RESULT_OUTCOMES as readonly string[]).includes(outcome)) return outcome;
  return result?.isError ? 'error' : 'ok';
}
