// @ts-check
// The queue half of the World (world-adapter.md §5): enqueue through pgworld, and the HTTP
// handler pgworld-dispatcher delivers to.
import { Decoder, Encoder } from 'cbor-x';
import { toWdkError, PgWorldFailure } from './errors.js';
import { fromWire } from './wire.js';

export const QUEUE_NAME = /^__(?:[a-z][a-z0-9]*_)?wkf_(workflow|step)_.+$/;
const QUEUE_PREFIX = /^__(?:[a-z][a-z0-9]*_)?wkf_(workflow|step)_$/;

// Plain CBOR: no record extension and untagged byte strings, so pgworld (and anything else)
// reads the envelope without cbor-x specifics.
const encoder = new Encoder({ useRecords: false, tagUint8Array: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/**
 * @typedef {object} QueueOptions
 * @property {string} [deploymentId]
 * @property {string} [idempotencyKey]
 * @property {Record<string, string>} [headers]
 * @property {number} [delaySeconds]
 * @property {number} [specVersion]
 */

/**
 * @param {import('./transport.js').Transport} transport
 * @param {{queueEncoding: 'cbor' | 'json', deploymentVersion?: string, managed?: boolean}} config
 * @param {() => string} deploymentVersion  throws while the version is unknown on a managed platform
 */
export function createQueue(transport, config, deploymentVersion) {
  /**
   * @param {string} queueName
   * @param {unknown} message
   * @param {QueueOptions} [opts]
   * @returns {Promise<{messageId: any}>}
   */
  async function queue(queueName, message, opts = {}) {
    if (typeof queueName !== 'string' || !QUEUE_NAME.test(queueName)) {
      throw new Error(`Invalid queue name: ${queueName}`);
    }
    /** @type {Record<string, unknown>} */
    const envelope = { queueName, message };
    // A health check from a process serving no version (the WDK's CLI, its web UI) names none,
    // and pgworld sends it to the app's newest version with pods, which can answer it.
    const unpinned = !config.deploymentVersion && !config.managed && /** @type {any} */ (message)?.__healthCheck === true;
    const deploymentId = opts.deploymentId ?? (unpinned ? undefined : deploymentVersion());
    if (deploymentId !== undefined) envelope.deploymentId = deploymentId;
    if (opts.idempotencyKey !== undefined) envelope.idempotencyKey = opts.idempotencyKey;
    if (opts.delaySeconds !== undefined) envelope.delaySeconds = opts.delaySeconds;
    if (opts.headers !== undefined) envelope.headers = opts.headers;
    const cbor = config.queueEncoding === 'cbor' && (opts.specVersion ?? 3) >= 3;
    try {
      const res = await transport.enqueue(cbor ? encoder.encode(envelope) : envelope);
      return { messageId: res.messageId };
    } catch (err) {
      // A duplicate idempotency key means the message was already accepted.
      if (err instanceof PgWorldFailure && err.status === 409) return { messageId: null };
      throw toWdkError(err, { subject: 'queue' });
    }
  }
  return queue;
}

/**
 * @param {Request} req
 * @returns {Promise<any>}
 */
async function decodeBody(req) {
  const bytes = new Uint8Array(await req.arrayBuffer());
  const type = (req.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/cbor') {
    try {
      return decoder.decode(bytes);
    } catch {
      // fall through: a JSON body mislabelled as CBOR
    }
  }
  return fromWire(JSON.parse(Buffer.from(bytes).toString('utf8')));
}

/**
 * @param {number} status
 * @param {unknown} body
 */
function json(status, body) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

/**
 * @typedef {(message: unknown, meta: {attempt: number, queueName: string, messageId: string}) =>
 *   Promise<void | {timeoutSeconds: number}>} QueueHandler
 */

/**
 * @param {string} prefix
 * @param {QueueHandler} handler
 * @returns {(req: Request) => Promise<Response>}
 */
export function createQueueHandler(prefix, handler) {
  const kind = QUEUE_PREFIX.exec(prefix)?.[1];
  if (!kind) throw new Error(`Invalid queue prefix: ${prefix}`);
  // A health check for this handler may arrive on the other kind's health-check queue.
  const otherHealthCheck = prefix.replace(/wkf_(workflow|step)_$/, kind === 'workflow' ? 'wkf_step_' : 'wkf_workflow_') + 'health_check';

  return async (req) => {
    /** @type {any} */
    let body;
    try {
      body = await decodeBody(req);
    } catch {
      return json(400, { error: 'Invalid queue message body' });
    }
    const meta = body?.meta;
    const message = body?.message;
    const queueName = meta?.queueName;
    const healthCheck = message?.__healthCheck === true;
    const nameOk =
      typeof queueName === 'string' &&
      QUEUE_NAME.test(queueName) &&
      (queueName.startsWith(prefix) || (healthCheck && queueName === otherHealthCheck));
    if (!nameOk || typeof meta.messageId !== 'string' || !Number.isFinite(meta.attempt)) {
      return json(400, { error: 'Invalid queue message metadata' });
    }
    try {
      // The wire counts failures from 0; WDK worlds hand the runtime a 1-based delivery number.
      const result = await handler(message, { queueName, messageId: meta.messageId, attempt: Number(meta.attempt) + 1 });
      return json(200, result && typeof result === 'object' && 'timeoutSeconds' in result ? { timeoutSeconds: result.timeoutSeconds } : {});
    } catch (err) {
      return json(500, { error: err instanceof Error ? err.message : String(err) });
    }
  };
}
