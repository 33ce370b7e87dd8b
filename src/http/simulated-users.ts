/**
 * Stand-in analysts for trying the two-person rule against the simulator (`npm run demo:approval`):
 * MDE_HTTP_AUTH=simulated-users, which settings validation refuses without --simulator or on any bind but
 * loopback, so it can never stand in for anyone in a real tenant. A request names its persona as the
 * bearer token `simulated-user.<name>`; Defender (the simulator) records that persona as requestor.
 */
import type { Caller } from '../auth/caller.js';
import { BearerError } from '../auth/entra-jwt.js';

export const SIMULATED_TENANT = '00000000-0000-4000-8000-000000000000';
export const SIMULATED_TOKEN_PREFIX = 'simulated-user.';

/** ada and carol are analysts; bob also holds the approver role. */
export const SIMULATED_USERS: Record<string, { oid: string; preferredUsername: string; name: string; approver: boolean }> = {
  ada: { oid: '00000000-0000-4000-8000-00000000000a', preferredUsername: 'ada@simulator.invalid', name: 'Ada (simulated analyst)', approver: false },
  bob: { oid: '00000000-0000-4000-8000-00000000000b', preferredUsername: 'bob@simulator.invalid', name: 'Bob (simulated approver)', approver: true },
  carol: { oid: '00000000-0000-4000-8000-00000000000c', preferredUsername: 'carol@simulator.invalid', name: 'Carol (simulated analyst)', approver: false },
};

export function simulatedUserVerifier(approverRole: string) {
  return async (header: string | undefined): Promise<Caller> => {
    const m = header?.match(/^Bearer simulated-user\.([a-z]+)$/);
    const user = m ? SIMULATED_USERS[m[1]!] : undefined;
    if (!user) throw new BearerError(401, 'invalid_token', `Simulated users: send "Authorization: Bearer ${SIMULATED_TOKEN_PREFIX}<${Object.keys(SIMULATED_USERS).join('|')}>".`);
    return {
      kind: 'user',
      oid: user.oid,
      tid: SIMULATED_TENANT,
      preferredUsername: user.preferredUsername,
      name: user.name,
      roles: user.approver ? [approverRole] : [],
      token: `${SIMULATED_TOKEN_PREFIX}${m![1]}`,
      expiresAt: Math.floor(Date.now() / 1000) + 3600,
    };
  };
}
