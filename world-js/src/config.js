// @ts-check
// Where the settings come from (world-adapter.md §2): explicit options first, then the
// environment (Platformatic's PLT_* names and pgworld's own), then defaults.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/**
 * @typedef {object} PgWorldOptions
 * @property {string} [databaseUrl]        direct mode: a PostgreSQL URL
 * @property {import('pg').Pool} [pool]    direct mode: an existing pool to use instead
 * @property {string} [serviceUrl]         HTTP mode: the façade's base URL
 * @property {string} [appId]
 * @property {string} [deploymentVersion]
 * @property {string} [handlerBaseUrl]
 * @property {string} [podId]
 * @property {number} [poolSize]
 * @property {'cbor' | 'json'} [queueEncoding]  how spec ≥ 3 messages are enqueued (default cbor)
 * @property {string} [token]              HTTP mode: a pgworld API token (`pgw_…`) for the façade
 * @property {number} [maxConcurrency]     the most deliveries pgworld sends this pod at once (1–256; pgworld's default is 32)
 */

/**
 * @typedef {object} PgWorldConfig
 * @property {'sql' | 'http'} mode
 * @property {string} [databaseUrl]
 * @property {import('pg').Pool} [pool]
 * @property {string} [serviceUrl]
 * @property {string} appId
 * @property {string | undefined} deploymentVersion  undefined until known (then `local` is used)
 * @property {string | undefined} handlerBaseUrl   an explicit one; else resolved at start()
 * @property {string} podId
 * @property {number} poolSize
 * @property {boolean} managed            on Kubernetes or ECS
 * @property {string} tokenPath           the service-account token sent to the façade
 * @property {string | undefined} apiToken      a pgworld API token, sent instead
 * @property {string | undefined} apiTokenFile  a file holding one (re-read on every request)
 * @property {boolean} registerHandlers   register even on a managed platform
 * @property {string | undefined} stepPath
 * @property {number | undefined} specVersionOverride
 * @property {boolean} deploymentAffinity
 * @property {'cbor' | 'json'} queueEncoding
 * @property {number | undefined} maxConcurrency
 */

/**
 * @param {...(string | undefined)} values
 */
function first(...values) {
  for (const v of values) {
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

function packageName() {
  try {
    const file = join(process.cwd(), 'package.json');
    if (!existsSync(file)) return undefined;
    const name = JSON.parse(readFileSync(file, 'utf8')).name;
    return typeof name === 'string' && name ? name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * @param {PgWorldOptions} [options]
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {PgWorldConfig}
 */
export function resolveConfig(options = {}, env = process.env) {
  const databaseUrl = first(options.databaseUrl, env.PGWORLD_DATABASE_URL);
  const serviceUrl = first(options.serviceUrl, env.PLT_WORLD_SERVICE_URL, env.PGWORLD_SERVICE_URL);
  const mode = options.pool || databaseUrl ? 'sql' : serviceUrl ? 'http' : undefined;
  if (!mode) throw new Error('PLT_WORLD_SERVICE_URL or PGWORLD_DATABASE_URL environment variable is required');

  const saDir = first(env.PLT_WORLD_SA_PATH) ?? '/var/run/secrets/kubernetes.io/serviceaccount';
  const tokenPath = join(saDir, 'token');
  const managed = existsSync(tokenPath) || Boolean(env.ECS_CONTAINER_METADATA_URI_V4 || env.ECS_CONTAINER_METADATA_URI);

  const explicitApp = first(options.appId, env.PLT_WORLD_APP_ID, env.PLT_APP_NAME);
  const appId = explicitApp ?? packageName() ?? 'default';
  if (!explicitApp && managed) {
    console.warn(`[@pgworld/world] no app id configured (PLT_WORLD_APP_ID); assuming "${appId}"`);
  }

  const spec = first(env.PGWORLD_SPEC_VERSION);
  const poolSize = Number(first(env.PGWORLD_POOL_SIZE) ?? options.poolSize ?? 10);
  const encoding = first(options.queueEncoding, env.PGWORLD_QUEUE_ENCODING) ?? 'cbor';
  if (encoding !== 'cbor' && encoding !== 'json') throw new Error(`PGWORLD_QUEUE_ENCODING must be cbor or json, not ${encoding}`);
  const concurrency = options.maxConcurrency ?? first(env.PGWORLD_MAX_CONCURRENCY);
  const maxConcurrency = concurrency === undefined ? undefined : Number(concurrency);
  if (maxConcurrency !== undefined && !(Number.isInteger(maxConcurrency) && maxConcurrency >= 1 && maxConcurrency <= 256)) {
    throw new Error(`PGWORLD_MAX_CONCURRENCY must be an integer from 1 to 256, not ${concurrency}`);
  }

  return {
    mode,
    databaseUrl,
    pool: options.pool,
    serviceUrl: serviceUrl?.replace(/\/+$/, ''),
    appId,
    deploymentVersion: first(options.deploymentVersion, env.PLT_WORLD_DEPLOYMENT_VERSION, env.PLT_DEPLOYMENT_VERSION),
    // The environment's base URL is read at start(): PORT is often set only once the app listens.
    handlerBaseUrl: options.handlerBaseUrl?.replace(/\/+$/, ''),
    podId: first(options.podId, env.PGWORLD_POD_ID) ?? `pgworld-${hostname()}-${process.pid}`,
    poolSize: Number.isInteger(poolSize) && poolSize > 0 ? poolSize : 10,
    managed,
    tokenPath,
    apiToken: first(options.token, env.PGWORLD_TOKEN),
    apiTokenFile: first(env.PGWORLD_TOKEN_FILE),
    registerHandlers: env.PGWORLD_REGISTER_HANDLERS === '1',
    stepPath: first(env.PGWORLD_STEP_PATH),
    specVersionOverride: spec === undefined ? undefined : Number(spec),
    deploymentAffinity: env.PGWORLD_DEPLOYMENT_AFFINITY === '1',
    queueEncoding: encoding,
    maxConcurrency,
  };
}
