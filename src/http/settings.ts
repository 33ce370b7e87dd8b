/** Remote mode's settings as config.ts builds them; http/ uses them. Types only. */
export interface HttpSettings {
  host: string;
  port: number;
  /** simulated-users: stand-in analysts, only with --simulator on loopback (the approval demo). */
  auth: 'entra' | 'none' | 'simulated-users';
  /** The API's Application ID URI (default `api://<client id>`). */
  appIdUri: string;
  /** Short scope name, as Entra writes it in `scp`. */
  requiredScope: string;
  /** The public URL of the endpoint; default: the bound address. */
  resourceUrl: string | undefined;
  allowedOrigins: string[];
  allowedHosts: string[];
  appCallerRole: string | undefined;
  /** How long a token that passed is taken as checked (0: every request is checked in full). */
  tokenReuseMs: number;
  sessionIdleMs: number;
  maxSessionsPerUser: number;
  shutdownGraceMs: number;
  tlsCertPath: string | undefined;
  tlsKeyPath: string | undefined;
}
