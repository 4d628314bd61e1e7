// Comparison benchmark (`./pgw bench wdk`): the same three-step workflow on
// @workflow/world-postgres and on pgworld over the façade and over SQL, all on the same
// PostgreSQL 17, each with a fresh database and one app process. Run latency is the run's own
// createdAt → completedAt as its World stored it. Two passes per World:
//   idle   --idle runs, one at a time: latency without queueing
//   load   --runs runs started --concurrency at a time: throughput (runs over the span from the
//          first createdAt to the last completedAt) and latency including queueing
//
//   node bench.mjs [--runs N] [--concurrency C] [--idle N] [--only world-postgres|pgworld-http|pgworld-sql]
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { APP_DIR, call, createDatabase, startApp, startDispatcher } from './lib/harness.mjs';

function flag(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const RUNS = Number(flag('runs', 300));
const CONCURRENCY = Number(flag('concurrency', 20));
const IDLE = Number(flag('idle', 30));
const WARMUP = 10;
const ONLY = flag('only', undefined);

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Starts `count` runs, `inFlight` requests at a time; resolves to their ids. */
async function startRuns(app, count, base, inFlight = CONCURRENCY) {
  const ids = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const i = next++;
        ids.push((await call('POST', `${app.url}/start/bench/threeSteps`, [base + i])).runId);
      }
    }),
  );
  return ids;
}

/** Waits until every id is completed; returns their stored runs. */
async function settle(app, ids, timeoutMs) {
  const want = new Set(ids);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { data } = await call('GET', `${app.url}/runs?workflowName=${encodeURIComponent('workflow//./workflows/bench//threeSteps')}`);
    const mine = data.filter((r) => want.has(r.runId));
    const failed = mine.filter((r) => r.status === 'failed' || r.status === 'cancelled');
    if (failed.length) throw new Error(`${failed.length} runs did not complete (first: ${JSON.stringify(failed[0])})`);
    if (mine.length === ids.length && mine.every((r) => r.status === 'completed')) return mine;
    if (Date.now() > deadline) {
      const done = mine.filter((r) => r.status === 'completed').length;
      throw new Error(`only ${done}/${ids.length} runs completed in ${timeoutMs} ms`);
    }
    await sleep(250);
  }
}

/** @returns {{p50: number, p99: number, runsPerSecond: number}} */
function summarize(runs) {
  const latencies = runs.map((r) => new Date(r.completedAt) - new Date(r.createdAt)).sort((a, b) => a - b);
  const first = Math.min(...runs.map((r) => new Date(r.createdAt).getTime()));
  const last = Math.max(...runs.map((r) => new Date(r.completedAt).getTime()));
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), runsPerSecond: runs.length / ((last - first) / 1000) };
}

async function measure(label, app) {
  // Warm-up: JIT, connection pools, first-use paths.
  await settle(app, await startRuns(app, WARMUP, 1_000_000), 120_000);
  const idle = [];
  for (let i = 0; i < IDLE; i++) {
    const [id] = await startRuns(app, 1, 2_000_000 + i, 1);
    idle.push(...(await settle(app, [id], 60_000)));
  }
  const ids = await startRuns(app, RUNS, 0);
  const load = summarize(await settle(app, ids, 600_000));
  return { label, idle: summarize(idle), load };
}

async function worldPostgres() {
  const db = await createDatabase(`bench_wp_${process.pid}`, { plain: true });
  // world-postgres creates its own tables (graphile-worker and its schema) in its own database.
  const url = db.superUrl;
  await promisify(execFile)(process.execPath, [join(APP_DIR, 'node_modules', '@workflow', 'world-postgres', 'bin', 'setup.js')], {
    cwd: APP_DIR,
    env: { ...process.env, WORKFLOW_POSTGRES_URL: url },
  });
  const app = await startApp('v1', {
    db,
    dispatcher: { url: 'http://unused' },
    world: '@workflow/world-postgres',
    env: { WORKFLOW_POSTGRES_URL: url },
  });
  try {
    return await measure('@workflow/world-postgres 4.3.7', app);
  } finally {
    await app.stop();
    await db.drop();
  }
}

async function pgworld(transport) {
  const db = await createDatabase(`bench_pgw_${transport}_${process.pid}`);
  const dispatcher = await startDispatcher(db, { env: { PGWORLD_POLL_INTERVAL_MS: '1000', PGWORLD_LEASE_SECONDS: '60' } });
  const app = await startApp('v1', { db, dispatcher, transport });
  try {
    return await measure(`@pgworld/world (${transport === 'http' ? 'façade' : 'direct SQL'})`, app);
  } finally {
    await app.stop();
    await dispatcher.stop();
    await db.drop();
  }
}

const targets = {
  'world-postgres': worldPostgres,
  'pgworld-http': () => pgworld('http'),
  'pgworld-sql': () => pgworld('sql'),
};
const results = [];
for (const [name, run] of Object.entries(targets)) {
  if (ONLY && ONLY !== name) continue;
  console.log(`… ${name}: ${RUNS} runs of a three-step workflow, ${CONCURRENCY} starts in flight`);
  results.push(await run());
}
const ms = (n) => String(n).padStart(7);
console.log(`\nidle: ${IDLE} runs one at a time · load: ${RUNS} runs, ${CONCURRENCY} starts in flight · one app process`);
console.log('world                               idle p50  idle p99 │ load runs/s  load p50  load p99   (ms)');
for (const r of results) {
  console.log(
    `${r.label.padEnd(34)} ${ms(r.idle.p50)}   ${ms(r.idle.p99)} │ ${r.load.runsPerSecond.toFixed(1).padStart(11)}  ${ms(r.load.p50)}   ${ms(r.load.p99)}`,
  );
}
