import { describe, expect, it } from 'vitest';
import { allowedHostnames, hostnameOf, isLoopbackHost, originAllowed } from '../../src/http/edge.js';

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
