/**
 * Lifting a restriction without ever sending it twice. Defender answers a duplicate either with HTTP 400
 * "Action is already in progress" or with a 201 carrying the older pending action; a request whose fate
 * is unknown (timeout, reset, unreadable 201) is never re-sent, the pending action is looked up instead;
 * and concurrent calls for one device share one POST.
 */
import { isToolError, ToolError } from '../errors.js';
import type { DefenderApi } from './client.js';
import { OPEN_ACTION_STATUSES, type MachineAction } from './schemas.js';
import { MemorySingleFlight } from '../store/memory.js';
import type { SingleFlight } from '../store/types.js';

const UNRESTRICT_ACTION_TYPE = 'UnrestrictCodeExecution';

export interface Sent {
  outcome: 'submitted' | 'already_pending';
  action?: MachineAction;
  httpStatus?: number;
  /** Why the action is missing from an already_pending answer. */
  note?: string;
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

/**
 * `flights`: one write per device at a time: in this process by default, across replicas with the Redis
 * store (a lock with expiry and owner check).
 */
export function createUnrestrictSubmitter(deps: {
  api: DefenderApi;
  now?: () => number;
  flights?: SingleFlight;
  /** Scopes the device key (remote mode: per user, so one user's call is never folded into another's). */
  flightScope?: string;
}): UnrestrictSubmitter {
  const now = deps.now ?? Date.now;
  const flights = deps.flights ?? new MemorySingleFlight();
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
      const flight = await flights.run<Sent>(
        deps.flightScope ? `${deps.flightScope}:${machineId}` : machineId,
        async ({ recovering }) => {
          if (recovering) {
            // The last holder of this device's lock stopped mid-write (a replica died): its POST may have
            // reached Defender. Look before sending; if the lookup fails, Defender's own "already in
            // progress" answer is the last line.
            const pending = await findOpenAction(machineId, signal).catch(() => undefined);
            if (pending) return { outcome: 'already_pending', action: pending };
          }
          return post(machineId, comment, signal);
        },
        (sent) => sent.action !== undefined,
      );
      if (!flight.joined) return flight.value;
      return { outcome: 'already_pending', ...(flight.value.action ? { action: flight.value.action } : {}) };
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
