/** The Defender client at its edges: what each odd answer, network failure or cancellation becomes, word for word. */
import { describe, expect, it } from 'vitest';
import { DefenderClient } from '../../src/defender/client.js';
import { mapErrorResponse, retryAfterMs } from '../../src/defender/errors.js';
import { silentLogger } from '../../src/log.js';

const tokens = { getToken: async () => 'tok', invalidate() {}, description: 'fake' } as never;
const ID = '1e5bc9d7e413ddd7902c2932e418702b84d0cc07';
const CHECK_ACTIONS = 'Do not send it again blindly: list the device\'s machine actions (or check the Defender portal\'s Action center) for a pending or in-progress action first.';
const machine = { id: ID, computerDnsName: 'ws-1' };

function client(answer: (url: string, init: RequestInit) => Response | Promise<Response>, over: { timeoutMs?: number; sleep?: (ms: number) => Promise<void> } = {}) {
  const seen: { url: string; init: RequestInit }[] = [];
  const fetch = (async (url: string, init: RequestInit) => (seen.push({ url, init }), answer(url, init))) as typeof globalThis.fetch;
  return { seen, api: new DefenderClient({ baseUrl: 'https://api.example', tokens, timeoutMs: over.timeoutMs ?? 1000, logger: silentLogger, fetch, sleep: over.sleep ?? (async () => undefined) }) };
}
const json = (body: unknown, status = 200) => () => new Response(JSON.stringify(body), { status });
const shape = (e: unknown) => {
  const t = e as { kind: string; message: string; nextStep: string };
  return { kind: t.kind, message: t.message, nextStep: t.nextStep };
};

describe('Retry-After', () => {
  it('takes whole seconds or decimals only; anything else is a date or falls back to back-off', () => {
    expect(retryAfterMs('1.25', 0, 0)).toBe(1250);
    expect(retryAfterMs('5 s', 0, 0)).toBe(1000);
    expect(retryAfterMs('x5', 1, 0)).toBe(2000);
  });
});

describe('DefenderClient answers', () => {
  it('only 2xx is success: a 300 or an error with a JSON body is mapped', async () => {
    await expect(client(json(machine, 300)).api.getMachine(ID)).rejects.toMatchObject({ kind: 'upstream', upstream: { status: 300 } });
    await expect(client(json({ error: { code: 'ResourceNotFound', message: 'gone' } }, 404)).api.getMachine(ID)).rejects.toMatchObject({ kind: 'not_found', message: 'Defender has no device with this id (HTTP 404). Defender said: "gone"' });
    expect(await client(json(machine, 200)).api.getMachine(ID)).toMatchObject({ computerDnsName: 'ws-1' });
  });

  it('a 2xx that is not JSON: a read is an upstream error, a write an unknown outcome', async () => {
    const notJson = () => new Response('<html>', { status: 200 });
    const empty = () => new Response('  ', { status: 201 });
    const read = await client(notJson).api.getMachine(ID).catch((e: unknown) => e);
    expect(shape(read)).toEqual({ kind: 'upstream', message: 'The Defender API answered HTTP 200 to read_machine with a body that is not JSON.', nextStep: 'Retry in a moment; if it repeats, a proxy may be rewriting responses.' });
    expect((read as { upstream: unknown }).upstream).toEqual({ status: 200 });
    expect(shape(await client(empty).api.unrestrictCodeExecution(ID, 'c').catch((e: unknown) => e))).toEqual({
      kind: 'outcome_unknown',
      message: 'The Defender API answered HTTP 201 to unrestrict with an empty body: the request was accepted, but its action could not be read.',
      nextStep: CHECK_ACTIONS,
    });
  });

  it('a write answered with an action it cannot read is an unknown outcome; a read of one is an upstream error', async () => {
    expect(shape(await client(json({ nope: 1 }, 201)).api.unrestrictCodeExecution(ID, 'c').catch((e: unknown) => e))).toEqual({
      kind: 'outcome_unknown',
      message: 'Defender accepted the request, but returned a MachineAction this server cannot read.',
      nextStep: CHECK_ACTIONS,
    });
    const cancel = client(json({ nope: 1 }, 201));
    expect(shape(await cancel.api.cancelMachineAction('act-1', 'why').catch((e: unknown) => e))).toEqual({
      kind: 'outcome_unknown',
      message: 'Defender accepted the cancellation, but returned a MachineAction this server cannot read.',
      nextStep: 'Read the action again to see its status.',
    });
    expect(cancel.seen[0]!.url).toBe('https://api.example/api/machineactions/act-1/cancel');
    expect(cancel.seen[0]!.init).toMatchObject({ method: 'POST', body: '{"Comment":"why"}', headers: { 'Content-Type': 'application/json' } });
    expect(shape(await client(json({ value: [{ nope: 1 }] })).api.listMachineActions({ machineId: ID }).catch((e: unknown) => e))).toEqual({
      kind: 'upstream',
      message: 'The Defender API returned a MachineAction list this server cannot read.',
      nextStep: 'Retry in a moment; if it repeats, the API may have changed: report it.',
    });
  });

  it('find_machines: a 404 is no match, any other error ends the call', async () => {
    const none = client(json({ error: { code: 'ResourceNotFound' } }, 404));
    expect(await none.api.findMachines('ws', 'exact')).toEqual([]);
    await expect(client(json({ error: { code: 'Forbidden' } }, 403)).api.findMachines('ws', 'exact')).rejects.toMatchObject({ kind: 'permission' });
  });

  it('429: the words of the refusal, and a wait that exactly fills the 45 s allowance is still waited', async () => {
    const sleeps: number[] = [];
    let n = 0;
    const r429 = (after: string) => () => (n++, new Response(JSON.stringify({ error: { code: 'TooManyRequests' } }), { status: 429, headers: { 'Retry-After': after } }));
    const c = client(r429('15'), { sleep: async (ms) => void sleeps.push(ms) });
    const e = await c.api.getMachine(ID).catch((x: unknown) => x);
    expect(sleeps).toEqual([15_000, 15_000, 15_000]);
    expect(n).toBe(4);
    expect(shape(e)).toEqual({
      kind: 'rate_limited',
      message: 'The Defender API is rate-limiting this app (HTTP 429); the request was not accepted.',
      nextStep: 'Wait 15 seconds and call again. The API allows 100 calls a minute and 1,500 an hour per app.',
    });
  });

  it('a call cancelled while waiting out a 429 stops there, with nothing more sent', async () => {
    const controller = new AbortController();
    let n = 0;
    const c = client(() => (n++, new Response('', { status: 429, headers: { 'Retry-After': '1' } })), {
      sleep: () => {
        controller.abort();
        return new Promise(() => undefined);
      },
    });
    expect(shape(await c.api.getMachine(ID, controller.signal).catch((e: unknown) => e))).toEqual({
      kind: 'not_confirmed',
      message: 'Not performed: the client cancelled the call before read_machine was sent. Nothing was sent to Defender.',
      nextStep: 'Call again if it is still wanted.',
    });
    expect(n).toBe(1);
  });

  it('a call cancelled while on the wire: a read is simply cancelled, a write\'s outcome is unknown', async () => {
    const inFlight = (controller: AbortController) => () => {
      controller.abort();
      return Promise.reject(new DOMException('aborted', 'AbortError'));
    };
    const a = new AbortController();
    expect(shape(await client(inFlight(a)).api.getMachine(ID, a.signal).catch((e: unknown) => e))).toEqual({
      kind: 'not_confirmed',
      message: 'The client cancelled the call during read_machine.',
      nextStep: 'Call again if it is still wanted.',
    });
    const b = new AbortController();
    expect(shape(await client(inFlight(b)).api.unrestrictCodeExecution(ID, 'c', b.signal).catch((e: unknown) => e))).toEqual({
      kind: 'outcome_unknown',
      message: 'The client cancelled the call while unrestrict was being sent; Defender may or may not have accepted it.',
      nextStep: CHECK_ACTIONS,
    });
  });

  it('timeouts: a read is a timeout, a write an unknown outcome', async () => {
    const hang = (_url: string, init: RequestInit) => new Promise<Response>((_, reject) => init.signal!.addEventListener('abort', () => reject(new DOMException('timed out', 'AbortError'))));
    expect(shape(await client(hang, { timeoutMs: 5 }).api.getMachine(ID).catch((e: unknown) => e))).toEqual({
      kind: 'timeout',
      message: 'The Defender API did not answer read_machine within 5 ms.',
      nextStep: 'Retry; raise MDE_HTTP_TIMEOUT_MS if the network is slow.',
    });
    expect(shape(await client(hang, { timeoutMs: 5 }).api.unrestrictCodeExecution(ID, 'c').catch((e: unknown) => e))).toEqual({
      kind: 'outcome_unknown',
      message: 'The Defender API did not answer unrestrict within 5 ms; the request may or may not have been accepted.',
      nextStep: CHECK_ACTIONS,
    });
  });

  it('a name that does not resolve is "nothing was sent", for a write too; a failure without a code says so', async () => {
    for (const code of ['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED']) {
      const fail = () => Promise.reject(Object.assign(new TypeError('fetch failed'), { cause: { code } }));
      expect(shape(await client(fail).api.unrestrictCodeExecution(ID, 'c').catch((e: unknown) => e))).toEqual({
        kind: 'upstream',
        message: `Could not reach the Defender API at https://api.example (${code}).`,
        nextStep: 'Check MDE_API_URL and the network path to it, then retry. Nothing was sent.',
      });
    }
    const bare = () => Promise.reject(new TypeError('socket hang up'));
    expect(shape(await client(bare).api.unrestrictCodeExecution(ID, 'c').catch((e: unknown) => e))).toMatchObject({
      kind: 'outcome_unknown',
      message: 'The connection to the Defender API failed during unrestrict (network error); the request may or may not have been accepted.',
    });
    expect(shape(await client(bare).api.getMachine(ID).catch((e: unknown) => e)).message).toBe('Could not reach the Defender API at https://api.example (socket hang up).');
  });
});

describe('403: the permission each operation needs', () => {
  it.each([
    ['cancel', 'cancel machine actions', 'Machine.RestrictExecution'],
    ['read_action', 'read devices or actions', 'Machine.Read.All'],
    ['find_machines', 'read devices or actions', 'Machine.Read.All'],
    ['read_machine', 'read devices or actions', 'Machine.Read.All'],
  ] as const)('%s', (op, what, permission) => {
    const e = mapErrorResponse(op, 403, '');
    expect(e.message).toBe(`The app is not allowed to ${what} (HTTP 403): it needs the application permission ${permission}.`);
    expect(e.nextStep).toContain(`Application permissions > ${permission}, then "Grant admin consent"`);
  });
});
