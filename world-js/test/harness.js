// @ts-check
// Vitest global setup: a fresh database cloned from the extension template on the test cluster
// (./pgw test prepares both), a direct-mode login role mapped to the app, and a real
// pgworld-dispatcher (façade and delivery) in single-tenant mode on a free port.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const APP_ROLE = 'pgworld_wdk_app';
const DISPATCHER_ROLE = 'pgworld_it_dispatcher';

/** @returns {Promise<number>} */
function freePort() {
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
function withUser(url, user, db) {
  const u = new URL(url);
  u.username = user;
  u.password = '';
  if (db) u.pathname = `/${db}`;
  return u.toString();
}

/**
 * @param {string} url
 * @param {number} timeoutMs
 */
async function waitReady(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/ready`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`dispatcher at ${url} not ready after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** @param {import('vitest/node').TestProject} project */
export default async function setup(project) {
  const adminUrl = process.env.PGWORLD_TEST_URL;
  const bin = process.env.PGWORLD_DISPATCHER_BIN;
  if (!adminUrl || !bin) {
    throw new Error('PGWORLD_TEST_URL and PGWORLD_DISPATCHER_BIN must be set (./pgw test sets both)');
  }
  const db = `pgworld_wdk_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin.query(`CREATE DATABASE ${db} TEMPLATE pgworld_template`);
  await admin.query(
    `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN CREATE ROLE ${APP_ROLE} LOGIN IN ROLE pgworld_client; END IF; END $$`,
  );
  const inDb = new pg.Client({ connectionString: withUser(adminUrl, new URL(adminUrl).username || 'postgres', db) });
  await inDb.connect();
  await inDb.query(`SELECT workflow.app_provision('{"appId":"default"}')`);
  await inDb.query(`SELECT workflow.app_role_grant('default', '${APP_ROLE}')`);
  // The suite decrypts run outputs without a key (its own World encrypts nothing), so it runs
  // with the app's secret removed; test/encryption.test.js covers pgworld's encrypted runs.
  await inDb.query(`SELECT workflow.app_secret_remove('default')`);
  await inDb.end();

  const port = await freePort();
  const logDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'test-logs');
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(join(logDir, `wdk-dispatcher-${port}.log`));
  const child = spawn(bin, [withUser(adminUrl, DISPATCHER_ROLE, db), '--host', '127.0.0.1', '--port', String(port)], {
    env: { ...process.env, RUST_LOG: 'info', PGWORLD_POLL_INTERVAL_MS: '200', PGWORLD_METRICS_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const serviceUrl = `http://127.0.0.1:${port}`;
  await waitReady(serviceUrl, 30_000);

  project.provide('pgworld', {
    serviceUrl,
    databaseUrl: withUser(adminUrl, APP_ROLE, db),
    adminUrl: withUser(adminUrl, new URL(adminUrl).username || 'postgres', db),
  });

  return async () => {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.end();
  };
}
