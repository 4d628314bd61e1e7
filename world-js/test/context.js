// @ts-check
// What every conformance file shares: the harness's endpoints, and one deployment version per
// test. Each test starts its own app server (one "pod"); a fresh version per test means the
// dispatcher routes a test's messages only to that test's pod, never to the stopped pods of
// earlier tests, whose registrations stay behind because they are killed, not closed.
import { beforeEach, inject } from 'vitest';

/**
 * Points the app servers the suite spawns at pgworld over `transport`.
 * @param {'http' | 'sql'} transport
 */
export function useTransport(transport) {
  const h = inject('pgworld');
  delete process.env.PGWORLD_DATABASE_URL;
  delete process.env.PLT_WORLD_SERVICE_URL;
  delete process.env.PGWORLD_SERVICE_URL;
  if (transport === 'http') process.env.PLT_WORLD_SERVICE_URL = h.serviceUrl;
  else process.env.PGWORLD_DATABASE_URL = h.databaseUrl;
  process.env.PLT_WORLD_APP_ID = 'default';
  // The suite counts flow invocations by reading the delivery body as JSON (top-level runId),
  // so its messages travel as JSON; test/adapter.test.js and the end-to-end app cover CBOR.
  process.env.PGWORLD_QUEUE_ENCODING = 'json';
  let n = 0;
  beforeEach(() => {
    process.env.PLT_WORLD_DEPLOYMENT_VERSION = `conformance-${transport}-${process.pid}-${++n}`;
  });
}
