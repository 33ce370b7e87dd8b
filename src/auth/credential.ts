/** How the server signs in to Entra ID (config.ts builds it from the settings; auth/ uses it). */
export type Credential =
  | { kind: 'secret'; secret: string }
  | { kind: 'certificate'; path: string; password: string | undefined }
  | { kind: 'managed-identity'; userAssignedClientId: string | undefined }
  | { kind: 'device-code'; tokenCachePath: string | undefined; timeoutSeconds: number };
