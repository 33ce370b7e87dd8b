/**
 * What holds up shutdown: every request but an open GET stream, and every tool call, also after its
 * client went away (a write may be on its way to Defender). A call holds the request that carried it,
 * which then ends when both are done; a call outside any request (none today) counts on its own.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface Drain {
  /**
   * Count a request until its response closed (`closed` is given the release) and every tool call it
   * carried ended; calls started inside `run` are carried by it.
   */
  begin(closed: (release: () => void) => void): { run<T>(next: () => T): T };
  /** Keep counting `work` (a tool call) until it settles. */
  trackCall<T>(work: Promise<T>): Promise<T>;
  inFlight(): number;
  /** Resolves true once nothing is in flight, or false after `graceMs`. */
  drained(graceMs: number): Promise<boolean>;
}

export function createDrain(): Drain {
  let inFlight = 0;
  let waiters: (() => void)[] = [];
  const end = () => {
    inFlight--;
    if (inFlight === 0) for (const w of waiters.splice(0)) w();
  };
  const carrying = new AsyncLocalStorage<{ hold(): () => void }>();
  return {
    begin(closed) {
      inFlight++;
      // Ends when the response closed and every tool call it carried ended.
      let holds = 1;
      const release = () => {
        if (--holds === 0) end();
      };
      const held = {
        hold() {
          holds++;
          let released = false;
          return () => {
            if (!released) release();
            released = true;
          };
        },
      };
      closed(release);
      return { run: (next) => carrying.run(held, next) };
    },
    trackCall(work) {
      const request = carrying.getStore();
      if (!request) {
        inFlight++;
        return work.finally(end);
      }
      return work.finally(request.hold());
    },
    inFlight: () => inFlight,
    async drained(graceMs) {
      if (inFlight === 0) return true;
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        new Promise<boolean>((resolve) => waiters.push(() => resolve(true))),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
      ]);
      clearTimeout(timer);
      waiters = [];
      return done;
    },
  };
}
