// Real processes for the end-to-end tests and the benchmark: a fresh database on the test
// cluster, pgworld-dispatcher, and app pods (server.mjs), each of which can be SIGKILLed and
// started again on the same port.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const here = dirname(fileURLToPath(import.meta.url));
export const APP_DIR = join(here, '..');
const LOG_DIR = join(APP_DIR, '..', '..', 'target', 'test-logs', 'e2e');
const DISPATCHER_ROLE = 'pgworld_it_dispatcher';
export const APP_ROLE = 'pgworld_e2e_app';

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function withUser(url, user, db) {
  const u = new URL(url);
  u.username = user;
  u.password = '';
  if (db) u.pathname = `/${db}`;
  return u.toString();
}

/** Polls `check` until it returns a truthy value. */
export async function waitFor(what, check, { timeoutMs = 30_000, everyMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(everyMs);
  }
}

/**
 * A fresh database cloned from the extension template, with the `default` app provisioned;
 * `plain` gives an empty database instead (for another World's own schema).
 */
export async function createDatabase(name, { plain = false } = {}) {
  const adminUrl = process.env.PGWORLD_TEST_URL;
  if (!adminUrl) throw new Error('PGWORLD_TEST_URL must point at the test cluster (./pgw test sets it)');
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name} TEMPLATE ${plain ? 'template0' : 'pgworld_template'}`);
  await admin.query(
    `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN CREATE ROLE ${APP_ROLE} LOGIN IN ROLE pgworld_client; END IF; END $$`,
  );
  const superUrl = withUser(adminUrl, new URL(adminUrl).username || 'postgres', name);
  if (!plain) {
    const db = new pg.Client({ connectionString: superUrl });
    await db.connect();
    await db.query(`SELECT workflow.app_provision('{"appId":"default"}')`);
    await db.query(`SELECT workflow.app_role_grant('default', '${APP_ROLE}')`);
    await db.end();
  }
  return {
    name,
    superUrl,
    appUrl: withUser(adminUrl, APP_ROLE, name),
    dispatcherUrl: withUser(adminUrl, DISPATCHER_ROLE, name),
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

/** A child process whose output goes to a log file, restartable on the same port. */
class Proc {
  constructor(label, cmd, args, env, ready) {
    Object.assign(this, { label, cmd, args, env, ready });
    this.child = undefined;
  }

  async start() {
    mkdirSync(LOG_DIR, { recursive: true });
    const log = createWriteStream(join(LOG_DIR, `${this.label}.log`), { flags: 'a' });
    // In the app's directory: WDK 4.x resolves WORKFLOW_TARGET_WORLD from the working directory.
    const child = spawn(this.cmd, this.args, {
      cwd: APP_DIR,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', resolve));
    await this.ready(child);
    return this;
  }

  /** SIGKILL: no shutdown work of any kind. */
  async kill9() {
    if (!this.child) return;
    this.child.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
  }

  async stop() {
    if (!this.child) return;
    this.child.kill('SIGTERM');
    await this.exited;
    this.child = undefined;
  }
}

async function httpReady(url) {
  await waitFor(`${url}/ready`, async () => (await fetch(`${url}/ready`)).ok, { timeoutMs: 30_000 });
}

/** pgworld-dispatcher in single-tenant mode; short leases so a killed one is recovered quickly. */
export async function startDispatcher(db, { port, env = {} } = {}) {
  const bin = process.env.PGWORLD_DISPATCHER_BIN;
  if (!bin) throw new Error('PGWORLD_DISPATCHER_BIN must name the pgworld-dispatcher binary');
  port ??= await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = new Proc(
    `dispatcher-${db.name}-${port}`,
    bin,
    [db.dispatcherUrl, '--host', '127.0.0.1', '--port', String(port)],
    { RUST_LOG: 'info', PGWORLD_METRICS_PORT: '0', PGWORLD_LEASE_SECONDS: '5', PGWORLD_POLL_INTERVAL_MS: '250', ...env },
    () => httpReady(url),
  );
  await proc.start();
  return Object.assign(proc, { url, port });
}

/**
 * One pod of the app for a deployment version (`v1` or `v2`), over the façade (`http`) or
 * straight to the database (`sql`).
 */
export async function startApp(version, { db, dispatcher, transport = 'http', port, world = '@pgworld/world', env = {} }) {
  port ??= await freePort();
  const url = `http://127.0.0.1:${port}`;
  const transportEnv =
    transport === 'http' ? { PLT_WORLD_SERVICE_URL: dispatcher.url } : { PGWORLD_DATABASE_URL: db.appUrl };
  const proc = new Proc(
    `app-${version}-${transport}-${port}`,
    process.execPath,
    [join(APP_DIR, 'server.mjs'), join(APP_DIR, version)],
    {
      PORT: String(port),
      WORKFLOW_TARGET_WORLD: world,
      PLT_WORLD_APP_ID: 'default',
      PLT_WORLD_DEPLOYMENT_VERSION: version,
      PGWORLD_HANDLER_BASE_URL: url,
      PGWORLD_POD_ID: `pod-${version}-${port}`,
      ...transportEnv,
      ...env,
    },
    (child) =>
      new Promise((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          if (out.includes('listening on')) resolve(undefined);
        });
        child.once('exit', (code) => reject(new Error(`app ${version} exited (${code}) before listening`)));
      }),
  );
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
