import { describe, expect, it } from 'vitest';
import { proxyFor, proxySettings, redactProxyUrl } from '../../src/net/proxy.js';

describe('proxy settings (pure)', () => {
  it('is off without a proxy variable', () => {
    expect(proxySettings({})).toBeUndefined();
    expect(proxySettings({ NO_PROXY: 'example.org' })).toBeUndefined();
  });

  it('reads either case (lower case wins), falls back from HTTPS_PROXY to HTTP_PROXY, and adds a scheme like curl', () => {
    expect(proxySettings({ https_proxy: 'http://a:1', HTTPS_PROXY: 'http://b:2' })?.httpsProxy).toBe('http://a:1/');
    const onlyHttp = proxySettings({ HTTP_PROXY: 'proxy.corp:8080' })!;
    expect(onlyHttp).toMatchObject({ httpProxy: 'http://proxy.corp:8080/', httpsProxy: 'http://proxy.corp:8080/' });
  });

  it('always sends the instance metadata address direct, after NO_PROXY', () => {
    expect(proxySettings({ HTTPS_PROXY: 'http://p:3128', no_proxy: '.corp.example, localhost' })!.noProxy).toBe('.corp.example, localhost,169.254.169.254');
  });

  it('refuses a URL it cannot use, without echoing credentials', () => {
    expect(() => proxySettings({ HTTPS_PROXY: 'socks5://user:hunter2@p:1080' })).toThrow(/HTTPS_PROXY is not a proxy URL/);
    expect(() => proxySettings({ HTTPS_PROXY: 'socks5://user:hunter2@p:1080' })).not.toThrow(/hunter2/);
  });

  it('names the proxy a destination uses, honouring NO_PROXY (suffixes, ports, *)', () => {
    const s = proxySettings({ HTTPS_PROXY: 'http://jdoe:pw@proxy.corp:3128', NO_PROXY: '.internal.example, login.microsoftonline.com:8443' })!;
    expect(proxyFor('https://api.security.microsoft.com/api/machines', s)).toBe('http://proxy.corp:3128');
    expect(proxyFor('https://eu.api.security.microsoft.com', s)).toBe('http://proxy.corp:3128');
    expect(proxyFor('https://host.internal.example', s)).toBeUndefined();
    expect(proxyFor('https://login.microsoftonline.com', s)).toBe('http://proxy.corp:3128');
    expect(proxyFor('https://login.microsoftonline.com:8443', s)).toBeUndefined();
    expect(proxyFor('http://169.254.169.254/metadata', s)).toBeUndefined();
    expect(proxyFor('https://x.example', proxySettings({ HTTPS_PROXY: 'http://p:1', NO_PROXY: '*' }))).toBeUndefined();
  });

  it('redacts user and password', () => {
    expect(redactProxyUrl('http://corp%5Cjdoe:s3cret@proxy.corp:3128/')).toBe('http://proxy.corp:3128');
  });
});
