// The WDK's observability web UI (`workflow inspect runs --web`, @workflow/web) on pgworld, in a
// real browser: Debian's Chromium, driven by puppeteer-core, reads what real runs of the e2e app
// left in pgworld, over the façade and over direct SQL. Screenshots go to target/web-ui/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import puppeteer from 'puppeteer-core';
import { Proc, freePort } from '../../world-js/test/pgworld.js';
import { APP_DIR, call, createDatabase, startApp, startDispatcher } from './lib/harness.mjs';

const CHROMIUM = process.env.PGWORLD_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(APP_DIR, '..', '..', 'target', 'web-ui');
const UI_TIMEOUT = 30_000;

/** `workflow inspect runs --web` on a free port, pointed at pgworld the way a user points it. */
async function startWebUi(label, worldEnv) {
  const port = await freePort();
  const cli = join(APP_DIR, 'node_modules', '@workflow', 'cli', 'bin', 'run.js');
  const proc = new Proc(`web-ui-${label}`, process.execPath, [cli, 'inspect', 'runs', '--web', '--noBrowser', '--webPort', String(port)], {
    cwd: APP_DIR,
    env: {
      // The header names the World after the last segment of this specifier: "pgworld".
      WORKFLOW_TARGET_WORLD: '@pgworld/world/pgworld',
      WORKFLOW_NO_UPDATE_CHECK: '1',
      PLT_WORLD_APP_ID: 'default',
      ...worldEnv,
    },
    ready: (child) =>
      new Promise((resolve, reject) => {
        let out = '';
        const seen = (d) => {
          out += d;
          if (out.includes('Web UI available at')) resolve(undefined);
        };
        child.stdout.on('data', seen);
        child.stderr.on('data', seen);
        child.once('exit', (code) => reject(new Error(`workflow inspect --web exited (${code}): ${out.slice(-2000)}`)));
      }),
  });
  await proc.start();
  return Object.assign(proc, { url: `http://localhost:${port}` });
}

/** Waits until the page's visible text contains every one of `texts`. */
async function showing(page, ...texts) {
  try {
    await page.waitForFunction((wanted) => wanted.every((t) => document.body.innerText.includes(t)), { timeout: UI_TIMEOUT }, texts);
  } catch (err) {
    const body = await page.evaluate(() => document.body.innerText);
    throw new Error(`the page never showed ${JSON.stringify(texts)}; it shows:\n${body.slice(0, 4000)}`, { cause: err });
  }
}

/** The visible text of the runs-table row of `runId`. */
async function rowOf(page, runId) {
  return await page.evaluate((id) => [...document.querySelectorAll('tr')].find((tr) => tr.innerText.includes(id))?.innerText ?? '', runId);
}

async function clickText(page, text) {
  await page.locator(`::-p-text(${text})`).setTimeout(UI_TIMEOUT).click();
}

/** Opens the collapsed section of the side panel labelled exactly `label` (once it renders). */
async function expand(page, label) {
  const toggle = await page.waitForFunction(
    (l) => [...document.querySelectorAll('button, summary, [role=button]')].find((e) => e.innerText.trim() === l),
    { timeout: UI_TIMEOUT },
    label,
  );
  await toggle.asElement().click();
}

for (const transport of ['http', 'sql']) {
  describe(`the WDK web UI on pgworld over ${transport === 'http' ? 'the façade' : 'direct SQL'}`, { timeout: 240_000 }, () => {
    const runs = {};
    let db, dispatcher, app, web, browser, page;
    const shot = async (name) => await page.screenshot({ path: join(SHOTS, `${transport}-${name}.png`) });
    const open = async (path) => await page.goto(`${web.url}${path}`, { waitUntil: 'networkidle0' });

    before(async () => {
      mkdirSync(SHOTS, { recursive: true });
      db = await createDatabase(`pgworld_e2e_webui_${transport}_${process.pid}`);
      dispatcher = await startDispatcher(db);
      app = await startApp('v1', { db, dispatcher, transport });
      const start = async (workflow, args) => (await call('POST', `${app.url}/start/features/${workflow}`, args)).runId;
      runs.completed = await start('arithmetic', [4]);
      runs.failed = await start('fatality', []);
      runs.streamed = await start('ticker', [3, 10]);
      runs.hooked = await start('approval', [`web-ui-${transport}-${process.pid}`]);
      for (const [name, want] of [['completed', 'completed'], ['failed', 'failed'], ['streamed', 'completed']]) {
        const outcome = await call('GET', `${app.url}/runs/${runs[name]}/result`);
        assert.equal(outcome.status, want, `${name}: ${JSON.stringify(outcome)}`);
      }
      // The web UI is its own process, with no deployment version of its own (like a user's CLI).
      web = await startWebUi(transport, transport === 'http' ? { PLT_WORLD_SERVICE_URL: dispatcher.url } : { PGWORLD_DATABASE_URL: db.appUrl });
      browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        // Root in a container: no user namespace for the sandbox, and a small /dev/shm.
        args: ['--no-sandbox', '--disable-dev-shm-usage'],
      });
      page = await browser.newPage();
      await page.setViewport({ width: 1400, height: 900 });
    });

    after(async () => {
      await browser?.close();
      await web?.stop();
      await app?.stop();
      await dispatcher?.stop();
      await db?.drop();
    });

    test('the runs list shows every run with its workflow and status', async () => {
      await open('/');
      await showing(page, 'Connected to: pgworld', runs.completed, runs.failed, runs.streamed, runs.hooked);
      const expected = { completed: ['arithmetic', 'Completed'], failed: ['fatality', 'Failed'], streamed: ['ticker', 'Completed'], hooked: ['approval', 'Running'] };
      for (const [name, [workflow, status]] of Object.entries(expected)) {
        const row = await rowOf(page, runs[name]);
        assert.match(row, new RegExp(`^\\s*${workflow}\\b`), row);
        assert.ok(row.includes(status), `${name} row: ${row}`);
      }
      await shot('runs');
    });

    test('Health Check is green for a CLI that serves no version', async () => {
      await open('/');
      await clickText(page, 'Health Check');
      await showing(page, 'All endpoints healthy');
      // Only for the picture: the toast slides in.
      await new Promise((resolve) => setTimeout(resolve, 600));
      await shot('health-check');
    });

    test("a run's trace, and a step's output decrypted", async () => {
      await open(`/run/${runs.completed}`);
      await showing(page, 'arithmetic', 'Completed', 'add', 'double', 'End of run');
      await clickText(page, 'double');
      // A finished run's span panel says so; "Live" there would mean the run looked unfinished.
      await showing(page, 'Step\nCompleted', 'Decrypt');
      await clickText(page, 'Decrypt');
      await showing(page, 'Decrypted');
      await expand(page, 'Output');
      await showing(page, 'Output\nOutput\n10');
      await shot('run-step-decrypted');
    });

    test("the failed run's error", async () => {
      await open(`/run/${runs.failed}`);
      await showing(page, 'fatality', 'Failed', 'doomed');
      await clickText(page, 'doomed');
      await showing(page, 'Status\nfailed', 'Decrypt');
      await clickText(page, 'Decrypt');
      await showing(page, 'Decrypted');
      await expand(page, 'Error');
      await showing(page, 'this step cannot succeed');
      await shot('failed-run');
    });

    test('a pending hook, and resolving it from the UI', async () => {
      const token = `web-ui-${transport}-${process.pid}`;
      await open(`/run/${runs.hooked}`);
      await showing(page, 'approval', 'Running', token);
      await clickText(page, token);
      await showing(page, 'Hook\nLive', `Token\n${token}`, 'Resolve Hook');
      await shot('hook');
      await clickText(page, 'Resolve Hook');
      await page.locator('#json-payload').setTimeout(UI_TIMEOUT).fill(JSON.stringify({ approved: true, by: 'web-ui' }));
      await clickText(page, 'Send Payload');
      // The payload reaches the workflow on the run's own version, and the run finishes with it.
      assert.deepEqual(await call('GET', `${app.url}/runs/${runs.hooked}/result`), { status: 'completed', value: { approved: true, by: 'web-ui' } });
    });

    test('a stream, decrypted', async () => {
      await open(`/run/${runs.streamed}`);
      await clickText(page, 'Streams');
      const stream = `strm_${runs.streamed.slice('wrun_'.length)}_user`;
      await clickText(page, stream);
      await showing(page, 'This stream is encrypted.');
      await clickText(page, 'Decrypt');
      await showing(page, 'Stream Chunks', '[0]tick 1', '[1]tick 2', '[2]tick 3');
      await shot('stream');
    });
  });
}
