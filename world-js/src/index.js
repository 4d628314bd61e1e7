// @ts-check
// @pgworld/world: a Workflow DevKit World on pgworld (world-adapter.md).
import { resolveConfig } from './config.js';
import { HttpTransport } from './http.js';
import { SqlTransport } from './sql.js';
import { buildWorld } from './world.js';

export { resolveConfig } from './config.js';
export { PgWorldFailure, toWdkError } from './errors.js';

/** @typedef {import('./config.js').PgWorldOptions} PgWorldOptions */
/** @typedef {import('./config.js').PgWorldConfig} PgWorldConfig */
/** @typedef {ReturnType<typeof buildWorld>} PgWorld */

// Bundlers may load this module more than once, and the WDK may create several Worlds; one
// transport per target keeps one pool, closed when the last World using it closes.
const SHARED = Symbol.for('@pgworld/world/transports@1');
/** @typedef {{transport: import('./transport.js').Transport, users: number}} SharedTransport */
const g = /** @type {Record<symbol, Map<string, SharedTransport>>} */ (/** @type {unknown} */ (globalThis));
const transports = (g[SHARED] ??= new Map());

/**
 * A World for an explicit, already resolved configuration.
 * @param {PgWorldConfig} config
 * @returns {PgWorld}
 */
export function createPgWorld(config) {
  // An app-supplied pool is the app's to share; it gets a transport of its own.
  const key = config.pool ? '' : `${config.mode}|${config.databaseUrl ?? config.serviceUrl}|${config.appId}`;
  let shared = key ? transports.get(key) : undefined;
  if (!shared) {
    shared = { transport: config.mode === 'sql' ? new SqlTransport(config) : new HttpTransport(config), users: 0 };
    if (key) transports.set(key, shared);
  }
  shared.users++;
  const entry = shared;
  let closed = false;
  const world = buildWorld(entry.transport, config);
  const release = world.close;
  world.close = async () => {
    if (closed) return;
    closed = true;
    entry.users--;
    const last = entry.users === 0;
    if (last && key) transports.delete(key);
    await release(last);
  };
  return world;
}

/**
 * The factory the Workflow DevKit loads (`WORKFLOW_TARGET_WORLD=@pgworld/world`). Synchronous,
 * because WDK 4.x `require`s the module and uses the World at once.
 * @param {PgWorldOptions} [options]
 * @returns {PgWorld}
 */
export function createWorld(options = {}) {
  return createPgWorld(resolveConfig(options));
}

export default createWorld;
