/**
 * `find_machine`: resolve a host name (exact, or a prefix) to Defender devices, with whether app
 * execution is restricted as far as the action history shows. Read-only.
 */
import { z } from 'zod';
import type { DefenderApi } from '../defender/client.js';
import { OPEN_ACTION_STATUSES, type Machine, type MachineAction } from '../defender/schemas.js';
import { isToolError } from '../errors.js';
import { defineTool } from './define.js';
import { defaultedArg, devicePreviewSchema, orNull, toPreview } from './shared.js';

/** Restriction state is looked up per device (one call each); beyond this many matches it is skipped. */
const STATE_LOOKUP_LIMIT = 10;

const inputSchema = {
  name: z
    .string({ error: 'name is required: a host name such as finance-ws-017.contoso.com, or the start of one.' })
    .trim()
    .min(1, { message: 'name is required: a host name such as finance-ws-017.contoso.com, or the start of one.' })
    .max(255)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { message: 'name must be a host name (letters, digits, dots, hyphens, underscores), such as finance-ws-017 or finance-ws-017.contoso.com.' })
    .describe('Host name (computerDnsName) or its beginning, e.g. "finance-ws-017" or "finance-ws-017.contoso.com".'),
  match: defaultedArg(z.enum(['auto', 'exact', 'prefix']), 'auto').describe('exact: the full name only; prefix: names starting with it; auto (default): exact, then prefix if nothing matched exactly.'),
};

const actionSummary = z.object({ id: z.string(), type: z.string(), status: z.string(), time: orNull(z.string()), requestor: orNull(z.string()) });
const outputSchema = {
  devices: z.array(
    devicePreviewSchema.omit({ note: true }).extend({
      appExecution: z.object({
        state: z.enum(['restricted', 'not_restricted', 'unknown']).describe('From the newest succeeded restrict/unrestrict action; unknown when there is none or it could not be read.'),
        lastAction: orNull(actionSummary).describe('The newest RestrictCodeExecution or UnrestrictCodeExecution action, whatever its status.'),
        pendingAction: orNull(actionSummary).describe('A restrict/unrestrict action still pending or in progress, if any.'),
        note: z.string().optional(),
      }),
    }),
  ),
  matchedBy: z.enum(['exact', 'prefix', 'none']),
};

const annotations = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true } as const;

const description =
  'Find Defender for Endpoint devices by host name (exact, or a prefix) and return their 40-hex device id, OS, device group, health, last seen, tags, and whether app execution is restricted as far as the action history shows. Use it before remove_app_restriction to get the machineId. Several matches are all listed; no match is an empty list, not an error.';

type AppExecution = z.infer<typeof outputSchema.devices>[number]['appExecution'];

function summarise(a: MachineAction) {
  return { id: a.id, type: a.type ?? 'unknown', status: a.status ?? 'unknown', time: a.creationDateTimeUtc ?? null, requestor: a.requestor ?? null };
}

/** Restriction state from the action history: the newest succeeded restrict/unrestrict action decides. */
function appExecutionState(actions: readonly MachineAction[]): AppExecution {
  const relevant = actions
    .filter((a) => a.type === 'RestrictCodeExecution' || a.type === 'UnrestrictCodeExecution')
    .sort((a, b) => (b.creationDateTimeUtc ?? '').localeCompare(a.creationDateTimeUtc ?? ''));
  const decided = relevant.find((a) => a.status === 'Succeeded');
  const pending = relevant.find((a) => OPEN_ACTION_STATUSES.has(a.status ?? ''));
  return {
    state: !decided ? 'unknown' : decided.type === 'RestrictCodeExecution' ? 'restricted' : 'not_restricted',
    lastAction: relevant[0] ? summarise(relevant[0]) : null,
    pendingAction: pending ? summarise(pending) : null,
  };
}

/** Restriction state of one device; beyond the look-up limit, or without the permission, it is unknown. */
async function stateOf(api: DefenderApi, machine: Machine, index: number, signal: AbortSignal | undefined): Promise<AppExecution> {
  if (index >= STATE_LOOKUP_LIMIT) {
    return { state: 'unknown', lastAction: null, pendingAction: null, note: `Not looked up: more than ${STATE_LOOKUP_LIMIT} matches; narrow the name.` };
  }
  try {
    return appExecutionState(await api.listMachineActions({ machineId: machine.id }, signal));
  } catch (error) {
    const why = isToolError(error, 'permission') ? 'the app cannot read machine actions (Machine.Read.All)' : (error as Error).message;
    return { state: 'unknown', lastAction: null, pendingAction: null, note: `Action history unavailable: ${why}` };
  }
}

export const findMachine = defineTool({
  name: 'find_machine',
  title: 'Find a device by host name',
  description,
  inputSchema,
  outputSchema,
  annotations,
  async handler(args, ctx, { api }) {
    let matchedBy: 'exact' | 'prefix' | 'none' = 'none';
    let machines: Machine[] = [];
    if (args.match !== 'prefix') {
      machines = await api.findMachines(args.name, 'exact', ctx.signal);
      if (machines.length > 0) matchedBy = 'exact';
    }
    if (machines.length === 0 && args.match !== 'exact') {
      machines = await api.findMachines(args.name, 'prefix', ctx.signal);
      if (machines.length > 0) matchedBy = 'prefix';
    }
    // One state look-up at a time: each is a Defender call under the shared budget.
    const devices = [];
    for (const [i, m] of machines.entries()) devices.push({ ...toPreview(m.id, m), appExecution: await stateOf(api, m, i, ctx.signal) });

    const lines =
      devices.length === 0
        ? [`No device in Defender matches "${args.name}"${args.match === 'auto' ? ' (exact or as a prefix)' : ` (${args.match})`}. Check the spelling, or try the start of the name.`]
        : [
            `${devices.length} device${devices.length === 1 ? '' : 's'} matching "${args.name}" (${matchedBy}):`,
            ...devices.map(
              (d) =>
                `- ${d.hostName ?? '(no name)'}: id ${d.machineId}; ${d.osPlatform ?? '?'}; group "${d.deviceGroup ?? '?'}"; health ${d.healthStatus ?? '?'}; app execution ${d.appExecution.state.replace('_', ' ')}` +
                (d.appExecution.pendingAction ? ` (pending ${d.appExecution.pendingAction.type} ${d.appExecution.pendingAction.id})` : ''),
            ),
            ...(devices.length > 1 ? ['Several devices match: confirm with the human which one is meant before acting.'] : []),
          ];
    return { content: [{ type: 'text', text: lines.join('\n') }], structuredContent: { devices, matchedBy } };
  },
});
