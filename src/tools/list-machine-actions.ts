/** `list_machine_actions`: a device's recent machine actions, newest first, filtered by type and status. Read-only. */
import { z } from 'zod';
import { displayText, quoteForDisplay } from '../confirmation/render.js';
import { MACHINE_ACTION_STATUSES, MACHINE_ACTION_TYPES, machineActionSchema } from '../defender/schemas.js';
import { defineTool } from './define.js';
import { defaultedArg, machineIdSchema, optionalArg } from './shared.js';

export const listMachineActions = defineTool({
  name: 'list_machine_actions',
  title: 'List a device\'s machine actions',
  description:
    'List recent Defender machine actions for one device (restrict/unrestrict, isolation, scans, ...), newest first, optionally filtered by type and status. Use it to see whether an action is already pending before requesting one, or to find an action id to follow or cancel.',
  inputSchema: {
    machineId: machineIdSchema,
    type: optionalArg(z.enum(MACHINE_ACTION_TYPES)).describe('Only actions of this type, e.g. UnrestrictCodeExecution.'),
    status: optionalArg(z.enum(MACHINE_ACTION_STATUSES)).describe('Only actions in this status, e.g. Pending.'),
    limit: defaultedArg(z.number().int().min(1).max(100), 20).describe('How many to return at most (1 to 100; default 20).'),
  },
  outputSchema: {
    actions: z.array(machineActionSchema),
    total: z.number().describe('How many actions matched before the limit.'),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  async handler(args, ctx, { api }) {
    const all = await api.listMachineActions({ machineId: args.machineId, type: args.type, status: args.status }, ctx.signal);
    // Filter again here: a proxy or an older API version may ignore $filter.
    const matching = all.filter(
      (a) => (!args.type || a.type === args.type) && (!args.status || a.status === args.status) && (a.machineId == null || a.machineId.toLowerCase() === args.machineId),
    );
    const actions = matching.slice(0, args.limit);
    const what = [args.status, args.type].filter(Boolean).join(' ') || 'machine';
    const lines =
      actions.length === 0
        ? [`No ${what} actions for device ${args.machineId}.`]
        : [
            `${matching.length} ${what} action${matching.length === 1 ? '' : 's'} for device ${args.machineId}${matching.length > actions.length ? ` (showing the newest ${actions.length})` : ''}:`,
            // Defender's text escaped: a comment cannot add lines that look like more actions.
            ...actions.map((a) => displayText(`- ${a.creationDateTimeUtc ?? '?'} ${a.type ?? '?'} ${a.status ?? '?'} by ${a.requestor ?? '?'} (id ${a.id})`) + (a.requestorComment ? `: ${quoteForDisplay(a.requestorComment)}` : '')),
          ];
    return { content: [{ type: 'text', text: lines.join('\n') }], structuredContent: { actions, total: matching.length } };
  },
});
