import { describe, expect, it } from 'vitest';
import { allowedHostnames, hostnameOf, isWildcardHost, originAllowed, urlHost } from '../../src/http/edge.js';
import { isLoopbackHost } from '../../src/net/hosts.js';

describe('HTTP edge helpers', () => {
  it('knows loopback binds', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', 'mcp.contoso.com', '128.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it('reads the host name of a Host header', () => {
    expect(hostnameOf('MCP.Contoso.com:8443')).toBe('mcp.contoso.com');
    expect(hostnameOf('[::1]:3000')).toBe('[::1]');
    expect(hostnameOf('127.0.0.1')).toBe('127.0.0.1');
  });

  it('allows the bind address, the resource URL host, loopback names on loopback, and listed hosts', () => {
    expect([...allowedHostnames({ bindHost: '127.0.0.1', resourceUrl: 'http://127.0.0.1:3000/mcp', extra: [] })].sort()).toEqual(['127.0.0.1', '[::1]', 'localhost']);
    expect([...allowedHostnames({ bindHost: '0.0.0.0', resourceUrl: 'https://mcp.contoso.com/mcp', extra: ['internal.contoso.com:8080'] })].sort()).toEqual([
      'internal.contoso.com',
      'mcp.contoso.com',
    ]);
  });

  it('accepts a missing Origin and listed origins only, compared as origins', () => {
    expect(originAllowed(undefined, [])).toBe(true);
    expect(originAllowed('https://evil.example', [])).toBe(false);
    expect(originAllowed('https://Inspector.contoso.com', ['https://inspector.contoso.com/'])).toBe(true);
    expect(originAllowed('https://inspector.contoso.com:444', ['https://inspector.contoso.com'])).toBe(false);
    expect(originAllowed('null', ['null'])).toBe(false);
  });
});

describe('HTTP edge helpers: edges found by mutation testing', () => {
  it('takes as loopback only a whole 127.x.y.z (any digits), ::1, ::ffff:127.x.y.z or localhost: MDE_HTTP_AUTH=none depends on it', () => {
    for (const h of ['127.10.200.30', '::ffff:127.0.0.1', '::ffff:127.10.200.30', '[::ffff:127.0.0.1]', 'LOCALHOST']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['127.0.0.1.evil.example', 'x127.0.0.1', '127.0.0', '::ffff:127.0.0.1.evil', 'x::ffff:127.0.0.1', '::ffff:127.a.0.1', '::]1', '::[1', '[::1]x']) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
  });

  it('knows the wildcard binds, and brackets IPv6 literals once', () => {
    for (const h of ['0.0.0.0', '::', '[::]']) expect(isWildcardHost(h), h).toBe(true);
    for (const h of ['127.0.0.1', '::1', '']) expect(isWildcardHost(h), h).toBe(false);
    expect([urlHost('::1'), urlHost('[::1]'), urlHost('127.0.0.1'), urlHost('mcp.contoso.com')]).toEqual(['[::1]', '[::1]', '127.0.0.1', 'mcp.contoso.com']);
  });

  it('reads a Host header: trimmed, only a trailing port removed, an IPv6 literal up to its bracket', () => {
    expect(hostnameOf('  MCP.contoso.com:443 ')).toBe('mcp.contoso.com');
    expect(hostnameOf('evil.example:80.mcp.contoso.com')).toBe('evil.example:80.mcp.contoso.com');
    expect(hostnameOf('[::1]x')).toBe('[::1]');
  });

  it('allows a named (non-wildcard, non-loopback) bind address, IPv6 bracketed and lower case', () => {
    expect([...allowedHostnames({ bindHost: '10.0.0.5', resourceUrl: 'https://mcp.contoso.com/mcp', extra: [] })].sort()).toEqual(['10.0.0.5', 'mcp.contoso.com']);
    expect([...allowedHostnames({ bindHost: 'FD00::AB', resourceUrl: 'https://mcp.contoso.com/mcp', extra: [] })].sort()).toEqual(['[fd00::ab]', 'mcp.contoso.com']);
  });

  it('refuses opaque origins (file:, data:) even when both sides are opaque', () => {
    expect(originAllowed('file:///tmp/a.html', ['file:///tmp/b.html'])).toBe(false);
    expect(originAllowed('not a url', ['not a url'])).toBe(false);
  });
});

describe('bind warnings', () => {
  it('warns about cleartext off loopback and a wildcard bind without a resource URL; nothing on loopback or with TLS', async () => {
    const { bindWarnings } = await import('../../src/http/server.js');
    expect(bindWarnings('127.0.0.1', false, undefined)).toEqual([]);
    expect(bindWarnings('10.0.0.5', true, undefined)).toEqual([]);
    expect(bindWarnings('10.0.0.5', false, undefined)).toEqual([expect.stringMatching(/Listening on 10\.0\.0\.5 without TLS: terminate TLS in front/)]);
    expect(bindWarnings('0.0.0.0', false, undefined)).toEqual([expect.stringMatching(/without TLS/), expect.stringMatching(/wildcard address without MDE_RESOURCE_URL/)]);
    expect(bindWarnings('0.0.0.0', true, 'https://mcp.contoso.com/mcp')).toEqual([]);
  });
});
