/** What each Defender answer becomes: kind, words and next step, branch by branch (the agent acts on them). */
import { describe, expect, it } from 'vitest';
import { DefenderClient, type Operation } from '../../src/defender/client.js';
import { mapErrorResponse, errorDetails, retryAfterMs, QUOTED_MESSAGE_MAX } from '../../src/defender/errors.js';
import { silentLogger } from '../../src/log.js';

const body = (code: string, message = 'm', target = 't') => JSON.stringify({ error: { code, message, target } });

describe('mapErrorResponse, every branch', () => {
  it.each<[Operation, number, string, RegExp, RegExp, string]>([
    ['unrestrict', 401, body('Unauthorized'), /rejected the access token \(HTTP 401\)\. Defender said: "m"/, /MDE_SCOPE/, 'authentication'],
    ['unrestrict', 403, body('DisabledFeature'), /feature this call needs is turned off/, /enable it in the Defender portal/, 'permission'],
    ['unrestrict', 403, body('Forbidden'), /not allowed to lift app restrictions \(HTTP 403\): it needs the application permission Machine\.RestrictExecution/, /Application permissions > Machine\.RestrictExecution/, 'permission'],
    ['cancel', 403, body('Forbidden'), /not allowed to cancel machine actions/, /Machine\.RestrictExecution/, 'permission'],
    ['list_actions', 403, body('Forbidden'), /not allowed to read devices or actions.*Machine\.Read\.All/, /Machine\.Read\.All/, 'permission'],
    ['read_action', 403, '', /Machine\.Read\.All/, /Grant admin consent/, 'permission'],
    ['find_machines', 403, '', /Machine\.Read\.All/, /restart the server/, 'permission'],
    ['read_action', 404, body('ResourceNotFound'), /no machine action with this id \(HTTP 404\)/, /Check the actionId/, 'not_found'],
    ['cancel', 404, '', /no machine action with this id/, /list_machine_actions/, 'not_found'],
    ['list_actions', 404, '', /found no such resource \(HTTP 404\)/, /Check the machineId/, 'not_found'],
    ['find_machines', 404, '', /found no such resource/, /find_machine resolves a host name/, 'not_found'],
    ['read_machine', 404, '', /no device with this id \(HTTP 404\)/, /retention period/, 'not_found'],
    ['unrestrict', 500, '', /failed \(HTTP 500\)/, /Check the device's machine actions before retrying/, 'upstream'],
    ['cancel', 503, '', /failed \(HTTP 503\)/, /a retry is safe but may be redundant/, 'upstream'],
    ['read_machine', 502, '', /failed \(HTTP 502\)/, /Retry in a minute/, 'upstream'],
    ['unrestrict', 400, body('OsPlatformNotSupported'), /rejected the request \(HTTP 400, OsPlatformNotSupported\)/, /does not support app restriction/, 'upstream'],
    ['unrestrict', 400, body('ClientVersionNotSupported'), /ClientVersionNotSupported/, /does not support app restriction/, 'upstream'],
    ['unrestrict', 400, body('InvalidRequestBody'), /rejected the request \(HTTP 400, InvalidRequestBody\)/, /Fix what Defender names/, 'upstream'],
    ['unrestrict', 409, '', /rejected the request \(HTTP 409\)\.$/, /Fix what Defender names/, 'upstream'],
  ])('%s %i %s', (op, status, text, message, next, kind) => {
    const e = mapErrorResponse(op, status, text);
    expect(e.kind).toBe(kind);
    expect(e.message).toMatch(message);
    expect(e.nextStep).toMatch(next);
    expect(e.upstream.status).toBe(status);
    expect(e.details.alreadyInProgress).toBeUndefined();
  });

  it('only a 400 is "already in progress"', () => {
    expect(mapErrorResponse('unrestrict', 409, body('ActiveRequestAlreadyExists')).details.alreadyInProgress).toBeUndefined();
    expect(mapErrorResponse('unrestrict', 400, body('X', 'The action is ALREADY IN PROGRESS.')).details.alreadyInProgress).toBe(true);
  });

  it('quotes at most 300 characters of Defender\'s message, and nothing of a body that is not the error shape', () => {
    expect(errorDetails(body('C', 'y'.repeat(400))).message).toHaveLength(QUOTED_MESSAGE_MAX);
    expect(errorDetails(body('C', 'short'))).toEqual({ code: 'C', target: 't', message: 'short' });
    expect(errorDetails('{"error": "flat"}')).toEqual({});
    expect(errorDetails('not json')).toEqual({});
    expect(errorDetails(JSON.stringify({ error: { code: 'C' } }))).toEqual({ code: 'C', target: undefined, message: undefined });
  });

  it('Retry-After: seconds, fractions, dates in the past, and back-off without it', () => {
    expect(retryAfterMs(' 3 ', 0, 0)).toBe(3000);
    expect(retryAfterMs('1.2', 0, 0)).toBe(1200);
    expect(retryAfterMs(new Date(0).toUTCString(), 0, 10_000)).toBe(0);
    expect(retryAfterMs('', 3, 0)).toBe(8000);
  });
});

describe('DefenderClient requests', () => {
  const tokens = { getToken: async () => 'tok', invalidate() {}, description: 'fake' } as never;
  function client(answer: (url: string, init: RequestInit) => Response | Promise<Response>) {
    const seen: { url: string; init: RequestInit }[] = [];
    const fetch = (async (url: string, init: RequestInit) => {
      seen.push({ url, init });
      return answer(url, init);
    }) as typeof globalThis.fetch;
    return { seen, api: new DefenderClient({ baseUrl: 'https://api.example//', tokens, timeoutMs: 1000, logger: silentLogger, fetch, sleep: async () => undefined }) };
  }
  const action = { id: 'a', type: 'UnrestrictCodeExecution', status: 'Pending', creationDateTimeUtc: '2026-01-01T00:00:00Z' };

  it('builds each request: method, path, OData filter with quotes doubled, headers, body', async () => {
    const { seen, api } = client(() => new Response(JSON.stringify({ value: [] }), { status: 200 }));
    await api.listMachineActions({ machineId: "ab'c", type: 'T', status: 'S' });
    await api.findMachines("o'neil", 'prefix');
    await api.findMachines('host', 'exact');
    expect(seen.map((s) => decodeURIComponent(s.url))).toEqual([
      "https://api.example/api/machineactions?$filter=machineId eq 'ab''c' and type eq 'T' and status eq 'S'",
      "https://api.example/api/machines?$filter=startswith(computerDnsName,'o''neil')&$top=50",
      "https://api.example/api/machines?$filter=computerDnsName eq 'host'&$top=50",
    ]);
    expect(seen[0]!.init.method).toBe('GET');
    expect(seen[0]!.init.headers).toEqual({ Authorization: 'Bearer tok', Accept: 'application/json' });
    expect(seen[0]!.init.body).toBeUndefined();
  });

  it('lists actions newest first', async () => {
    const { api } = client(() => new Response(JSON.stringify({ value: [{ id: '1', creationDateTimeUtc: '2026-01-01' }, { id: '2', creationDateTimeUtc: '2026-03-01' }, { id: '3' }] }), { status: 200 }));
    expect((await api.listMachineActions({ machineId: 'm' })).map((a) => a.id)).toEqual(['2', '1', '3']);
  });

  it('cancel posts {"Comment"} and hands back the action; an unreadable answer is outcome_unknown', async () => {
    const { seen, api } = client(() => new Response(JSON.stringify(action), { status: 200 }));
    expect(await api.cancelMachineAction('a-1', 'why')).toEqual(action);
    expect(seen[0]!.url).toBe('https://api.example/api/machineactions/a-1/cancel');
    expect(seen[0]!.init).toMatchObject({ method: 'POST', body: '{"Comment":"why"}', headers: { 'Content-Type': 'application/json' } });
    const bad = client(() => new Response('{"x":1}', { status: 200 }));
    await expect(bad.api.cancelMachineAction('a-1', 'why')).rejects.toMatchObject({ kind: 'outcome_unknown', nextStep: expect.stringMatching(/Read the action again/) });
  });

  it('a 404 on finding machines is an empty list; a body that is not a list is upstream', async () => {
    expect(await client(() => new Response('', { status: 404 })).api.findMachines('x', 'exact')).toEqual([]);
    await expect(client(() => new Response('{"value": 3}', { status: 200 })).api.findMachines('x', 'exact')).rejects.toMatchObject({ kind: 'upstream', message: expect.stringMatching(/Machine list this server cannot read/) });
    await expect(client(() => new Response('{}', { status: 200 })).api.getMachine('m')).rejects.toMatchObject({ message: expect.stringMatching(/a Machine this server cannot read/) });
    await expect(client(() => new Response('{}', { status: 200 })).api.getMachineAction('a')).rejects.toMatchObject({ message: expect.stringMatching(/a MachineAction this server cannot read/) });
  });

  it('a 401 signs in again once, then reports it', async () => {
    let invalidated = 0;
    const t = { getToken: async () => `tok${invalidated}`, invalidate: () => void invalidated++, description: 'fake' } as never;
    const seen: string[] = [];
    const fetch = (async (_url: string, init: RequestInit) => {
      seen.push((init.headers as Record<string, string>).Authorization!);
      return new Response('', { status: 401 });
    }) as typeof globalThis.fetch;
    const api = new DefenderClient({ baseUrl: 'https://api.example', tokens: t, timeoutMs: 1000, logger: silentLogger, fetch });
    await expect(api.getMachine('m')).rejects.toMatchObject({ kind: 'authentication' });
    expect(seen).toEqual(['Bearer tok0', 'Bearer tok1']);
  });

  it('429: retried up to three times within 45 s, then rate_limited with the wait', async () => {
    const sleeps: number[] = [];
    let n = 0;
    const fetch = (async () => (n++, new Response(body('TooManyRequests'), { status: 429, headers: { 'Retry-After': '10' } }))) as typeof globalThis.fetch;
    const api = new DefenderClient({ baseUrl: 'https://api.example', tokens, timeoutMs: 1000, logger: silentLogger, fetch, sleep: async (ms) => void sleeps.push(ms) });
    await expect(api.getMachine('m')).rejects.toMatchObject({ kind: 'rate_limited', details: { retryAfterSeconds: 10 }, upstream: { status: 429, code: 'TooManyRequests' } });
    expect(sleeps).toEqual([10_000, 10_000, 10_000]);
    expect(n).toBe(4);
  });

  it('network failures: refused before sending is "nothing was sent"; a write that may have left is outcome_unknown', async () => {
    const refused = () => Promise.reject(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }));
    await expect(client(refused).api.getMachine('m')).rejects.toMatchObject({ kind: 'upstream', message: expect.stringMatching(/Could not reach the Defender API at https:\/\/api\.example \(ECONNREFUSED/), nextStep: expect.stringMatching(/Nothing was sent/) });
    await expect(client(refused).api.unrestrictCodeExecution('m', 'c')).rejects.toMatchObject({ kind: 'upstream' });
    const reset = () => Promise.reject(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } }));
    await expect(client(reset).api.unrestrictCodeExecution('m', 'c')).rejects.toMatchObject({ kind: 'outcome_unknown', message: expect.stringMatching(/failed during unrestrict \(ECONNRESET\)/) });
    await expect(client(reset).api.getMachine('m')).rejects.toMatchObject({ kind: 'upstream' });
  });
});
