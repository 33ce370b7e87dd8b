/** A DefenderApi that answers the unrestrict POST and the action list, counting both (unit tests of the Defender layer). */
import type { DefenderApi } from '../../src/defender/client.js';
import type { MachineAction } from '../../src/defender/schemas.js';

export function fakeApi(post: () => Promise<MachineAction>, listed: MachineAction[] = []) {
  const calls = { posts: 0, lists: 0 };
  const api = {
    unrestrictCodeExecution: async () => {
      calls.posts++;
      return post();
    },
    listMachineActions: async () => {
      calls.lists++;
      return listed;
    },
  } as unknown as DefenderApi;
  return { api, calls };
}
