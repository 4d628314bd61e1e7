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

// Bundlers may load this module more than once; one transport per target keeps one pool.
const SHARED = Symbol.for('@pgworld/world/transports@1');
const g = /** @type {Record<symbol, Map<string, import('./transport.js').Transport>>} */ (/** @type {unknown} */ (globalThis));
const transports = (g[SHARED] ??= new Map());

/**
 * A World for an explicit, already resolved configuration.
 * @param {PgWorldConfig} config
 * @returns {PgWorld}
 */
export function createPgWorld(config) {
  const key = config.pool ? '' : `${config.mode}|${config.databaseUrl ?? config.serviceUrl}|${config.appId}`;
  let transport = key ? transports.get(key) : undefined;
  if (!transport) {
    transport = config.mode === 'sql' ? new SqlTransport(config) : new HttpTransport(config);
    if (key) transports.set(key, transport);
  }
  const shared = transport;
  const world = buildWorld(shared, config);
  const close = world.close;
  world.close = async () => {
    if (key) transports.delete(key);
    await close();
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
