/**
 * The one logger. stdout carries JSON-RPC, so every line goes to stderr. Messages pass through the
 * redactor so a secret that slipped into an error message never reaches a log.
 */
import { redact } from './errors.js';

export type LogLevel = 'debug' | 'info' | 'warning' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warning: 2, error: 3 };

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  /** Also send info and above (redacted) somewhere else, e.g. as MCP logging notifications; returns its removal. */
  addSink?(sink: (level: Exclude<LogLevel, 'debug'>, message: string) => void, wants?: (level: Exclude<LogLevel, 'debug'>) => boolean): () => void;
}

/** What a JSON line says about the call it belongs to, where known (request-scope.ts `callLogFields`). */
export interface LogFields {
  requestId?: string | number;
  tool?: string;
  user?: string;
  session?: string;
}

export function createStderrLogger(
  opts: {
    level?: LogLevel;
    secrets?: readonly string[];
    write?: (line: string) => void;
    /** text (default): `[mde-app-restriction-mcp] level: message`; json: one object per line, for log shippers. */
    format?: 'text' | 'json';
    /** json: the call in progress, if any. */
    fields?: () => LogFields | undefined;
  } = {},
): Logger {
  const min = ORDER[opts.level ?? 'info'];
  const secrets = opts.secrets ?? [];
  const write = opts.write ?? ((line: string) => void process.stderr.write(line));
  const json = opts.format === 'json';
  type Sink = { send: (level: Exclude<LogLevel, 'debug'>, message: string) => void; wants?: (level: Exclude<LogLevel, 'debug'>) => boolean };
  const sinks: Sink[] = [];
  const emit = (level: LogLevel, message: string) => {
    // Redacted once, and only if someone reads it: a line below the level with no sink that wants it costs nothing.
    let cleaned: string | undefined;
    const cleanOf = () => (cleaned ??= redact(message, secrets));
    if (ORDER[level] >= min) {
      const clean = cleanOf();
      // The call's fields (a user name, a request id) are redacted too: the same rule for every byte written.
      write(json ? `${redact(JSON.stringify({ time: new Date().toISOString(), level, message: clean, ...opts.fields?.() }), secrets)}\n` : `[mde-app-restriction-mcp] ${level}: ${clean}\n`);
    }
    if (level !== 'debug') {
      for (const sink of sinks) {
        try {
          if (sink.wants && !sink.wants(level)) continue;
          sink.send(level, cleanOf());
        } catch {
          // a sink that fails (e.g. the client went away) must not break the caller
        }
      }
    }
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warning: (m) => emit('warning', m),
    error: (m) => emit('error', m),
    addSink: (send, wants) => {
      const sink: Sink = wants ? { send, wants } : { send };
      sinks.push(sink);
      return () => {
        const i = sinks.indexOf(sink);
        if (i >= 0) sinks.splice(i, 1);
      };
    },
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warning() {}, error() {} };
