/**
 * Lifting a restriction without ever sending it twice. Defender answers a duplicate either with HTTP 400
 * "Action is already in progress" or with a 201 carrying the older pending action; a request whose fate
 * is unknown (timeout, reset, unreadable 201) is never re-sent, the pending action is looked up instead;
 * and concurrent calls for one device share one POST.
 */
import { isToolError, ToolError } from '../errors.js';
import type { DefenderApi } from './client.js';
import { OPEN_ACTION_STATUSES, type MachineAction } from './schemas.js';

const UNRESTRICT_ACTION_TYPE = 'UnrestrictCodeExecution';

export interface Sent {
  outcome: 'submitted' | 'already_pending';
  action?: MachineAction;
  httpStatus?: number;
  /** Why the action is missing from an already_pending answer. */
  note?: string;
}

/**
 * At most one write per key at a time; a second caller sees the first one's promise. In memory for one
 * process; a shared store (a Redis lock) does the same across replicas.
 */
export interface SingleFlight<T> {
  running(key: string): Promise<T> | undefined;
  start(key: string, work: () => Promise<T>): Promise<T>;
}

export class MemorySingleFlight<T> implements SingleFlight<T> {
  private readonly flights = new Map<string, Promise<T>>();
  running(key: string): Promise<T> | undefined {
    return this.flights.get(key);
  }
  start(key: string, work: () => Promise<T>): Promise<T> {
    const flight = work().finally(() => this.flights.delete(key));
    this.flights.set(key, flight);
    return flight;
  }
}

/** How far a 201's action may predate our request and still be ours (clock skew). */
const CLOCK_SKEW_MS = 15_000;
/** Ids this process reported as newly submitted, kept to recognise repeats; bounded. */
const REMEMBERED_IDS = 1000;

/** What the device's action history says, read once before anything is shown to a human. */
export interface History {
  /** An unrestrict action already Pending or InProgress: nothing needs asking or sending. */
  pending?: MachineAction;
  /** One line for the preview: "the restriction was lifted on <date> by <who>", ... */
  summary: string;
}

export interface UnrestrictSubmitter {
  submit(machineId: string, comment: string, signal?: AbortSignal): Promise<Sent>;
  /** One read of the device's actions; undefined when the app may not read them (no Machine.Read.All). */
  history(machineId: string, signal?: AbortSignal): Promise<History | undefined>;
}

const RESTRICTION_TYPES: ReadonlySet<string> = new Set(['RestrictCodeExecution', UNRESTRICT_ACTION_TYPE]);

/** The history line: the newest restrict/unrestrict action, in words. */
export function describeHistory(actions: readonly MachineAction[]): string {
  const last = actions.find((a) => RESTRICTION_TYPES.has(a.type ?? ''));
  if (!last) return 'no restrict/unrestrict action in the history';
  const when = last.lastUpdateDateTimeUtc ?? last.creationDateTimeUtc ?? 'an unknown date';
  const who = last.requestor ?? 'an unknown requestor';
  const lifted = last.type === UNRESTRICT_ACTION_TYPE;
  switch (last.status) {
    case 'Succeeded':
      return `the restriction was ${lifted ? 'lifted' : 'applied'} on ${when} by ${who}`;
    case 'Pending':
    case 'InProgress':
      return `a request to ${lifted ? 'lift' : 'apply'} the restriction is ${last.status} since ${last.creationDateTimeUtc ?? when} (by ${who})`;
    default:
      return `the last request to ${lifted ? 'lift' : 'apply'} the restriction ended ${last.status ?? 'in an unknown state'} on ${when} (by ${who})`;
  }
}

export function createUnrestrictSubmitter(deps: { api: DefenderApi; now?: () => number; flights?: SingleFlight<Sent> }): UnrestrictSubmitter {
  const now = deps.now ?? Date.now;
  const flights = deps.flights ?? new MemorySingleFlight<Sent>();
  const submittedIds = new Set<string>();
  /** Devices whose last POST had an unknown outcome: the next write looks for a pending action first. */
  const unknownOutcome = new Set<string>();

  const ofDevice = (machineId: string) => (a: MachineAction) => a.machineId == null || a.machineId.toLowerCase() === machineId;
  const isOpenUnrestrict = (a: MachineAction) => (a.type == null || a.type === UNRESTRICT_ACTION_TYPE) && OPEN_ACTION_STATUSES.has(a.status ?? '');

  async function findOpenAction(machineId: string, signal?: AbortSignal): Promise<MachineAction | undefined> {
    const actions = await deps.api.listMachineActions({ machineId, type: UNRESTRICT_ACTION_TYPE }, signal);
    // Filter here too: a proxy or an older API version may ignore $filter.
    return actions.filter(ofDevice(machineId)).find(isOpenUnrestrict);
  }

  /** A 201's action is an older one when we returned it before, it carries another comment, or it predates the request. */
  function isOlderPending(action: MachineAction, comment: string, sentAt: number): boolean {
    return (
      OPEN_ACTION_STATUSES.has(action.status ?? '') &&
      (submittedIds.has(action.id) ||
        (action.requestorComment != null && action.requestorComment.trim() !== comment) ||
        Date.parse(action.creationDateTimeUtc ?? '') < sentAt - CLOCK_SKEW_MS)
    );
  }

  async function post(machineId: string, comment: string, signal?: AbortSignal): Promise<Sent> {
    if (unknownOutcome.has(machineId)) {
      // An earlier POST for this device may have been accepted: never send a second one while it is pending.
      const pending = await findOpenAction(machineId, signal);
      if (pending) return { outcome: 'already_pending', action: pending };
      unknownOutcome.delete(machineId);
    }
    const sentAt = now();
    let action: MachineAction;
    try {
      action = await deps.api.unrestrictCodeExecution(machineId, comment, signal);
    } catch (error) {
      if (isToolError(error) && error.details.alreadyInProgress) return alreadyInProgress(machineId, error);
      if (isToolError(error, 'outcome_unknown')) {
        unknownOutcome.add(machineId);
        if (unknownOutcome.size > REMEMBERED_IDS) unknownOutcome.delete(unknownOutcome.values().next().value!);
        // Never re-send blindly: see whether Defender holds an action for it.
        const pending = await findOpenAction(machineId).catch(() => undefined);
        if (pending) return { outcome: 'already_pending', action: pending };
      }
      throw error;
    }
    if (isOlderPending(action, comment, sentAt)) return { outcome: 'already_pending', action, httpStatus: 201 };
    if (submittedIds.size >= REMEMBERED_IDS) submittedIds.clear();
    submittedIds.add(action.id);
    return { outcome: 'submitted', action, httpStatus: 201 };
  }

  async function alreadyInProgress(machineId: string, error: ToolError): Promise<Sent> {
    let pending: MachineAction | undefined;
    try {
      pending = await findOpenAction(machineId);
    } catch (lookupError) {
      // Defender said it is in progress; we only could not read which action it is (e.g. no Machine.Read.All).
      const why = lookupError instanceof Error ? lookupError.message : String(lookupError);
      return { outcome: 'already_pending', httpStatus: 400, note: `The pending action could not be read: ${why}` };
    }
    if (!pending) {
      throw new ToolError(
        'upstream',
        'Defender says an action is already in progress for this device, but no pending or in-progress unrestrict action was found.',
        'Another action on the device (for example a restriction or an isolation) may still be running: check the device\'s Action center in the Defender portal, then call again later.',
        error.upstream,
      );
    }
    return { outcome: 'already_pending', action: pending, httpStatus: 400 };
  }

  return {
    /** At most one POST per device at a time; a concurrent call gets the same action as already_pending. */
    async submit(machineId, comment, signal) {
      const running = flights.running(machineId);
      if (running) {
        const first = await running.catch(() => undefined);
        if (first?.action) return { outcome: 'already_pending', action: first.action };
      }
      return flights.start(machineId, () => post(machineId, comment, signal));
    },

    async history(machineId, signal) {
      let actions: MachineAction[];
      try {
        actions = (await deps.api.listMachineActions({ machineId }, signal)).filter(ofDevice(machineId));
      } catch (error) {
        if (isToolError(error, 'permission')) return undefined; // no Machine.Read.All: go on as without the look
        throw error;
      }
      const pending = actions.find((a) => a.type === UNRESTRICT_ACTION_TYPE && OPEN_ACTION_STATUSES.has(a.status ?? ''));
      return { ...(pending ? { pending } : {}), summary: describeHistory(actions) };
    },
  };
}
