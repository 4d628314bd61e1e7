// @ts-check
// How values cross the wire (world-adapter.md §8): bytes travel as
// {"__type":"Uint8Array","data":"<base64>"} in JSON, and the timestamps the WDK reads as Date
// arrive as ISO strings.

const BYTES_TYPE = 'Uint8Array';

/** Timestamp fields restored to Date, on entities and inside `eventData`. */
const DATE_FIELDS = ['createdAt', 'updatedAt', 'startedAt', 'completedAt', 'expiredAt', 'resumeAt', 'retryAfter'];

/**
 * A copy of `value` ready for JSON: every Uint8Array (Buffers included) becomes a byte envelope,
 * every Date an ISO string.
 * @param {unknown} value
 * @returns {unknown}
 */
export function toWire(value) {
  if (value instanceof Uint8Array) return { __type: BYTES_TYPE, data: base64(value) };
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(toWire);
  if (value !== null && typeof value === 'object') {
    /** @type {Record<string, unknown>} */
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) out[k] = toWire(v);
    }
    return out;
  }
  return value;
}

/**
 * @param {unknown} value
 * @returns {value is {__type: string, data: string}}
 */
function isBytesEnvelope(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const v = /** @type {Record<string, unknown>} */ (value);
  return v.__type === BYTES_TYPE && typeof v.data === 'string' && Object.keys(v).length === 2;
}

/**
 * Byte envelopes anywhere in `value` become Uint8Array (in place where possible).
 * @param {unknown} value
 * @returns {any}
 */
export function fromWire(value) {
  if (isBytesEnvelope(value)) return new Uint8Array(Buffer.from(value.data, 'base64'));
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = fromWire(value[i]);
    return value;
  }
  if (value !== null && typeof value === 'object') {
    const obj = /** @type {Record<string, unknown>} */ (value);
    for (const k of Object.keys(obj)) obj[k] = fromWire(obj[k]);
  }
  return value;
}

/**
 * @param {Record<string, unknown>} obj
 */
function reviveDates(obj) {
  for (const k of DATE_FIELDS) {
    const v = obj[k];
    if (typeof v === 'string' || typeof v === 'number') obj[k] = new Date(v);
  }
}

/**
 * Restores the timestamps of an entity (run, step, hook, wait or event) and of its `eventData`.
 * @template T
 * @param {T} entity
 * @returns {T}
 */
export function reviveEntity(entity) {
  if (entity === null || typeof entity !== 'object') return entity;
  const obj = /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (entity));
  reviveDates(obj);
  const data = obj.eventData;
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
    reviveDates(/** @type {Record<string, unknown>} */ (data));
  }
  return entity;
}

/**
 * A list page: each item restored.
 * @param {any} page
 */
export function revivePage(page) {
  if (page && Array.isArray(page.data)) page.data.forEach(reviveEntity);
  return page;
}

/**
 * An event-creation result: the event, the entities it touched, and a bump-and-report page.
 * @param {any} result
 */
export function reviveEventResult(result) {
  if (!result || typeof result !== 'object') return result;
  for (const k of ['event', 'run', 'step', 'hook', 'wait']) {
    if (result[k]) reviveEntity(result[k]);
  }
  if (Array.isArray(result.events)) result.events.forEach(reviveEntity);
  return result;
}

/**
 * @param {Uint8Array} bytes
 */
export function base64(bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
