// @ts-check
// API tokens over the façade: a dispatcher with PGWORLD_API_TOKENS=1 (its own database), and
// @pgworld/world sending a token from its options, PGWORLD_TOKEN or PGWORLD_TOKEN_FILE.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPgWorld, resolveConfig } from '../src/index.js';
import { createDatabase, startDispatcher } from './pgworld.js';

/** @type {Awaited<ReturnType<typeof createDatabase>>} */
let db;
/** @type {Awaited<ReturnType<typeof startDispatcher>>} */
let dispatcher;
/** @type {Record<string, string>} */
const tokens = {};

/**
 * @param {string} sql
 * @param {unknown[]} [values]
 */
async function su(sql, values = []) {
  const c = new pg.Client({ connectionString: db.superUrl });
  await c.connect();
  try {
    return (await c.query(sql, values)).rows;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  db = await createDatabase(`pgworld_tokens_${process.pid}`);
  await su(`SELECT workflow.app_provision('{"appId":"shop"}')`);
  for (const app of ['default', 'shop']) {
    const [row] = await su(`SELECT workflow.app_token_create($1, '{"label":"wdk"}') AS t`, [app]);
    tokens[app] = row.t.token;
  }
  dispatcher = await startDispatcher(db, { env: { PGWORLD_API_TOKENS: '1' } });
});

afterAll(async () => {
  await dispatcher?.stop();
  await db?.drop();
});

describe('API tokens', () => {
  test('a token from the options or PGWORLD_TOKEN acts for its app', async () => {
    const world = createPgWorld(resolveConfig({ serviceUrl: dispatcher.url, appId: 'shop', deploymentVersion: 't1', token: tokens.shop }));
    await expect(world.runs.list({ pagination: { limit: 1 } })).resolves.toHaveProperty('data');
    await world.close();
    const fromEnv = createPgWorld(
      resolveConfig({ serviceUrl: dispatcher.url, appId: 'default', deploymentVersion: 't1' }, { PGWORLD_TOKEN: tokens.default }),
    );
    await expect(fromEnv.runs.list({ pagination: { limit: 1 } })).resolves.toHaveProperty('data');
    await fromEnv.close();
  });

  test('a token file is read on every request, so a rotated secret takes effect', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'pgworld-token-')), 'token');
    writeFileSync(file, 'pgw_1_not-a-real-token\n');
    const world = createPgWorld(
      resolveConfig({ serviceUrl: dispatcher.url, appId: 'shop', deploymentVersion: 't1' }, { PGWORLD_TOKEN_FILE: file }),
    );
    await expect(world.runs.list({ pagination: { limit: 1 } })).rejects.toThrow(/401|Unauthorized/);
    writeFileSync(file, `${tokens.shop}\n`);
    await expect(world.runs.list({ pagination: { limit: 1 } })).resolves.toHaveProperty('data');
    await world.close();
  });

  test("another app's token, or none, is refused", async () => {
    const wrong = createPgWorld(resolveConfig({ serviceUrl: dispatcher.url, appId: 'shop', deploymentVersion: 't1', token: tokens.default }));
    await expect(wrong.runs.list({ pagination: { limit: 1 } })).rejects.toThrow(/403|Forbidden/);
    await wrong.close();
    const res = await fetch(`${dispatcher.url}/api/v1/apps/shop/runs`);
    expect(res.status).toBe(401);
  });
});
