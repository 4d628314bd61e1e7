// A Workflow DevKit 4.8 app on pgworld, end to end: real PostgreSQL 17 with the extension, the
// real dispatcher, app pods built by `workflow build` and served by plain Node HTTP. Nothing is
// mocked; processes are killed with SIGKILL where the test says so.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { APP_DIR, call, createDatabase, startApp, startDispatcher, waitFor } from './lib/harness.mjs';

const RESULT_TIMEOUT = 60_000;

/** The run's outcome once it settles (the app route waits for it). */
async function result(app, runId) {
  return await call('GET', `${app.url}/runs/${runId}/result`);
}

async function events(app, runId) {
  return (await call('GET', `${app.url}/runs/${runId}/events`)).data;
}

/**
 * Queues a workflow message for a run that has already finished (what a late wake-up does), as
 * the WDK queues one, and returns the message's row once it settles.
 */
async function lateWorkflowMessage(db, runId) {
  const c = new pg.Client({ connectionString: db.superUrl });
  await c.connect();
  try {
    await c.query(`SELECT set_config('workflow.app_id', 'default', false)`);
    const {
      rows: [run],
    } = await c.query('SELECT workflow_name, deployment_id, event_count FROM workflow.runs WHERE run_id = $1', [runId]);
    const message = { queueName: `__wkf_workflow_${run.workflow_name}`, message: { runId }, deploymentId: run.deployment_id };
    const {
      rows: [queued],
    } = await c.query(`SELECT workflow.queue_enqueue('{}', $1::jsonb) ->> 'messageId' AS id`, [JSON.stringify(message)]);
    const id = Number(queued.id.replace(/^msg_/, ''));
    const settled = await waitFor(`message ${queued.id} settles`, async () => {
      const { rows } = await c.query(`SELECT state, attempts FROM workflow.messages WHERE id = $1 AND state IN ('delivered', 'dead')`, [id]);
      return rows[0];
    });
    const {
      rows: [after],
    } = await c.query('SELECT event_count FROM workflow.runs WHERE run_id = $1', [runId]);
    return { ...settled, eventsBefore: run.event_count, eventsAfter: after.event_count };
  } finally {
    await c.end();
  }
}

async function run(app, file, workflow, args) {
  return (await call('POST', `${app.url}/start/${file}/${workflow}`, args)).runId;
}

/**
 * For one describe block: a fresh database and dispatcher before it, and every pod started
 * through `pod()` stopped after it.
 */
function stack(label) {
  const s = { db: undefined, dispatcher: undefined, pods: [] };
  before(async () => {
    s.db = await createDatabase(`pgworld_e2e_${label}_${process.pid}`);
    s.dispatcher = await startDispatcher(s.db);
  });
  after(async () => {
    for (const p of s.pods) await p.stop();
    await s.dispatcher?.stop();
    await s.db?.drop();
  });
  s.pod = async (version, opts = {}) => {
    const p = await startApp(version, { db: s.db, dispatcher: s.dispatcher, ...opts });
    s.pods.push(p);
    return p;
  };
  return s;
}

for (const transport of ['http', 'sql']) {
  describe(`a WDK 4.8 app over ${transport === 'http' ? 'the façade' : 'direct SQL'}`, { timeout: 300_000 }, () => {
    const s = stack(transport);
    let app;
    before(async () => {
      app = await s.pod('v1', { transport });
    });

    const finished = {};
    test('sequential and parallel steps', async () => {
      const id = await run(app, 'features', 'arithmetic', [4]);
      assert.deepEqual(await result(app, id), { status: 'completed', value: { a: 5, b: 10, c: 15 } });
      finished.completed = id;
    });

    test('sleep is a deferred delivery', async () => {
      const id = await run(app, 'features', 'napper', [2]);
      const { value } = await result(app, id);
      assert.ok(value >= 2000 && value < 10_000, `slept ${value} ms`);
      const kinds = (await events(app, id)).map((e) => e.eventType);
      assert.ok(kinds.includes('wait_created') && kinds.includes('wait_completed'), kinds.join());
    });

    test('a step that fails twice, then succeeds', async () => {
      const id = await run(app, 'features', 'retrier', []);
      assert.deepEqual(await result(app, id), { status: 'completed', value: 3 });
      const kinds = (await events(app, id)).map((e) => e.eventType);
      assert.equal(kinds.filter((k) => k === 'step_retrying').length, 2, kinds.join());
    });

    test('a fatal error fails the run without retrying', async () => {
      const id = await run(app, 'features', 'fatality', []);
      const outcome = await result(app, id);
      assert.equal(outcome.status, 'failed');
      assert.match(outcome.error, /cannot succeed/);
      const kinds = (await events(app, id)).map((e) => e.eventType);
      assert.equal(kinds.filter((k) => k === 'step_started').length, 1, kinds.join());
      assert.ok(kinds.includes('run_failed'), kinds.join());
    });

    test('a hook resumed by the test', async () => {
      const token = `approval-${transport}-${process.pid}`;
      const id = await run(app, 'features', 'approval', [token]);
      await waitFor('the hook', async () => (await call('GET', `${app.url}/runs/${id}/hooks`)).data.length === 1);
      await call('POST', `${app.url}/hooks/${token}`, { approved: true, by: 'e2e' });
      assert.deepEqual(await result(app, id), { status: 'completed', value: { approved: true, by: 'e2e' } });
    });

    test('a webhook', async () => {
      const id = await run(app, 'features', 'inbox', []);
      const hook = await waitFor('the webhook', async () => (await call('GET', `${app.url}/runs/${id}/hooks`)).data[0]);
      const res = await fetch(`${app.url}/.well-known/workflow/v1/webhook/${encodeURIComponent(hook.token)}`, {
        method: 'POST',
        body: 'hello from outside',
      });
      assert.ok(res.status < 300, `webhook answered ${res.status}`);
      assert.deepEqual(await result(app, id), { status: 'completed', value: { method: 'POST', body: 'hello from outside' } });
    });

    test('an output stream read live', async () => {
      const id = await run(app, 'features', 'ticker', [5, 300]);
      const res = await fetch(`${app.url}/runs/${id}/readable`);
      const arrivals = [];
      let buffered = '';
      for await (const chunk of res.body) {
        buffered += Buffer.from(chunk).toString('utf8');
        let nl;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          arrivals.push({ value: JSON.parse(buffered.slice(0, nl)), at: Date.now() });
          buffered = buffered.slice(nl + 1);
        }
      }
      assert.deepEqual(
        arrivals.map((a) => a.value),
        ['tick 1', 'tick 2', 'tick 3', 'tick 4', 'tick 5'],
      );
      // Live, not read back at the end: the ticks arrive as far apart as they were written.
      assert.ok(arrivals[4].at - arrivals[0].at >= 900, `ticks spread over ${arrivals[4].at - arrivals[0].at} ms`);
      assert.deepEqual(await result(app, id), { status: 'completed', value: 5 });
    });

    test('cancellation', async () => {
      const id = await run(app, 'features', 'napper', [3600]);
      await waitFor('the hour-long sleep', async () => (await events(app, id)).some((e) => e.eventType === 'wait_created'));
      assert.deepEqual(await call('POST', `${app.url}/runs/${id}/cancel`), { status: 'cancelled' });
      assert.equal((await result(app, id)).status, 'cancelled');
      finished.cancelled = id;
    });

    test('a late workflow message for a finished run is acknowledged on its first delivery', async () => {
      for (const status of ['completed', 'cancelled']) {
        assert.ok(finished[status], `the ${status} run of the tests above`);
        const late = await lateWorkflowMessage(s.db, finished[status]);
        // Delivered with no failed attempt (attempts counts failures), and nothing written to the run.
        assert.deepEqual(late, { state: 'delivered', attempts: 0, eventsBefore: late.eventsBefore, eventsAfter: late.eventsBefore }, status);
      }
    });
  });
}

describe('a run survives kill -9 of the app and of the dispatcher', { timeout: 300_000 }, () => {
  const s = stack('kill');
  let app;
  before(async () => {
    app = await s.pod('v1');
  });

  test('survivor', async (t) => {
    const id = await run(app, 'features', 'survivor', [2500]);
    const has = async (type, n = 1) => (await events(app, id)).filter((e) => e.eventType === type).length >= n;

    await waitFor('the first step to start', () => has('step_started'));
    await app.kill9();
    t.diagnostic('app pod killed -9 in the middle of the first step');
    await app.start();
    t.diagnostic('app pod back on the same port; the failed delivery is retried there');

    await waitFor('the second step to start', () => has('step_started', 2), { timeoutMs: RESULT_TIMEOUT });
    await s.dispatcher.kill9();
    t.diagnostic('dispatcher killed -9 while the second step ran (its lease is left behind)');
    await s.dispatcher.start();
    t.diagnostic('dispatcher back; the lease expires and the message is delivered again');

    assert.deepEqual(await result(app, id), { status: 'completed', value: ['first', 'second'] });
  });
});

describe('versions: v1 runs finish on v1 pods while v2 is deployed, then v1 drains', { timeout: 300_000 }, () => {
  const s = stack('versions');
  test('the version story', async (t) => {
    const say = (line) => t.diagnostic(line);
    const status = (version) => call('GET', `${s.dispatcher.url}/api/v1/apps/default/versions/${version}/status`);
    const counts = (s) =>
      `active runs ${s.activeRuns}, pending hooks ${s.pendingHooks}, pending waits ${s.pendingWaits}, queued messages ${s.queuedMessages}`;

    const v1 = await s.pod('v1');
    say(`v1 deployed: one pod at ${v1.url} (pipeline = stepA, approval hook, stepB)`);
    const oldRuns = [];
    for (const i of [1, 2, 3]) oldRuns.push(await run(v1, 'pipeline', 'pipeline', [i]));
    await waitFor('three v1 runs parked on their hooks', async () => (await status('v1')).pendingHooks === 3);
    say(`3 runs started on v1, each waiting for approval: ${counts(await status('v1'))}`);

    const v2 = await s.pod('v2');
    say(`v2 deployed: one pod at ${v2.url} (pipeline = stepB, approval hook, stepA: the order changed)`);
    const newRuns = [];
    for (const i of [4, 5]) newRuns.push(await run(v2, 'pipeline', 'pipeline', [i]));

    // Approvals arrive through the v2 pod, as they would once traffic moved to v2. The run's
    // continuation is still pinned to v1 and goes to the v1 pod.
    for (const id of newRuns) {
      await waitFor(`the hook of ${id}`, async () => (await call('GET', `${v2.url}/runs/${id}/hooks`)).data.length === 1);
    }
    for (const i of [1, 2, 3, 4, 5]) await call('POST', `${v2.url}/hooks/pipeline-${i}`, { go: true });
    say('all five approvals sent through the v2 pod');

    for (const [k, id] of oldRuns.entries()) {
      const { value } = await result(v1, id);
      assert.deepEqual(value, [`A${k + 1}@v1`, `B${k + 1}@v1`], `run ${id}`);
      say(`  v1 run ${id}: ${value.join(' then ')}  (every step on a v1 pod)`);
    }
    for (const [k, id] of newRuns.entries()) {
      const { value } = await result(v2, id);
      assert.deepEqual(value, [`B${k + 4}@v2`, `A${k + 4}@v2`], `run ${id}`);
      say(`  v2 run ${id}: ${value.join(' then ')}  (v2's order, on the v2 pod)`);
    }

    const drained = await waitFor('v1 to drain', async () => {
      const s = await status('v1');
      return s.drained ? s : undefined;
    });
    assert.deepEqual(
      [drained.activeRuns, drained.pendingHooks, drained.pendingWaits, drained.queuedMessages],
      [0, 0, 0, 0],
    );
    say(`v1 drained: ${counts(drained)}`);

    assert.deepEqual(
      await call('POST', `${s.dispatcher.url}/api/v1/versions/notify`, {
        applicationId: 'default',
        deploymentVersion: 'v1',
        status: 'expired',
      }),
      { updated: true },
    );
    assert.equal((await status('v1')).status, 'expired');
    // An expired version takes no new work: starting a run on the old pod is refused.
    await assert.rejects(run(v1, 'pipeline', 'pipeline', [6]), /410|expired/i);
    await v1.stop();
    say('v1 expired and its pod stopped; a new run on it was refused');
    const later = await run(v2, 'pipeline', 'pipeline', [7]);
    await waitFor('the hook of the later run', async () => (await call('GET', `${v2.url}/runs/${later}/hooks`)).data.length === 1);
    await call('POST', `${v2.url}/hooks/pipeline-7`, { go: true });
    assert.deepEqual((await result(v2, later)).value, ['B7@v2', 'A7@v2']);
    say(`v2 keeps serving: run ${later} completed on v2`);
  });

  test('the WDK CLI inspects the runs stored in pgworld', async (t) => {
    const cli = join(APP_DIR, 'node_modules', '@workflow', 'cli', 'bin', 'run.js');
    const inspect = async (...args) => {
      const { stdout } = await promisify(execFile)(process.execPath, [cli, 'inspect', ...args], {
        cwd: APP_DIR,
        env: { ...process.env, WORKFLOW_TARGET_WORLD: '@pgworld/world', PLT_WORLD_SERVICE_URL: s.dispatcher.url, PLT_WORLD_APP_ID: 'default' },
      });
      return stdout;
    };
    const listed = JSON.parse(await inspect('runs', '--json', '--limit', '100'));
    const runs = Array.isArray(listed) ? listed : listed.data;
    assert.equal(runs.length, 6, JSON.stringify(runs).slice(0, 500));
    assert.ok(runs.every((r) => r.workflowName.includes('pipeline') && r.status === 'completed'));
    const table = await inspect('runs');
    // The table abbreviates run ids to their last four characters.
    for (const r of runs) assert.match(table, new RegExp(`\\.\\.\\.${r.runId.slice(-4)}\\s+pipeline\\s+C\\s`));
    t.diagnostic(`workflow inspect runs (backend @pgworld/world):\n${table}`);
    const one = JSON.parse(await inspect('run', runs[0].runId, '--json'));
    assert.equal(one.runId, runs[0].runId);
    const steps = JSON.parse(await inspect('steps', '--runId', runs[0].runId, '--json'));
    assert.equal((Array.isArray(steps) ? steps : steps.data).length, 2);
  });
});
