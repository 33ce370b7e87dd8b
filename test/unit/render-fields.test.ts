/** The confirmation renderer (src/confirmation/render.ts), property-tested: every field on its own line, whatever it holds. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findHidden } from '../../src/confirmation/characters.js';
import { approvalText, confirmationRequiredText, type ActionRequest, type DevicePreview } from '../../src/confirmation/render.js';

fc.configureGlobal({ seed: Number(process.env.FC_SEED ?? 20261129) });
const DEVICE = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';

describe('the renderer: every field where it belongs, whatever it holds', () => {
  const text = fc.string({ unit: 'binary', maxLength: 40 });
  const LINE_BREAK = /\r\n|[\n\r\u000B\u000C\u0085\u2028\u2029]/;
  it('the prompt has its fixed number of lines, and each field is on its own line', () => {
    fc.assert(
      fc.property(
        fc.record({ host: text, group: text, os: text, health: text, seen: text, tags: fc.array(text, { maxLength: 3 }), comment: text, requestor: text, actionComment: text, status: text, history: text, cancel: fc.boolean() }),
        (f) => {
          const preview: DevicePreview = { machineId: DEVICE, hostName: `H${f.host}`, osPlatform: f.os, osVersion: null, deviceGroup: f.group, healthStatus: f.health, lastSeen: f.seen, tags: f.tags, history: `Y${f.history}` };
          const request: ActionRequest = {
            action: 'x',
            verb: f.cancel ? `Cancel the ${f.status} action` : 'Lift the app restriction',
            consequence: 'Consequence.',
            machineId: DEVICE,
            comment: f.comment,
            ...(f.cancel ? { target: { id: 'a', type: 'UnrestrictCodeExecution', status: f.status, requestor: f.requestor, requestorComment: `C${f.actionComment}` } } : {}),
          };
          const lines = approvalText(request, preview).split(LINE_BREAK);
          const labels = ['', '', ...(f.cancel ? ['Action: '] : []), 'Device: ', 'Device id: ', 'History: ', 'Comment recorded in Defender: ', '', 'Consequence.'];
          expect(lines).toHaveLength(labels.length);
          labels.forEach((label, i) => expect(lines[i]!.startsWith(label), `line ${i}: ${lines[i]}`).toBe(true));
          expect(lines[0]!.endsWith('?')).toBe(true);
          expect(lines[1]).toBe('');
          const at = (label: string) => lines.find((l) => l.startsWith(label))!;
          expect(at('Device id: ')).toBe(`Device id: ${DEVICE}`);
          expect(at('Comment recorded in Defender: ')).toBe(`Comment recorded in Defender: ${JSON.stringify(f.comment).replace(/[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Cn}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/gu, (c) => {
            const cp = c.codePointAt(0)!;
            return cp > 0xffff ? `\\u{${cp.toString(16)}}` : `\\u${cp.toString(16).padStart(4, '0')}`;
          })}`);
          for (const line of lines) expect(findHidden(line)).toBeUndefined();
          const required = confirmationRequiredText(request, preview, { tool: 't', sameArguments: 'a', token: 'T', expiresAt: 'E' }).split(LINE_BREAK);
          expect(required).toHaveLength(2 + labels.length - 2 + 2); // the blank lines dropped, two lines before, two after
        },
      ),
      { numRuns: 300 },
    );
  });
});
