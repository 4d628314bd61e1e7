// @ts-check
// Real pgworld for JavaScript tests (this package's and tests/e2e-app's): a fresh database on
// the test cluster that `./pgw test` prepares, pgworld-dispatcher, and child processes that can
// be SIGKILLed and started again on the same port.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const LOG_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'test-logs', 'js');
const DISPATCHER_ROLE = 'pgworld_it_dispatcher';
/** The direct-mode login role, bound to the `default` app of every database made here. */
export const APP_ROLE = 'pgworld_it_app';

/** @returns {Promise<number>} */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/**
 * @param {string} url
 * @param {string} user
 * @param {string} [db]
 */
export function withUser(url, user, db) {
  const u = new URL(url);
  u.username = user;
  u.password = '';
  if (db) u.pathname = `/${db}`;
  return u.toString();
}

/**
 * Polls `check` until it returns a truthy value.
 * @template T
 * @param {string} what
 * @param {() => Promise<T> | T} check
 * @param {{timeoutMs?: number, everyMs?: number}} [opts]
 * @returns {Promise<T>}
 */
export async function waitFor(what, check, { timeoutMs = 30_000, everyMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  /** @type {any} */
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
 * @typedef {object} Database
 * @property {string} name
 * @property {string} superUrl       the cluster's superuser, in this database
 * @property {string} appUrl         the direct-mode role (APP_ROLE)
 * @property {string} dispatcherUrl  the dispatcher's role (a member of pgworld_service)
 * @property {() => Promise<void>} drop
 */

/**
 * A fresh database cloned from the extension template, with the `default` app provisioned and
 * APP_ROLE bound to it; `plain` gives an empty database instead (for another World's schema).
 * @param {string} name
 * @param {{plain?: boolean}} [opts]
 * @returns {Promise<Database>}
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

/** A child process whose output goes to a log file, restartable with the same settings. */
export class Proc {
  /**
   * @param {string} label   names the log file
   * @param {string} cmd
   * @param {string[]} args
   * @param {{env?: Record<string, string>, cwd?: string, ready: (child: import('node:child_process').ChildProcessWithoutNullStreams) => Promise<void>}} opts
   */
  constructor(label, cmd, args, opts) {
    this.label = label;
    this.cmd = cmd;
    this.args = args;
    this.opts = opts;
    /** @type {import('node:child_process').ChildProcessWithoutNullStreams | undefined} */
    this.child = undefined;
    /** @type {Promise<unknown> | undefined} */
    this.exited = undefined;
  }

  async start() {
    mkdirSync(LOG_DIR, { recursive: true });
    const log = createWriteStream(join(LOG_DIR, `${this.label}.log`), { flags: 'a' });
    const child = spawn(this.cmd, this.args, {
      cwd: this.opts.cwd,
      env: { ...process.env, ...this.opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', resolve));
    await this.opts.ready(child);
    return this;
  }

  /** SIGKILL: no shutdown work of any kind. */
  async kill9() {
    await this.signal('SIGKILL');
  }

  async stop() {
    await this.signal('SIGTERM');
  }

  /** @param {NodeJS.Signals} sig */
  async signal(sig) {
    if (!this.child) return;
    this.child.kill(sig);
    await this.exited;
    this.child = undefined;
  }
}

/**
 * pgworld-dispatcher in single-tenant mode on `port` (a free one by default).
 * @param {Database} db
 * @param {{port?: number, env?: Record<string, string>}} [opts]
 */
export async function startDispatcher(db, { port, env = {} } = {}) {
  const bin = process.env.PGWORLD_DISPATCHER_BIN;
  if (!bin) throw new Error('PGWORLD_DISPATCHER_BIN must name the pgworld-dispatcher binary');
  const p = port ?? (await freePort());
  const url = `http://127.0.0.1:${p}`;
  const proc = new Proc(`dispatcher-${db.name}-${p}`, bin, ['--host', '127.0.0.1', '--port', String(p)], {
    env: { DATABASE_URL: db.dispatcherUrl, RUST_LOG: 'info', PGWORLD_METRICS_PORT: '0', ...env },
    ready: () => waitFor(`${url}/ready`, async () => (await fetch(`${url}/ready`)).ok).then(() => undefined),
  });
  await proc.start();
  return Object.assign(proc, { url, port: p });
}
