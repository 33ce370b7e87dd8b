/**
 * `get_machine_action`: one machine action by id; optionally waits (bounded) until it reaches a final
 * state, polling under the shared rate budget and sending MCP progress notifications when asked.
 */
import { z } from 'zod';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { FINAL_ACTION_STATUSES, machineActionSchema, type MachineAction } from '../defender/schemas.js';
import { defineTool } from './define.js';
import { actionIdSchema, defaultedArg } from './shared.js';

/** How often waitForCompletion polls: the one default (the simulator's actions finish in seconds, so --simulator polls faster). */
export const DEFAULT_POLL_INTERVAL_MS = 5_000;

const inputSchema = {
  actionId: actionIdSchema,
  waitForCompletion: defaultedArg(z.boolean(), false).describe('Poll until the action is Succeeded, Failed, TimeOut or Cancelled (bounded by timeoutSeconds).'),
  timeoutSeconds: defaultedArg(z.number().int().min(1).max(600), 50).describe('How long to wait at most, in seconds (1 to 600; default 50, under the 60-second request timeout many clients use; longer waits need a client that resets its timeout on progress).'),
};

const outputSchema = {
  machineAction: machineActionSchema,
  final: z.boolean().describe('Whether the action has reached a final state (Succeeded, Failed, TimeOut, Cancelled).'),
  waited: z.object({ seconds: z.number(), polls: z.number(), timedOut: z.boolean() }).optional(),
};

const annotations = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true } as const;

const description =
  'Get one Defender machine action by its id (for example the one remove_app_restriction returned): type, status, requestor, comment and times. With waitForCompletion it polls until the action reaches a final state or timeoutSeconds passes, sending progress notifications if the client asked for them.';

export const getMachineAction = defineTool({
  name: 'get_machine_action',
  title: 'Get a machine action',
  description,
  inputSchema,
  outputSchema,
  annotations,
  async handler(args, ctx, { api, logger, polling }) {
    const { now, sleep, intervalMs: interval } = polling;
    let action = await api.getMachineAction(args.actionId, ctx.signal);
    const isFinal = (a: MachineAction) => FINAL_ACTION_STATUSES.has(a.status ?? '');
    if (!args.waitForCompletion) return result(action, isFinal(action));

    const started = now();
    const deadline = started + args.timeoutSeconds * 1000;
    let polls = 1;
    while (!isFinal(action) && now() + interval <= deadline && !ctx.signal?.aborted) {
      if (ctx.progressToken !== undefined && ctx.sendNotification) {
        await ctx.sendNotification({
          method: 'notifications/progress',
          params: {
            progressToken: ctx.progressToken,
            progress: polls,
            message: `Action ${action.id} is ${action.status ?? 'unknown'} after ${Math.round((now() - started) / 1000)} s; checking again in ${interval / 1000} s.`,
          },
        }).catch(() => undefined);
      }
      await sleep(interval);
      action = await api.getMachineAction(args.actionId, ctx.signal);
      polls++;
    }
    const final = isFinal(action);
    const waited = { seconds: Math.round((now() - started) / 1000), polls, timedOut: !final };
    if (!final) logger.info(`Stopped waiting for action ${action.id} after ${waited.seconds} s: still ${action.status}.`);
    return result(action, final, waited);
  },
});

function result(action: MachineAction, final: boolean, waited?: { seconds: number; polls: number; timedOut: boolean }): CallToolResult {
  const lines = [
    `Action ${action.id}: ${action.type ?? 'unknown type'} on ${action.computerDnsName ?? action.machineId ?? 'unknown device'}, status ${action.status ?? 'unknown'}.`,
    `Requested by ${action.requestor ?? 'unknown'} at ${action.creationDateTimeUtc ?? 'unknown time'}${action.requestorComment ? ` ("${action.requestorComment}")` : ''}; last update ${action.lastUpdateDateTimeUtc ?? 'unknown'}.`,
  ];
  if (waited?.timedOut) lines.push(`Not final after waiting ${waited.seconds} s; call again with waitForCompletion to keep waiting.`);
  else if (!final) lines.push('Not final yet: call again with waitForCompletion: true to wait for it.');
  return { content: [{ type: 'text', text: lines.join('\n') }], structuredContent: { machineAction: action, final, ...(waited ? { waited } : {}) } };
}
