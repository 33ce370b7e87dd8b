/** Waits that the client's cancellation ends at once: `work`, or `onAbort()` thrown as soon as the signal fires (a sleep that is never resolved is left behind). */
export async function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined, onAbort: () => Error): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) throw onAbort();
  let stop: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    stop = () => reject(onAbort());
    signal.addEventListener('abort', stop, { once: true });
  });
  try {
    return await Promise.race([work, stopped]);
  } finally {
    signal.removeEventListener('abort', stop!);
  }
}
