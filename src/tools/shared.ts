/** Parameter and result schemas shared by the tools, so every tool validates the same way. */
import { z } from 'zod';
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
// Control characters and bidirectional overrides could make a comment display as something else in a
// confirmation prompt or an audit viewer; tabs and line breaks are fine.
export const DECEPTIVE_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2066-\u2069\uFEFF]/u;
export const commentSchema = z
  .string({ error: COMMENT_HELP })
  .trim()
  .min(1, { message: COMMENT_HELP })
  .max(COMMENT_MAX_LENGTH, { message: `comment must be at most ${COMMENT_MAX_LENGTH} characters.` })
  .refine((text) => !DECEPTIVE_CHARACTERS.test(text), {
    message: 'comment must not contain control characters, zero-width characters or bidirectional overrides (they can disguise text in a confirmation prompt).',
  })
  .describe('Why; recorded in Defender as the action\'s comment (for example "INC-1234: device cleaned and re-imaged").');

export const confirmationTokenSchema = z
  .string()
  .max(4096)
  .optional()
  .describe(
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
  hostName: z.string().nullable(),
  osPlatform: z.string().nullable(),
  osVersion: z.string().nullable(),
  deviceGroup: z.string().nullable(),
  healthStatus: z.string().nullable(),
  lastSeen: z.string().nullable(),
  tags: z.array(z.string()),
  note: z.string().optional(),
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
