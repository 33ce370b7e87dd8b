/**
 * Remote mode's fair share (MDE_RATE_LIMIT_PER_USER_PER_MINUTE): one analyst's agent cannot spend the
 * whole tenant's budget. Real HTTP server, real SDK clients, each signed in as a different analyst.
 */
import { describe, expect, it } from 'vitest';
import { ANALYST, SECOND_ANALYST } from '../fakes/entra-id.js';
import { RESTRICTED_DEVICE, textOf } from '../helpers/harness.js';
import { useRemote } from '../helpers/remote.js';

const remote = useRemote();

describe('remote mode: each analyst\'s fair share of the budget', () => {
  it('an analyst past their share is refused with nothing sent, while another analyst is still served', async () => {
    const r = await remote({ skipConfirmation: true, budget: { perMinute: 10, perHour: 100, maxWaitMs: 0, perUserPerMinute: 2 } });
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST }));
    const bob = await r.connect(await r.entra.userToken({ user: SECOND_ANALYST }));
    const list = (who: typeof ada) => who.tool('list_machine_actions', { machineId: RESTRICTED_DEVICE });

    expect((await list(ada)).isError).toBeFalsy();
    expect((await list(ada)).isError).toBeFalsy();
    const refused = await list(ada);
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/^Error \(rate_limited\): Your share of the Defender API budget is spent \(2 calls a minute per user\); nothing was sent\./);
    expect(r.sim.apiRequests()).toHaveLength(2);

    expect((await list(bob)).isError).toBeFalsy();
    expect((await list(bob)).isError).toBeFalsy();
    expect(r.sim.apiRequests()).toHaveLength(4);
  });

  it('a write cancelled by the client while it waits for the budget is never sent', async () => {
    const r = await remote({ skipConfirmation: true, budget: { perMinute: 1, perHour: 100, maxWaitMs: 5_000, minuteMs: 600 } });
    const ada = await r.connect(await r.entra.userToken({ user: ANALYST }));
    expect((await ada.tool('list_machine_actions', { machineId: RESTRICTED_DEVICE })).isError).toBeFalsy();
    const controller = new AbortController();
    const call = ada.client.callTool(
      { name: 'remove_app_restriction', arguments: { machineId: RESTRICTED_DEVICE, comment: 'INC-7 cancelled' } },
      undefined,
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 150);
    await expect(call).rejects.toThrow();
    // Past the slot it had been given: nothing went out.
    await new Promise((resolve) => setTimeout(resolve, 900));
    expect(r.sim.apiRequests('POST')).toHaveLength(0);
    // Its slot was given back: the next call needs no wait for it.
    expect((await ada.tool('list_machine_actions', { machineId: RESTRICTED_DEVICE })).isError).toBeFalsy();
  });
});
