// A plain Node HTTP server for one deployment of the app (`node server.mjs v1`): it mounts the
// bundles `workflow build` produced for that deployment under /.well-known/workflow/v1/, and
// offers a few routes the tests drive (start, resume, cancel, read).
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = resolve(process.argv[2] ?? 'v1');
// The SDK of the app the deployment belongs to (its parent directory): this file also serves the
// WDK 5 app in tests/e2e-app5.
const sdk = createRequire(join(dirname(dir), 'package.json'));
const { getHookByToken, getRun, resumeHook, start } = await import(pathToFileURL(sdk.resolve('workflow/api')).href);
const { getWorld, setWorld } = await import(pathToFileURL(sdk.resolve('workflow/runtime')).href);
const wellKnown = join(dir, '.well-known', 'workflow', 'v1');
// WDK 4 writes .js bundles, WDK 5 .mjs.
const load = (name) => import(pathToFileURL(join(wellKnown, existsSync(join(wellKnown, `${name}.js`)) ? `${name}.js` : `${name}.mjs`)).href);
const [flow, step, webhook] = await Promise.all([load('flow'), load('step'), load('webhook')]);
const manifest = JSON.parse(readFileSync(join(wellKnown, 'manifest.json'), 'utf8'));

/** Node request → fetch Request. */
async function toRequest(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (typeof v === 'string') headers.set(k, v);
  }
  const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.concat(chunks);
  return new Request(`http://${req.headers.host ?? 'localhost'}${req.url}`, { method: req.method, headers, body });
}

/** fetch Response → Node response, streaming the body. */
async function send(res, response) {
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (response.body) {
    for await (const chunk of response.body) res.write(chunk);
  }
  res.end();
}

const json = (status, body) =>
  new Response(JSON.stringify(body, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)), {
    status,
    headers: { 'content-type': 'application/json' },
  });

function workflowRef(file, name) {
  const ref = manifest.workflows[`workflows/${file}.ts`]?.[name];
  if (!ref) throw new Error(`no workflow ${file}/${name} in ${dir}`);
  return ref;
}

async function route(request) {
  const url = new URL(request.url);
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const wk = url.pathname.startsWith('/.well-known/workflow/v1/') ? parts[3] : undefined;
  if (wk === 'flow') return flow.POST(request);
  if (wk === 'step') return step.POST(request);
  if (wk === 'webhook') return webhook[request.method](request);

  const [head, id, tail] = parts;
  if (request.method === 'GET' && head === 'runs' && !id) {
    // Every run of a workflow, without payloads: GET /runs?workflowName=…
    const world = await getWorld();
    const data = [];
    let cursor;
    do {
      const page = await world.runs.list({
        workflowName: url.searchParams.get('workflowName') ?? undefined,
        resolveData: 'none',
        pagination: { limit: 1000, cursor },
      });
      data.push(...page.data);
      cursor = page.hasMore ? page.cursor : undefined;
    } while (cursor);
    return json(200, { data });
  }
  if (request.method === 'POST' && head === 'start') {
    // POST /start/<file>/<workflow> with the argument array as the body.
    const run = await start(workflowRef(id, tail), await request.json());
    return json(201, { runId: run.runId });
  }
  if (head === 'runs' && id) {
    const run = getRun(id);
    if (request.method === 'GET' && !tail) {
      const world = await getWorld();
      return json(200, await world.runs.get(id, { resolveData: 'none' }));
    }
    if (request.method === 'GET' && tail === 'result') {
      // Settles when the run does: its return value, or why it did not complete.
      try {
        return json(200, { status: 'completed', value: await run.returnValue });
      } catch (err) {
        return json(200, { status: await run.status, error: String(err?.message ?? err) });
      }
    }
    if (request.method === 'GET' && tail === 'readable') {
      // The run's default output stream, one JSON value per line, as it is written.
      const values = run.getReadable();
      const lines = values.pipeThrough(
        new TransformStream({ transform: (v, c) => c.enqueue(new TextEncoder().encode(`${JSON.stringify(v)}\n`)) }),
      );
      return new Response(lines, { headers: { 'content-type': 'application/x-ndjson' } });
    }
    if (request.method === 'GET' && tail === 'events') {
      const world = await getWorld();
      return json(200, await world.events.list({ runId: id, resolveData: 'none' }));
    }
    if (request.method === 'GET' && tail === 'hooks') {
      const world = await getWorld();
      return json(200, await world.hooks.list({ runId: id }));
    }
    if (request.method === 'POST' && tail === 'cancel') {
      await run.cancel();
      return json(200, { status: await run.status });
    }
  }
  if (request.method === 'POST' && head === 'hooks' && id) {
    const hook = await getHookByToken(id);
    await resumeHook(hook.token, await request.json());
    return json(200, { runId: hook.runId });
  }
  return json(404, { error: `no route ${request.method} ${url.pathname}` });
}

const server = createServer(async (req, res) => {
  try {
    await send(res, await route(await toRequest(req)));
  } catch (err) {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: String(err?.stack ?? err) }));
  }
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', async () => {
  process.env.PORT ??= String(server.address().port);
  // Registers this pod's handlers for its deployment version with pgworld. WDK 5 injects the
  // World into its bundles at build time, so this unbundled server makes it and shares it.
  let world;
  try {
    world = await getWorld();
  } catch {
    const { createWorld } = await import(pathToFileURL(sdk.resolve(process.env.WORKFLOW_TARGET_WORLD)).href);
    world = createWorld();
    setWorld(world);
  }
  await world.start?.();
  console.log(`listening on http://127.0.0.1:${server.address().port} as ${process.env.PLT_WORLD_DEPLOYMENT_VERSION}`);
});
