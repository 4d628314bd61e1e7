// Workflows started, resumed and read back from SQL (workflow.start, workflow.hook_resume,
// workflow.run_output) on a WDK 4.8 app: from psql's point of view (the app's own database role),
// inside the app's own transactions, from a trigger, from Python, and across versions.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { APP_DIR, createDatabase, startApp, startDispatcher, waitFor } from './lib/harness.mjs';

const ARITHMETIC = 'workflow//./workflows/features//arithmetic';
const APPROVAL = 'workflow//./workflows/features//approval';
const PIPELINE = 'workflow//./workflows/pipeline//pipeline';
const CHECKOUT = 'workflow//./workflows/shop//checkout';
const APP5_DIR = join(APP_DIR, '..', 'e2e-app5');

/** A session as the app's own role (a pgworld_client bound to `default`). */
async function session(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

/** run_output once the run has finished (WF425 until then). */
async function output(c, runId, timeoutMs = 60_000) {
  return await waitFor(
    `run ${runId} to finish`,
    async () => {
      try {
        return (await c.query('SELECT workflow.run_output($1) AS o', [runId])).rows[0].o;
      } catch (e) {
        if (e.code === 'WF425') return undefined;
        throw e;
      }
    },
    { timeoutMs, everyMs: 100 },
  );
}

async function sqlError(c, text, values) {
  try {
    await c.query(text, values);
  } catch (e) {
    return e;
  }
  throw new Error(`${text} did not fail`);
}

function stack(label, versions, { root } = {}) {
  const s = { pods: {} };
  before(async () => {
    s.db = await createDatabase(`pgworld_sql_${label}_${process.pid}`);
    s.dispatcher = await startDispatcher(s.db);
    for (const v of versions) s.pods[v] = await startApp(v, { db: s.db, dispatcher: s.dispatcher, root });
    s.app = await session(s.db.appUrl);
    s.su = await session(s.db.superUrl);
    await s.su.query(`SELECT set_config('workflow.app_id', 'default', false)`);
  });
  after(async () => {
    await s.app?.end();
    await s.su?.end();
    for (const p of Object.values(s.pods)) await p.stop();
    await s.dispatcher?.stop();
    await s.db?.drop();
  });
  return s;
}

describe('workflows from SQL on a WDK 4.8 app', { timeout: 300_000 }, () => {
  const s = stack('wdk4', ['v1']);

  test('started from SQL, a workflow runs on its pod and its output reads back', async () => {
    const {
      rows: [{ r: started }],
    } = await s.app.query(`SELECT workflow.start($1, '[4]') AS r`, [ARITHMETIC]);
    assert.match(started.runId, /^wrun_[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(started.deploymentId, 'v1', 'the newest version with pods');
    assert.equal(started.specVersion, 3, 'what the v1 pods registered (WDK 4.8)');
    assert.equal(started.encrypted, true, 'the app has a secret and WDK 4.8 reads encrypted values');
    assert.deepEqual(await output(s.app, started.runId), {
      runId: started.runId,
      status: 'completed',
      output: { a: 5, b: 10, c: 15 },
    });
    const { rows } = await s.su.query(
      `SELECT event_type FROM workflow.events WHERE run_id = $1 ORDER BY slot`,
      [started.runId],
    );
    assert.deepEqual(rows.slice(0, 2).map((r) => r.event_type), ['run_created', 'run_started']);
    assert.equal(rows.at(-1).event_type, 'run_completed');

    // The same event log shape as a run started by the WDK's start() in Node on the same pod.
    const res = await fetch(`${s.pods.v1.url}/start/features/arithmetic`, { method: 'POST', body: '[4]' });
    const fromNode = (await res.json()).runId;
    await output(s.app, fromNode);
    const shape = async (runId) => {
      const { rows } = await s.su.query(
        `SELECT event_type, spec_version, event_data FROM workflow.events WHERE run_id = $1 ORDER BY slot`,
        [runId],
      );
      const created = rows[0].event_data;
      return {
        // Sorted: the two parallel steps' events interleave as their deliveries happen to race.
        types: rows.map((r) => r.event_type).sort(),
        spec: rows[0].spec_version,
        created: Object.keys(created).sort(),
        context: Object.keys(created.executionContext).filter((k) => k !== 'traceCarrier').sort(),
        core: created.executionContext.workflowCoreVersion,
        input: Buffer.from(created.input.$bytes, 'base64').subarray(0, 4).toString(),
      };
    };
    assert.deepEqual(await shape(started.runId), await shape(fromNode));
  });

  test('bad arguments are WF400 and leave nothing behind', async () => {
    for (const [args, message] of [
      [[ARITHMETIC, '{"n": 4}'], /input must be a JSON array/],
      [['not a workflow id!', '[]'], /workflow_name must be a WDK workflow id/],
      [[ARITHMETIC, '[]', '{"specVersion": 9}'], /specVersion/],
      [[ARITHMETIC, '[]', '{"colour": "red"}'], /unknown option colour/],
    ]) {
      const e = await sqlError(s.app, `SELECT workflow.start($1, $2::jsonb, coalesce($3::jsonb, '{}'))`, [args[0], args[1], args[2] ?? null]);
      assert.equal(e.code, 'WF400', `${args}: ${e.message}`);
      assert.match(e.message, message);
    }
    const e = await sqlError(s.app, `SELECT workflow.hook_resume('no-such-token', '{}')`);
    assert.equal(e.code, 'WF404');
    assert.equal((await sqlError(s.app, `SELECT workflow.run_output('wrun_nope')`)).code, 'WF404');
  });

  test("atomic with the app's own data: rollback leaves neither, commit both", async () => {
    await s.su.query(`CREATE TABLE orders (id serial PRIMARY KEY, qty integer NOT NULL, run_id text)`);
    await s.su.query(`GRANT SELECT, INSERT, UPDATE ON orders TO ${new URL(s.db.appUrl).username}`);
    await s.su.query(`GRANT USAGE ON SEQUENCE orders_id_seq TO ${new URL(s.db.appUrl).username}`);
    const runsBefore = Number((await s.su.query(`SELECT count(*) FROM workflow.runs`)).rows[0].count);
    const messagesBefore = Number((await s.su.query(`SELECT count(*) FROM workflow.messages`)).rows[0].count);
    await s.app.query('BEGIN');
    await s.app.query(`INSERT INTO orders (qty) VALUES (7)`);
    const rolledBack = (await s.app.query(`SELECT workflow.start($1, '[7]') ->> 'runId' AS id`, [ARITHMETIC])).rows[0].id;
    await s.app.query('ROLLBACK');
    assert.equal(Number((await s.su.query(`SELECT count(*) FROM orders`)).rows[0].count), 0);
    assert.equal(Number((await s.su.query(`SELECT count(*) FROM workflow.runs`)).rows[0].count), runsBefore);
    assert.equal(Number((await s.su.query(`SELECT count(*) FROM workflow.messages`)).rows[0].count), messagesBefore);
    assert.equal((await sqlError(s.app, `SELECT workflow.run_output($1)`, [rolledBack])).code, 'WF404');

    await s.app.query('BEGIN');
    const id = (await s.app.query(`INSERT INTO orders (qty) VALUES (8) RETURNING id`)).rows[0].id;
    const runId = (await s.app.query(`SELECT workflow.start($1, '[8]') ->> 'runId' AS id`, [ARITHMETIC])).rows[0].id;
    await s.app.query(`UPDATE orders SET run_id = $1 WHERE id = $2`, [runId, id]);
    await s.app.query('COMMIT');
    assert.deepEqual((await output(s.app, runId)).output, { a: 9, b: 18, c: 19 });
    assert.equal((await s.su.query(`SELECT run_id FROM orders WHERE id = $1`, [id])).rows[0].run_id, runId);
  });

  test('a trigger starts a workflow per inserted row: 100 rows, 100 completed runs', async () => {
    await s.su.query(`TRUNCATE orders`);
    await s.su.query(`
      CREATE FUNCTION start_order() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        NEW.run_id := workflow.start('${ARITHMETIC}', jsonb_build_array(NEW.qty)) ->> 'runId';
        RETURN NEW;
      END $$`);
    await s.su.query(`CREATE TRIGGER start_order BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION start_order()`);
    await s.app.query(`INSERT INTO orders (qty) SELECT g FROM generate_series(1, 100) g`);
    await waitFor(
      '100 runs to complete',
      async () =>
        Number(
          (
            await s.su.query(
              `SELECT count(*) FROM workflow.runs r JOIN orders o USING (run_id) WHERE r.status = 'completed'`,
            )
          ).rows[0].count,
        ) === 100,
      { timeoutMs: 180_000, everyMs: 500 },
    );
    const { rows } = await s.su.query(`SELECT qty, run_id FROM orders ORDER BY qty`);
    for (const { qty, run_id } of [rows[0], rows[41], rows[99]]) {
      const n = qty + 1;
      assert.deepEqual((await output(s.app, run_id)).output, { a: n, b: n * 2, c: n + 10 }, `order ${qty}`);
    }
    await s.su.query(`DROP TRIGGER start_order ON orders`);
  });

  test('hook_resume wakes a run parked on a hook', async () => {
    const token = `sql-approval-${process.pid}`;
    const runId = (await s.app.query(`SELECT workflow.start($1, $2::jsonb) ->> 'runId' AS id`, [APPROVAL, JSON.stringify([token])]))
      .rows[0].id;
    await waitFor('the hook', async () => (await s.su.query(`SELECT 1 FROM workflow.hooks WHERE token = $1`, [token])).rowCount === 1);
    const {
      rows: [{ r }],
    } = await s.app.query(`SELECT workflow.hook_resume($1, '{"approved": true, "by": "sql"}') AS r`, [token]);
    assert.equal(r.runId, runId);
    assert.deepEqual((await output(s.app, runId)).output, { approved: true, by: 'sql' });
  });

  test('from Python (psycopg in a virtual environment): start, resume the hook, read the output', async () => {
    const python = process.env.PGWORLD_PYTHON;
    assert.ok(python, 'PGWORLD_PYTHON names the test virtual environment\'s python (./pgw test sets it)');
    const token = `python-${process.pid}`;
    const { stdout } = await promisify(execFile)(python, [join(APP_DIR, '..', 'python', 'client.py'), s.db.appUrl, APPROVAL, token], {
      timeout: 90_000,
    });
    const lines = stdout.trim().split('\n');
    const last = JSON.parse(lines.at(-1));
    assert.equal(last.status, 'completed', stdout);
    assert.deepEqual(last.output, { approved: true, by: 'python' });
  });

  test("the WDK's health check from a process that serves no version reaches a pod", async () => {
    // What `workflow inspect --web` does: a World with no deployment version of its own.
    const sdk = createRequire(join(APP_DIR, 'package.json'));
    const { healthCheck } = await import(pathToFileURL(sdk.resolve('workflow/runtime')).href);
    const { createPgWorld, resolveConfig } = await import(pathToFileURL(sdk.resolve('@pgworld/world')).href);
    const world = createPgWorld(resolveConfig({ serviceUrl: s.dispatcher.url, appId: 'default' }, {}));
    try {
      for (const endpoint of ['workflow', 'step']) {
        const r = await healthCheck(world, endpoint, { timeout: 20_000 });
        assert.equal(r.healthy, true, `${endpoint}: ${JSON.stringify(r)}`);
      }
    } finally {
      await world.close();
    }
  });

  test('an app without a secret gets plaintext runs that read back the same', async () => {
    await s.su.query(`SELECT workflow.app_secret_remove('default')`);
    const {
      rows: [{ r }],
    } = await s.app.query(`SELECT workflow.start($1, '[1]') AS r`, [ARITHMETIC]);
    assert.equal(r.encrypted, false);
    assert.deepEqual((await output(s.app, r.runId)).output, { a: 2, b: 4, c: 12 });
    const input = (await s.su.query(`SELECT input FROM workflow.runs WHERE run_id = $1`, [r.runId])).rows[0].input;
    assert.ok(Buffer.from(input.$bytes, 'base64').subarray(0, 4).toString() === 'devl', JSON.stringify(input));
  });
});

describe('a hook resumed from SQL on a v1 run while v2 is active', { timeout: 300_000 }, () => {
  const s = stack('versions', ['v1']);

  test('the continuation goes to the v1 pods', async () => {
    const token = 'pipeline-41';
    const v1Run = (await s.app.query(`SELECT workflow.start($1, '[41]') ->> 'runId' AS id`, [PIPELINE])).rows[0].id;
    await waitFor('the v1 hook', async () => (await s.su.query(`SELECT 1 FROM workflow.hooks WHERE token = $1`, [token])).rowCount === 1);
    s.pods.v2 = await startApp('v2', { db: s.db, dispatcher: s.dispatcher });
    const v2Start = (await s.app.query(`SELECT workflow.start($1, '[42]') AS r`, [PIPELINE])).rows[0].r;
    assert.equal(v2Start.deploymentId, 'v2', 'a start without a deployment goes to the newest version with pods');
    await s.app.query(`SELECT workflow.hook_resume($1, '{"go": true}')`, [token]);
    assert.deepEqual((await output(s.app, v1Run)).output, ['A41@v1', 'B41@v1']);
    const { rows } = await s.su.query(
      `SELECT DISTINCT deployment_version FROM workflow.messages WHERE run_id = $1`,
      [v1Run],
    );
    assert.deepEqual(rows.map((r) => r.deployment_version), ['v1']);
    await waitFor('the v2 hook', async () => (await s.su.query(`SELECT 1 FROM workflow.hooks WHERE token = 'pipeline-42'`)).rowCount === 1);
    await s.app.query(`SELECT workflow.hook_resume('pipeline-42', '{"go": true}')`);
    assert.deepEqual((await output(s.app, v2Start.runId)).output, ['B42@v2', 'A42@v2']);
  });
});

describe('workflows from SQL on a WDK 5 app', { timeout: 300_000 }, () => {
  const s = stack('wdk5', ['v1'], { root: APP5_DIR });

  test('started and resumed from SQL; its compressed, encrypted output reads back', async () => {
    const token = `checkout-${process.pid}`;
    const {
      rows: [{ r: started }],
    } = await s.app.query(`SELECT workflow.start($1, $2::jsonb) AS r`, [CHECKOUT, JSON.stringify(['A-1', 3, token])]);
    assert.equal(started.specVersion, 5, 'what the WDK 5 pods registered');
    assert.equal(started.encrypted, true);
    await waitFor('the hook', async () => (await s.su.query(`SELECT 1 FROM workflow.hooks WHERE token = $1`, [token])).rowCount === 1);
    await s.app.query(`SELECT workflow.hook_resume($1, '{"paid": true, "note": "from sql"}')`, [token]);
    const { output } = await output5(s, started.runId);
    assert.deepEqual(output.line, { sku: 'A-1', qty: 3, cents: 3750 });
    assert.deepEqual(output.payment, { paid: true, note: 'from sql' });
    assert.equal(output.receipt.length, 80);
    assert.equal(output.receipt[79], 'line 79: A-1 x3');
    // Far smaller than the 2 KiB of text it holds: WDK 5 compressed it before sealing it.
    const stored = (await s.su.query(`SELECT output FROM workflow.runs WHERE run_id = $1`, [started.runId])).rows[0].output;
    const bytes = Buffer.from(stored.$bytes, 'base64');
    assert.equal(bytes.subarray(0, 4).toString(), 'encr');
    assert.ok(bytes.length < 1024, `${bytes.length} bytes stored`);
  });
});

async function output5(s, runId) {
  const o = await output(s.app, runId);
  assert.equal(o.status, 'completed', JSON.stringify(o));
  return o;
}
