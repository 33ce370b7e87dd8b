/**
 * Names every layer agrees on, written once: which binds only this machine can reach (settings refuse
 * MDE_HTTP_AUTH=none anywhere else, and the HTTP edge allows loopback Host headers by it), and the GUID
 * form Entra writes ids in. No dependencies: config.ts and the stdio bundle use them.
 */

/** 127.0.0.0/8 (also as an IPv4-mapped IPv6 address), ::1, localhost: a bind that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * A GUID as Entra writes tenant, object and approval ids (any case). Both cases are spelled out instead
 * of a flag: tool input schemas publish it as a JSON Schema pattern, which has no flags.
 */
export const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
