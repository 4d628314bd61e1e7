// Real processes for the end-to-end tests and the benchmark: the shared pgworld harness of
// world-js (database, dispatcher), plus app pods (server.mjs) that can be SIGKILLed and started
// again on the same port.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Proc, freePort, startDispatcher as startPgworldDispatcher } from '../../../world-js/test/pgworld.js';

export { createDatabase, waitFor } from '../../../world-js/test/pgworld.js';

export const APP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

/** pgworld-dispatcher with short leases and polls, so a killed one is recovered quickly. */
export function startDispatcher(db, { port, env = {} } = {}) {
  return startPgworldDispatcher(db, {
    port,
    env: { PGWORLD_LEASE_SECONDS: '5', PGWORLD_POLL_INTERVAL_MS: '250', ...env },
  });
}

/**
 * One pod of the app for a deployment version (`v1` or `v2`), over the façade (`http`) or
 * straight to the database (`sql`); `root` is another app's directory (the WDK 5 app).
 */
export async function startApp(version, { db, dispatcher, transport = 'http', port, world = '@pgworld/world', env = {}, root = APP_DIR }) {
  port ??= await freePort();
  const url = `http://127.0.0.1:${port}`;
  const transportEnv =
    transport === 'http' ? { PLT_WORLD_SERVICE_URL: dispatcher.url } : { PGWORLD_DATABASE_URL: db.appUrl };
  const proc = new Proc(`app-${version}-${transport}-${port}`, process.execPath, [join(APP_DIR, 'server.mjs'), join(root, version)], {
    // In the app's directory: the WDK resolves WORKFLOW_TARGET_WORLD from the working directory.
    cwd: root,
    env: {
      PORT: String(port),
      WORKFLOW_TARGET_WORLD: world,
      PLT_WORLD_APP_ID: 'default',
      PLT_WORLD_DEPLOYMENT_VERSION: version,
      PGWORLD_HANDLER_BASE_URL: url,
      PGWORLD_POD_ID: `pod-${version}-${port}`,
      ...transportEnv,
      ...env,
    },
    ready: (child) =>
      new Promise((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          if (out.includes('listening on')) resolve(undefined);
        });
        child.once('exit', (code) => reject(new Error(`app ${version} exited (${code}) before listening`)));
      }),
  });
  await proc.start();
  return Object.assign(proc, { url, port, version });
}

/** JSON over HTTP; throws on a non-2xx answer. */
export async function call(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw Object.assign(new Error(`${method} ${url}: ${res.status} ${text}`), { status: res.status });
  return text ? JSON.parse(text) : undefined;
}
