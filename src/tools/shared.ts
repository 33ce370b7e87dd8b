/** Parameter and result schemas shared by the tools, so every tool validates the same way. */
import { z } from 'zod';
import { findHidden } from '../confirmation/characters.js';
import type { DevicePreview } from '../confirmation/render.js';
import type { Machine } from '../defender/schemas.js';

export const COMMENT_MAX_LENGTH = 1000;

// Accepts the id in any case with surrounding whitespace, then normalises it; the JSON Schema pattern
// clients see is the raw form. Anything else (host names, URLs, paths, inner spaces) is refused here,
// before any request is built from it.
const MACHINE_ID_HELP =
  'machineId must be the 40-character hexadecimal Defender device id (for example 1e5bc9d7e413ddd7902c2932e418702b84d0cc07). Host names, Entra device ids, URLs and paths are not accepted: resolve a host name with the find_machine tool first.';
export const machineIdSchema = z
  .string({ error: MACHINE_ID_HELP })
  .regex(/^\s*[0-9A-Fa-f]{40}\s*$/, { message: MACHINE_ID_HELP })
  .trim()
  .toLowerCase()
  .describe('The Defender device id: 40 hexadecimal characters, as shown in the Defender portal and the devices API.');

const COMMENT_HELP = 'comment is required: say why (for example the ticket and what was done); it is recorded in Defender.';
// A comment is recorded in Defender, where people, other tools and models read it: nothing in it may be
// invisible or break a line (characters.ts says which, by Unicode property). The error names the character.
export const commentSchema = z
  .string({ error: COMMENT_HELP })
  .trim()
  .min(1, { message: COMMENT_HELP })
  .max(COMMENT_MAX_LENGTH, { message: `comment must be at most ${COMMENT_MAX_LENGTH} characters.` })
  .superRefine((text, ctx) => {
    const hidden = findHidden(text);
    if (hidden) {
      ctx.addIssue({
        code: 'custom',
        message: `comment contains ${hidden.description} at position ${hidden.position}: comments must be one line of visible text (no control, format, invisible, private-use or line-separator characters, which can disguise text in a confirmation prompt or in Defender). Retype it as plain text.`,
      });
    }
  })
  .describe('Why; recorded in Defender as the action\'s comment (for example "INC-1234: device cleaned and re-imaged"). One line of visible text.');

/** null means "not given": OpenAI strict-mode conversions make models send null for every optional argument. */
export const NOT_GIVEN = z.null().describe('Same as leaving the argument out.');
export function optionalArg<T extends z.ZodType>(schema: T) {
  return z
    .union([schema, NOT_GIVEN])
    .optional()
    .transform((v): z.output<T> | undefined => v ?? undefined);
}
/** An optional argument with a default: left out or null, it takes `fallback`. */
export function defaultedArg<T extends z.ZodType>(schema: T, fallback: z.output<T>) {
  return z
    .union([schema, NOT_GIVEN])
    .optional()
    .transform((v): z.output<T> => v ?? fallback)
    .meta({ default: fallback });
}

/** A value Defender may leave out or send as null; written as anyOf (not a type array) in JSON Schema, for clients that map schemas onto a single-type dialect. */
const NULL_VALUE = z.null().describe('Not set.');
export function orNull<T extends z.ZodType>(schema: T) {
  return z.union([schema, NULL_VALUE]);
}

export const confirmationTokenSchema = optionalArg(z.string().max(4096)).describe(
    'Only for clients without elicitation: the token from an earlier `confirmation_required` result, passed back after the human approved that exact preview. Leave it out on the first call.',
  );

export const actionIdSchema = z
  .string({ error: 'actionId must be the GUID of a Defender machine action.' })
  .trim()
  .regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, {
    message: 'actionId must be the GUID of a Defender machine action (for example 8af71966-4671-4734-a777-a855875c0ec4), as returned by remove_app_restriction or list_machine_actions.',
  })
  .toLowerCase()
  .describe('The machine action id (a GUID).');

export const devicePreviewSchema = z.object({
  machineId: z.string(),
  hostName: orNull(z.string()),
  osPlatform: orNull(z.string()),
  osVersion: orNull(z.string()),
  deviceGroup: orNull(z.string()),
  healthStatus: orNull(z.string()),
  lastSeen: orNull(z.string()),
  tags: z.array(z.string()),
  note: z.string().optional(),
  history: z.string().optional().describe('What Defender\'s action history shows about the restriction.'),
});

/** A Defender Machine as the human recognises it: what previews and find_machine show. */
export function toPreview(machineId: string, m: Partial<Machine>): DevicePreview {
  return {
    machineId,
    hostName: m.computerDnsName ?? null,
    osPlatform: m.osPlatform ?? null,
    osVersion: m.version ?? null,
    deviceGroup: m.rbacGroupName ?? null,
    healthStatus: m.healthStatus ?? null,
    lastSeen: m.lastSeen ?? null,
    tags: m.machineTags ?? [],
  };
}
