// @ts-check
// Vitest global setup: a fresh database cloned from the extension template, and a real
// pgworld-dispatcher (façade and delivery) in single-tenant mode, for every test file.
import pg from 'pg';
import { createDatabase, startDispatcher } from './pgworld.js';

/** @param {import('vitest/node').TestProject} project */
export default async function setup(project) {
  const db = await createDatabase(`pgworld_wdk_${process.pid}`);
  // The suite decrypts run outputs without a key (its own World encrypts nothing), so it runs
  // with the app's secret removed; adapter.test.js covers pgworld's per-run keys.
  const su = new pg.Client({ connectionString: db.superUrl });
  await su.connect();
  await su.query(`SELECT workflow.app_secret_remove('default')`);
  await su.end();
  const dispatcher = await startDispatcher(db, { env: { PGWORLD_POLL_INTERVAL_MS: '200' } });
  project.provide('pgworld', { serviceUrl: dispatcher.url, databaseUrl: db.appUrl, adminUrl: db.superUrl });
  return async () => {
    await dispatcher.stop();
    await db.drop();
  };
}
