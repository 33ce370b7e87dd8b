/** Start-up checks of the certificate credential: a key that does not match its certificate stops the server. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCertificate } from '../../src/auth/msal.js';
import { StartupError } from '../../src/errors.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');

describe('loadCertificate', () => {
  it('accepts a key with its own certificate', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mde-cert-'));
    writeFileSync(join(dir, 'ok.pem'), fixture('client-plain.pem'));
    expect(loadCertificate(join(dir, 'ok.pem'), undefined).thumbprintSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a key whose certificate belongs to another key, naming the setting', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mde-cert-'));
    const key = fixture('client-plain.pem').split('-----BEGIN CERTIFICATE-----')[0]!;
    writeFileSync(join(dir, 'mixed.pem'), `${key}${fixture('server.pem')}`);
    let error: unknown;
    try {
      loadCertificate(join(dir, 'mixed.pem'), undefined);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StartupError);
    expect((error as StartupError).problems[0]).toMatch(/does not match its certificate/);
    expect((error as StartupError).problems[0]).toMatch(/AZURE_CLIENT_CERTIFICATE_PATH/);
  });
});
