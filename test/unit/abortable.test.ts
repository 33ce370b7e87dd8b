/** Waits the client's cancellation ends at once. */
import { describe, expect, it } from 'vitest';
import { abortable } from '../../src/defender/abortable.js';

describe('abortable', () => {
  const onAbort = () => new Error('cancelled');

  it('hands back the work\'s result while the signal is quiet, or without a signal', async () => {
    expect(await abortable(Promise.resolve(5), new AbortController().signal, onAbort)).toBe(5);
    expect(await abortable(Promise.resolve(6), undefined, onAbort)).toBe(6);
    await expect(abortable(Promise.reject(new Error('work failed')), new AbortController().signal, onAbort)).rejects.toThrow('work failed');
  });

  it('refuses at once when the signal fired before, even if the work is done', async () => {
    const c = new AbortController();
    c.abort();
    await expect(abortable(Promise.resolve(5), c.signal, onAbort)).rejects.toThrow('cancelled');
  });

  it('ends a wait that never finishes as soon as the signal fires', async () => {
    const c = new AbortController();
    const waiting = abortable(new Promise<never>(() => undefined), c.signal, onAbort);
    c.abort();
    await expect(waiting).rejects.toThrow('cancelled');
  });
});
