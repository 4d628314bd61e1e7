// @ts-check
// The retry helper: how many attempts, and which errors end it at once.
import { describe, expect, test } from 'vitest';
import { withRetry } from '../src/retry.js';

describe('withRetry', () => {
  test('retries a retryable failure until it succeeds', async () => {
    let calls = 0;
    const out = await withRetry(
      async () => {
        calls += 1;
        if (calls < 3) throw Object.assign(new Error('conflict'), { code: '40001' });
        return 'done';
      },
      { tries: 5, firstMs: 2, maxMs: 4, retryable: (e) => /** @type {any} */ (e).code === '40001' },
    );
    expect([out, calls]).toEqual(['done', 3]);
  });

  test('gives up after its tries, and at once on an error that is not retryable', async () => {
    let calls = 0;
    const failing = async () => {
      calls += 1;
      throw new Error(`attempt ${calls}`);
    };
    await expect(withRetry(failing, { tries: 3, firstMs: 1, maxMs: 2 })).rejects.toThrow('attempt 3');
    calls = 0;
    await expect(withRetry(failing, { tries: 3, firstMs: 1, maxMs: 2, retryable: () => false })).rejects.toThrow('attempt 1');
  });
});
