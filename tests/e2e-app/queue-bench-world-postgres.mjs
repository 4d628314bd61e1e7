// The other side of `./pgw bench queue`'s comparison: @workflow/world-postgres's queue
// (graphile-worker) on the same PostgreSQL, delivering to the Rust harness's sink at
// WORKFLOW_LOCAL_BASE_URL. Driven over stdin, one command per line, one answer line each,
// marked "=> " (graphile-worker writes its own lines to stdout too):
//   backlog N   enqueue N workflow messages (each its own run), 32 calls at a time → "=> ok"
//   single      enqueue one → "=> <message id>" (the sink sees it as x-vqs-message-id)
//   quit
// Its worker starts once the sink answers on that port, so a backlog written before the sink
// listens is all there when delivery begins.
import { createInterface } from 'node:readline';
import { createWorld } from '@workflow/world-postgres';

const concurrency = Number(process.env.WORKFLOW_POSTGRES_WORKER_CONCURRENCY ?? 10);
// A pool as large as the worker's concurrency, as graphile-worker asks for.
const world = createWorld({
  connectionString: process.env.WORKFLOW_POSTGRES_URL,
  queueConcurrency: concurrency,
  maxPoolSize: concurrency,
});
let next = 0;

/** @param {number} n */
async function backlog(n) {
  let i = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (i < n) {
        i += 1;
        await world.queue('__wkf_workflow_bench', { runId: `wrun_wp_${next++}` });
      }
    }),
  );
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const [command, arg] = line.trim().split(/\s+/);
  try {
    if (command === 'backlog') {
      await backlog(Number(arg));
      console.log('=> ok');
    } else if (command === 'single') {
      const { messageId } = await world.queue('__wkf_workflow_bench', { runId: `wrun_wp_${next++}` });
      console.log(`=> ${messageId}`);
    } else if (command === 'quit') {
      break;
    } else {
      console.log(`=> error unknown command ${command}`);
    }
  } catch (err) {
    console.log(`=> error ${String(err?.message ?? err).replace(/\n/g, ' ')}`);
  }
}
await world.close();
process.exit(0);
