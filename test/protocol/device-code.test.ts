/** The device-code sign-in is bounded in time: nobody signing in ends it with a clear error (real MSAL, fake Entra ID). */
import { afterEach, describe, expect, it } from 'vitest';
import { createDeviceCodeTokenProvider } from '../../src/auth/device-code.js';
import { createStderrLogger } from '../../src/log.js';
import { startFakes } from '../helpers/process.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!();
});

describe('device code sign-in bound', () => {
  it('stops waiting after MDE_DEVICE_CODE_TIMEOUT_SECONDS, says so in the prompt and the error, and sends nothing', async () => {
    const f = await startFakes();
    closers.push(() => f.sim.close());
    const logs: string[] = [];
    const tokens = createDeviceCodeTokenProvider({
      tenantId: 'contoso.onmicrosoft.com',
      clientId: '22222222-3333-4444-5555-666666666666',
      authorityHost: f.authorityHost,
      scope: 'https://api.securitycenter.microsoft.com/.default',
      tokenCachePath: undefined,
      timeoutSeconds: 2, // the setting's minimum is 30; the provider takes any bound, so the test stays short
      logger: createStderrLogger({ level: 'debug', write: (line) => void logs.push(line) }),
    });
    const started = Date.now();
    const error = await tokens.getToken().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ kind: 'authentication', message: expect.stringMatching(/within 2 s \(MDE_DEVICE_CODE_TIMEOUT_SECONDS\)/) });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(logs.some((l) => /enter the code \w+.*waits at most 2 s/.test(l))).toBe(true);
    expect(f.sim.apiRequests()).toHaveLength(0);
  });
});
