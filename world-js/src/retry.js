// @ts-check
// The one retry helper of @pgworld/world: up to `tries` attempts while `retryable(err)` says so,
// with pauses whose step doubles from `firstMs` up to `maxMs`, each drawn from the upper half of
// its step, so pods that failed together do not retry together.
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * @template T
 * @param {() => Promise<T>} attempt
 * @param {{tries: number, firstMs: number, maxMs: number, retryable?: (err: unknown) => boolean}} opts
 * @returns {Promise<T>}
 */
export async function withRetry(attempt, { tries, firstMs, maxMs, retryable = () => true }) {
  let step = firstMs;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (n >= tries || !retryable(err)) throw err;
      await sleep(step / 2 + Math.random() * (step / 2));
      step = Math.min(step * 2, maxMs);
    }
  }
}
