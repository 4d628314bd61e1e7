// @ts-check
// The façade routes the adapter uses, keyed by the SQL function each route calls
// (http-api.md §3). The HTTP transport builds the request from the route; the direct transport
// calls the function with the same arguments. One table, so the two cannot drift apart.

/**
 * @typedef {object} Op
 * @property {'GET' | 'POST' | 'PUT' | 'DELETE'} method
 * @property {string} path   relative to /api/v1/apps/:appId; each `{}` is the next path parameter
 * @property {boolean} query the function takes the query string as its jsonb `query` argument
 * @property {boolean} body  the function takes the JSON body as its jsonb `body` argument
 */

/** @type {(method: Op['method'], path: string, query: boolean, body: boolean) => Op} */
const op = (method, path, query, body) => ({ method, path, query, body });

/** @type {Record<string, Op>} */
export const OPS = {
  event_create: op('POST', 'runs/{}/events', true, true),
  events_list: op('GET', 'runs/{}/events', true, false),
  event_get: op('GET', 'runs/{}/events/{}', true, false),
  events_by_correlation: op('GET', 'events/by-correlation', true, false),
  run_get: op('GET', 'runs/{}', true, false),
  runs_list: op('GET', 'runs', true, false),
  step_get: op('GET', 'runs/{}/steps/{}', true, false),
  steps_list: op('GET', 'runs/{}/steps', true, false),
  hook_get: op('GET', 'hooks/{}', true, false),
  hook_get_by_token: op('GET', 'hooks/by-token/{}', true, false),
  hooks_list: op('GET', 'hooks', true, false),
  streams_list: op('GET', 'runs/{}/streams', false, false),
  stream_chunks: op('GET', 'runs/{}/streams/{}/chunks', true, false),
  stream_info: op('GET', 'runs/{}/streams/{}/info', false, false),
  stream_put: op('PUT', 'runs/{}/streams/{}', true, true),
  handler_register: op('POST', 'handlers', false, true),
  handler_deregister: op('DELETE', 'handlers/{}', false, false),
  encryption_key: op('GET', 'encryption-key', true, false),
};

/**
 * The route path with its parameters percent-encoded.
 * @param {Op} route
 * @param {readonly string[]} params
 */
export function fillPath(route, params) {
  let i = 0;
  return route.path.replace(/\{\}/g, () => encodeURIComponent(String(params[i++])));
}

/**
 * Query values as the façade receives them: strings, undefined dropped.
 * @param {Record<string, unknown> | undefined} query
 * @returns {Record<string, string>}
 */
export function queryStrings(query) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined || v === null) continue;
    out[k] = Array.isArray(v) ? v.join(',') : String(v);
  }
  return out;
}
