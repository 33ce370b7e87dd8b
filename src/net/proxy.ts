/**
 * Corporate proxies. Node 20's `fetch` ignores HTTPS_PROXY, HTTP_PROXY and NO_PROXY. When one of them is
 * set, undici's EnvHttpProxyAgent becomes the global dispatcher, so every outbound call (the Defender
 * client, MSAL's token, device-code and managed-identity requests, which all use the global `fetch`) goes
 * through the proxy with a CONNECT tunnel, except hosts NO_PROXY lists. undici is imported only then, so
 * a start without a proxy loads nothing more.
 */
import { StartupError } from '../errors.js';
import type { Logger } from '../log.js';

export interface ProxySettings {
  /** For http:// targets (HTTP_PROXY), as given (it may carry credentials). */
  httpProxy: string | undefined;
  /** For https:// targets (HTTPS_PROXY, else HTTP_PROXY). */
  httpsProxy: string | undefined;
  /** NO_PROXY plus the instance metadata address, which no proxy can reach. */
  noProxy: string;
}

// The Azure instance metadata service is link-local to the VM: a proxy can never reach it.
const ALWAYS_DIRECT = '169.254.169.254';

/** Read the proxy variables (lower case wins, as in curl and undici). Pure; throws StartupError on a bad URL. */
export function proxySettings(env: Record<string, string | undefined>): ProxySettings | undefined {
  const pick = (name: string) => {
    const value = (env[name.toLowerCase()] ?? env[name])?.trim();
    return value ? { name, url: normalise(name, value) } : undefined;
  };
  const http = pick('HTTP_PROXY');
  const https = pick('HTTPS_PROXY') ?? http;
  if (!http && !https) return undefined;
  const noProxy = [(env.no_proxy ?? env.NO_PROXY ?? '').trim(), ALWAYS_DIRECT].filter(Boolean).join(',');
  return { httpProxy: http?.url, httpsProxy: https?.url, noProxy };
}

function normalise(name: string, value: string): string {
  // `proxy.corp:8080` without a scheme means http, as in curl.
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    url = new URL('invalid:');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) {
    throw new StartupError([
      `${name} is not a proxy URL this server can use (${redactProxyUrl(value)}). Set ${name} (or ${name.toLowerCase()}) to a URL such as http://proxy.example.com:8080, or unset it.`,
    ]);
  }
  return url.href;
}

/** A proxy URL fit for messages and logs: scheme, host and port, never user or password. */
export function redactProxyUrl(value: string): string {
  try {
    const url = new URL(value);
    return `${url.protocol}//${url.host}`;
  } catch {
    return value.replace(/\/\/[^@/]*@/, '//').replace(/^[^@/:]*:[^@/]*@/, '');
  }
}

let active: ProxySettings | undefined;
const lastConnectError = new Map<string, unknown>();

/**
 * Install the proxy from the environment, if any. Called once at start, before any outbound call.
 * Throws StartupError (exit 2 at start) when a proxy variable is not a usable URL.
 */
export async function useProxyFromEnvironment(env: Record<string, string | undefined>, logger: Logger): Promise<void> {
  const settings = proxySettings(env);
  if (!settings) return;
  // undici is CommonJS: the bundle's lazy chunk exposes it as the default export only.
  const [undici, { subscribe }] = await Promise.all([import('undici'), import('node:diagnostics_channel')]);
  const { EnvHttpProxyAgent, setGlobalDispatcher } = undici.default ?? undici;
  setGlobalDispatcher(new EnvHttpProxyAgent({ httpProxy: settings.httpProxy, httpsProxy: settings.httpsProxy, noProxy: settings.noProxy }));
  active = settings;
  // MSAL reports a failed request only as "fetch failed": keep undici's reason per destination, so that
  // an error can say what the proxy answered.
  subscribe('undici:client:connectError', (message) => {
    const { connectParams, error } = message as { connectParams?: { protocol?: string; host?: string }; error?: unknown };
    if (connectParams?.protocol && connectParams.host) lastConnectError.set(`${connectParams.protocol}//${connectParams.host}`, error);
  });
  subscribe('undici:client:connected', (message) => {
    const { connectParams } = message as { connectParams?: { protocol?: string; host?: string } };
    if (connectParams?.protocol && connectParams.host) lastConnectError.delete(`${connectParams.protocol}//${connectParams.host}`);
  });
  const shown = [...new Set([settings.httpsProxy, settings.httpProxy].filter((p): p is string => !!p).map(redactProxyUrl))].join(', ');
  logger.info(`Outbound requests go through the proxy ${shown}; direct to: ${settings.noProxy}.`);
}

/** The proxy (redacted) a request to `target` goes through, or undefined when it goes direct. */
export function proxyFor(target: string, settings: ProxySettings | undefined = active): string | undefined {
  if (!settings) return undefined;
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return undefined;
  }
  const proxy = url.protocol === 'https:' ? settings.httpsProxy : settings.httpProxy;
  if (!proxy || bypasses(settings.noProxy, url)) return undefined;
  return redactProxyUrl(proxy);
}

// NO_PROXY as undici reads it: `*`, host names (a suffix match on domain boundaries), optional `:port`.
function bypasses(noProxy: string, url: URL): boolean {
  const hostname = url.host.replace(/:\d*$/, '').toLowerCase();
  const port = Number.parseInt(url.port, 10) || (url.protocol === 'https:' ? 443 : 80);
  if (noProxy.split(/[,\s]/).some((e) => e === '*')) return true;
  return noProxy
    .split(/[,\s]/)
    .filter(Boolean)
    .some((entry) => {
      const parsed = entry.match(/^(.+):(\d+)$/);
      const host = (parsed ? parsed[1]! : entry).replace(/^\*?\./, '').toLowerCase();
      if (parsed && Number(parsed[2]) !== port) return false;
      return hostname === host || hostname.endsWith(`.${host}`);
    });
}

/**
 * If a failed request to `target` went through a proxy, say so, naming the proxy (never its credentials)
 * and what it answered when it refused the tunnel. `neverSent` is true when the proxy refused or could not
 * be reached: the request then never left for its destination. `recordedReason` also consults the last
 * connection failure recorded for that destination, for callers (MSAL) whose errors lose undici's reason;
 * only for requests that are safe to repeat, since a recorded failure may belong to another request.
 */
export function proxyFailure(
  error: unknown,
  target: string,
  opts: { recordedReason?: boolean } = {},
): { text: string; neverSent: boolean } | undefined {
  const proxy = proxyFor(target);
  if (!proxy) return undefined;
  const chain: string[] = [];
  const codes: string[] = [];
  let origin: string | undefined;
  try {
    origin = new URL(target).origin;
  } catch {
    origin = undefined;
  }
  // undici's own reason first (the error's cause chain), then what the connect channel recorded.
  const recorded = origin && opts.recordedReason ? lastConnectError.get(origin) : undefined;
  for (const start of [error, recorded]) {
    for (let e = start as { message?: string; code?: string; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
      if (e.message) chain.push(e.message);
      if (e.code) codes.push(e.code);
    }
  }
  const refused = chain.join(' ').match(/Proxy response \((\d{3})\)|Proxy Authentication Required \((\d{3})\)/);
  if (refused) {
    const status = refused[1] ?? refused[2];
    const why = status === '407' ? ': proxy authentication required; check the user and password in the proxy URL' : '';
    return { text: `the proxy ${proxy} refused to open a tunnel (HTTP ${status}${why})`, neverSent: true };
  }
  const unreachable = codes.find((c) => ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'].includes(c));
  if (unreachable) return { text: `the proxy ${proxy} could not be reached (${unreachable})`, neverSent: true };
  return { text: `through the proxy ${proxy}`, neverSent: false };
}
