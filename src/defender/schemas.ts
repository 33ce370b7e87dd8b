/**
 * Zod schemas of the Defender entities we read. Loose objects: every field the API returns is kept (the
 * agent gets the MachineAction as the API returned it), and only the fields we rely on are checked.
 */
import { z } from 'zod';

export const MACHINE_ACTION_STATUSES = ['Pending', 'InProgress', 'Succeeded', 'Failed', 'TimeOut', 'Cancelled'] as const;
export const MACHINE_ACTION_TYPES = [
  'RunAntiVirusScan',
  'Offboard',
  'LiveResponse',
  'CollectInvestigationPackage',
  'Isolate',
  'Unisolate',
  'StopAndQuarantineFile',
  'RestrictCodeExecution',
  'UnrestrictCodeExecution',
] as const;
export const FINAL_ACTION_STATUSES: ReadonlySet<string> = new Set(['Succeeded', 'Failed', 'TimeOut', 'Cancelled']);
export const OPEN_ACTION_STATUSES: ReadonlySet<string> = new Set(['Pending', 'InProgress']);

// A union with a described null, not .nullable(): zod would write a type array (["string","null"]),
// which clients that map schemas onto a single-type dialect reject (the MCP Inspector warns).
const NULL_VALUE = z.null().describe('Not set.');
const nullableString = z.union([z.string(), NULL_VALUE]).optional();

export const machineActionSchema = z
  .looseObject({
    id: z.string().min(1),
    type: nullableString,
    status: nullableString,
    machineId: nullableString,
    computerDnsName: nullableString,
    requestor: nullableString,
    requestorComment: nullableString,
    creationDateTimeUtc: nullableString,
    lastUpdateDateTimeUtc: nullableString,
  })
  // Every other field is kept as sent; `true`, not `{}`, so schema checkers see a deliberate free-form object.
  .meta({ additionalProperties: true })
  .describe('A Defender MachineAction, with every field the API returned.');
export type MachineAction = z.infer<typeof machineActionSchema>;

export const machineSchema = z.looseObject({
  id: z.string().min(1),
  computerDnsName: nullableString,
  osPlatform: nullableString,
  version: nullableString,
  healthStatus: nullableString,
  rbacGroupName: nullableString,
  rbacGroupId: z.union([z.string(), z.number(), NULL_VALUE]).optional(),
  lastSeen: nullableString,
  machineTags: z.union([z.array(z.string()), NULL_VALUE]).optional(),
});
export type Machine = z.infer<typeof machineSchema>;

export const machineListSchema = z.looseObject({ value: z.array(machineSchema) });
export const machineActionListSchema = z.looseObject({ value: z.array(machineActionSchema) });

/** The documented error shape: `{"error": {"code", "message", "target"}}`. */
export const apiErrorSchema = z.object({
  error: z.object({
    code: z.string().optional(),
    message: z.string().optional(),
    target: z.string().optional(),
  }),
});

