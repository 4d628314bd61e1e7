// @ts-check
// @pgworld/world's own contract, in both transports, against the real dispatcher and database:
// lossless bytes, restored dates, WDK error classes, the CBOR queue path end to end, the 4.x
// and 5.x stream surfaces with live reads, and per-run encryption keys.
import { hkdfSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, test, vi } from 'vitest';
import { createPgWorld, resolveConfig } from '../src/index.js';

/** @typedef {{serviceUrl: string, databaseUrl: string, adminUrl: string}} Harness */
const h = inject('pgworld');

/**
 * Runs `sql` as the superuser inside the app (for operator actions such as force-expire).
 * @param {string} sql
 * @param {unknown[]} [values]
 */
async function asOperator(sql, values = []) {
  const c = new pg.Client({ connectionString: h.adminUrl });
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query("SELECT set_config('workflow.app_id', 'default', true)");
    const res = await c.query(sql, values);
    await c.query('COMMIT');
    return res;
  } finally {
    await c.end();
  }
}

/**
 * A local "pod": serves the world's queue handler on /.well-known/workflow/v1/flow.
 * @param {(req: Request) => Promise<Response>} handler
 * @returns {Promise<{url: string, close: () => Promise<void>}>}
 */
function startPod(handler) {
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
    const response = await handler(
      new Request(`http://localhost${req.url}`, { method: req.method, headers, body: Buffer.concat(chunks) }),
    );
    res.writeHead(response.status, { 'content-type': response.headers.get('content-type') ?? 'application/json' });
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r(undefined))) });
    });
  });
}

/**
 * Reads until `expected` has arrived (a byte stream may split or join chunks on the way),
 * or until the end when `expected` is null.
 * @param {ReadableStreamDefaultReader<Uint8Array>} reader
 * @param {string | null} expected
 */
async function readUntil(reader, expected) {
  let text = '';
  while (expected === null || text.length < expected.length) {
    const { value, done } = await reader.read();
    if (done) return expected === null && text === '' ? null : text;
    text += Buffer.from(value).toString('utf8');
  }
  return text;
}

describe.each(/** @type {const} */ (['http', 'sql']))('@pgworld/world over %s', (transport) => {
  const version = `adapter-${transport}-${process.pid}`;
  const config = resolveConfig({
    ...(transport === 'http' ? { serviceUrl: h.serviceUrl } : { databaseUrl: h.databaseUrl }),
    appId: 'default',
    deploymentVersion: version,
    podId: `adapter-pod-${transport}`,
    queueEncoding: 'cbor',
  });
  const world = createPgWorld(config);
  afterAll(() => world.close());

  /** @returns {Promise<string>} */
  async function newRun() {
    const res = await world.events.create(null, {
      eventType: 'run_created',
      specVersion: world.specVersion,
      eventData: { deploymentId: version, workflowName: 'adapter', input: new Uint8Array([0, 1, 2, 255]) },
    });
    return res.run.runId;
  }

  test('bytes stay bytes and timestamps become Dates', async () => {
    const runId = await newRun();
    const run = await world.runs.get(runId);
    expect(run.input).toEqual(new Uint8Array([0, 1, 2, 255]));
    expect(run.createdAt).toBeInstanceOf(Date);
    const started = await world.events.create(runId, { eventType: 'run_started', specVersion: world.specVersion });
    expect(started.run.startedAt).toBeInstanceOf(Date);
    const step = await world.events.create(runId, {
      eventType: 'step_created',
      correlationId: 'step_1',
      eventData: { stepName: 's', input: new Uint8Array([9, 0, 9]) },
    });
    expect(step.step.input).toEqual(new Uint8Array([9, 0, 9]));
    // A JSON string payload is not mistaken for base64 bytes.
    await world.events.create(runId, { eventType: 'step_started', correlationId: 'step_1' });
    await world.events.create(runId, { eventType: 'step_completed', correlationId: 'step_1', eventData: { result: 'test' } });
    expect((await world.steps.get(runId, 'step_1')).output).toBe('test');
    // No limit means every event, as one page.
    const all = await world.events.list({ runId });
    expect(all.hasMore).toBe(false);
    expect(all.data.map((/** @type {any} */ e) => e.eventType)).toEqual([
      'run_created',
      'run_started',
      'step_created',
      'step_started',
      'step_completed',
    ]);
    const page = await world.events.list({ runId, pagination: { limit: 2 } });
    expect(page.data).toHaveLength(2);
    expect(page.hasMore).toBe(true);
  });

  test('failures arrive as the WDK error classes', async () => {
    await expect(world.runs.get('wrun_01NOPENOPENOPENOPENOPENOPE')).rejects.toMatchObject({
      name: 'WorkflowRunNotFoundError',
      status: 404,
      code: 'WF_RUN_NOT_FOUND',
    });
    await expect(world.hooks.getByToken('no-such-token')).rejects.toMatchObject({ name: 'HookNotFoundError', status: 404 });
    const runId = await newRun();
    await expect(world.events.create(runId, { eventType: 'step_started', correlationId: 'missing' })).rejects.toMatchObject({
      status: 404,
    });
    await expect(world.events.create(runId, { eventType: 'no_such_event' })).rejects.toMatchObject({
      name: 'WorkflowWorldError',
      status: 400,
    });
    await world.events.create(runId, { eventType: 'run_cancelled' });
    await expect(world.events.create(runId, { eventType: 'run_started' })).rejects.toMatchObject({
      name: 'RunExpiredError',
      status: 410,
    });
    await expect(world.queue(/** @type {any} */ ('not-a-queue'), {})).rejects.toThrow(/Invalid queue name/);
  });

  test('a CBOR message reaches the registered pod byte-exact; duplicates and expired versions', async () => {
    /** @type {Array<{message: any, meta: any}>} */
    const seen = [];
    const pod = await startPod(
      world.createQueueHandler('__wkf_workflow_', async (message, meta) => {
        seen.push({ message, meta });
      }),
    );
    try {
      // Its own version: the test ends by expiring it.
      const expiring = `${version}-expiring`;
      const local = createPgWorld({ ...config, deploymentVersion: expiring, handlerBaseUrl: pod.url, maxConcurrency: 3 });
      await local.start();
      // The pod's limit went with its registration.
      const registered = await asOperator('SELECT max_concurrency FROM workflow.handlers WHERE pod_id = $1', [config.podId]);
      expect(registered.rows).toEqual([{ max_concurrency: 3 }]);
      const payload = { runId: 'wrun_cbor', bytes: new Uint8Array([0, 255, 0, 128]), n: 2 ** 40 };
      const first = await local.queue('__wkf_workflow_adapter', payload, { specVersion: 5, idempotencyKey: `k-${transport}` });
      expect(first.messageId).toMatch(/^msg_/);
      const again = await local.queue('__wkf_workflow_adapter', payload, { specVersion: 5, idempotencyKey: `k-${transport}` });
      expect(again.messageId).toBeNull();
      await vi.waitFor(() => expect(seen).toHaveLength(1), { timeout: 10_000, interval: 50 });
      expect(seen[0].message.bytes).toBeInstanceOf(Uint8Array);
      expect([...seen[0].message.bytes]).toEqual([0, 255, 0, 128]);
      expect(seen[0].message.n).toBe(2 ** 40);
      expect(seen[0].meta).toMatchObject({ queueName: '__wkf_workflow_adapter', messageId: first.messageId, attempt: 1 });

      await asOperator('SELECT workflow.version_expire($1)', [expiring]);
      const err = await local.queue('__wkf_workflow_adapter', payload, { specVersion: 5 }).catch((e) => e);
      expect(err.status).toBe(410);
      expect(world.isDeploymentUnavailableError(err)).toBe(true);
      expect(world.isDeploymentUnavailableError(new Error('other'))).toBe(false);
      await local.close();
    } finally {
      await pod.close();
    }
  });

  test('a pod limit outside 1 to 256 is refused before anything is sent', () => {
    for (const bad of [0, 257, 2.5, Number.NaN]) {
      expect(() => resolveConfig({ serviceUrl: 'http://x', appId: 'default', maxConcurrency: bad })).toThrow(/1 to 256/);
    }
    expect(resolveConfig({ serviceUrl: 'http://x', appId: 'default', maxConcurrency: 256 }).maxConcurrency).toBe(256);
  });

  test('the queue handler rejects deliveries that are not for it', async () => {
    const handler = world.createQueueHandler('__wkf_step_', async () => ({ timeoutSeconds: 7 }));
    /** @param {unknown} body */
    const post = (body) =>
      handler(new Request('http://pod/x', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));
    const bad = await post({ message: {}, meta: { queueName: '__wkf_workflow_x', messageId: 'msg_1', attempt: 0 } });
    expect(bad.status).toBe(400);
    const ok = await post({ message: {}, meta: { queueName: '__wkf_step_x', messageId: 'msg_1', attempt: 0 } });
    expect(await ok.json()).toEqual({ timeoutSeconds: 7 });
    const health = await post({
      message: { __healthCheck: true, correlationId: 'c' },
      meta: { queueName: '__wkf_workflow_health_check', messageId: 'msg_2', attempt: 0 },
    });
    expect(health.status).toBe(200);
    expect(() => world.createQueueHandler(/** @type {any} */ ('__nope_'), async () => {})).toThrow(/Invalid queue prefix/);
  });

  test('streams: live reads over the 5.x and 4.x surfaces', async () => {
    const runId = await newRun();
    const name = `${runId}-out`;
    await world.streams.write(runId, name, 'one');
    const reader = (await world.streams.get(runId, name)).getReader();
    expect(await readUntil(reader, 'one')).toBe('one');
    // Written after the reader is waiting: arrives live.
    setTimeout(() => void world.writeToStream(name, runId, new Uint8Array(Buffer.from('two'))), 200);
    expect(await readUntil(reader, 'two')).toBe('two');
    await world.writeToStreamMulti(name, runId, ['three', new Uint8Array(Buffer.from('four'))]);
    expect(await readUntil(reader, 'threefour')).toBe('threefour');
    await world.closeStream(name, runId);
    expect(await readUntil(reader, null)).toBeNull();

    expect(await world.streams.list(runId)).toEqual([name]);
    expect(await world.getStreamInfo(name, runId)).toMatchObject({ tailIndex: 3, done: true });
    const chunks = await world.getStreamChunks(name, runId, { limit: 2 });
    expect(chunks.data.map((/** @type {any} */ c) => Buffer.from(c.data).toString())).toEqual(['one', 'two']);
    expect(chunks.hasMore).toBe(true);
    // A negative start counts back from the end.
    const tail = (await world.readFromStream(name, -1)).getReader();
    expect(await readUntil(tail, 'four')).toBe('four');
    expect(await readUntil(tail, null)).toBeNull();
  });
});

describe('per-run encryption keys', () => {
  const secret = randomBytes(32);
  /** @type {ReturnType<typeof createPgWorld>} */
  let world;
  beforeAll(async () => {
    // A second app with an imported secret and its own direct-mode role (one role, one app).
    const c = new pg.Client({ connectionString: h.adminUrl });
    await c.connect();
    await c.query(`SELECT workflow.app_provision('{"appId":"keys"}')`);
    await c.query('SELECT workflow.app_secret_import($1, $2)', ['keys', secret]);
    await c.query(
      "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgworld_wdk_keys') THEN CREATE ROLE pgworld_wdk_keys LOGIN IN ROLE pgworld_client; END IF; END $$",
    );
    await c.query("SELECT workflow.app_role_grant('keys', 'pgworld_wdk_keys')");
    await c.end();
    const url = new URL(h.databaseUrl);
    url.username = 'pgworld_wdk_keys';
    world = createPgWorld(resolveConfig({ databaseUrl: url.toString(), appId: 'keys', deploymentVersion: 'k1' }));
  });
  afterAll(() => world.close());

  test('are HKDF-SHA256 of the app secret, salted with the run id', async () => {
    const key = await world.getEncryptionKeyForRun('wrun_01KEYKEYKEYKEYKEYKEYKEYKEY');
    const expected = new Uint8Array(hkdfSync('sha256', secret, 'wrun_01KEYKEYKEYKEYKEYKEYKEYKEY', 'workflow-encryption', 32));
    expect(key).toEqual(expected);
    expect(await world.getEncryptionKeyForRun({ runId: 'wrun_other' })).not.toEqual(expected);
  });

  test('are absent once the secret is removed', async () => {
    const http = createPgWorld(resolveConfig({ serviceUrl: h.serviceUrl, appId: 'default', deploymentVersion: 'k1' }));
    // The harness removed the default app's secret: no key, so the WDK stores plaintext.
    expect(await http.getEncryptionKeyForRun('wrun_x')).toBeUndefined();
    await http.close();
  });
});

describe('shared transports', () => {
  test('a World closing does not close the transport another World still uses', async () => {
    const config = resolveConfig({ serviceUrl: h.serviceUrl, appId: 'default', deploymentVersion: 'shared' });
    const a = createPgWorld(config);
    const b = createPgWorld(config);
    await a.close();
    // b still works over the shared connection pool.
    await expect(b.runs.list({ pagination: { limit: 1 } })).resolves.toHaveProperty('data');
    await b.close();
    // Closing twice is harmless.
    await b.close();
  });
});
