// Every feature the end-to-end test drives, written as any WDK app would write it.
import { createHook, createWebhook, FatalError, getStepMetadata, getWritable, sleep } from 'workflow';

async function add(a: number, b: number) {
  'use step';
  return a + b;
}

async function double(x: number) {
  'use step';
  return x * 2;
}

/** Sequential, then two steps in parallel. */
export async function arithmetic(n: number) {
  'use workflow';
  const a = await add(n, 1);
  const [b, c] = await Promise.all([double(a), add(a, 10)]);
  return { a, b, c };
}

async function clock() {
  'use step';
  return Date.now();
}

/** A durable sleep: the dispatcher delivers the continuation when it is due. */
export async function napper(seconds: number) {
  'use workflow';
  const before = await clock();
  await sleep(`${seconds}s`);
  const after = await clock();
  return after - before;
}

async function flaky() {
  'use step';
  const { attempt } = getStepMetadata();
  if (attempt < 3) throw new Error(`flaky step, attempt ${attempt}`);
  return attempt;
}

/** A step that fails twice, then succeeds on its third attempt. */
export async function retrier() {
  'use workflow';
  return await flaky();
}

async function doomed() {
  'use step';
  throw new FatalError('this step cannot succeed');
}

/** A fatal error fails the run without retries. */
export async function fatality() {
  'use workflow';
  await doomed();
  return 'unreachable';
}

/** Waits for the test to resume a hook by its token. */
export async function approval(token: string) {
  'use workflow';
  const hook = createHook<{ approved: boolean; by: string }>({ token });
  const decision = await hook;
  return decision;
}

async function readBody(request: Request) {
  'use step';
  return { method: request.method, body: await request.text() };
}

/** Waits for an HTTP request to its webhook URL. */
export async function inbox() {
  'use workflow';
  const webhook = createWebhook();
  const request = await webhook;
  return await readBody(request);
}

async function emit(count: number, gapMs: number) {
  'use step';
  const writer = getWritable<string>().getWriter();
  for (let i = 1; i <= count; i++) {
    await writer.write(`tick ${i}`);
    await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  writer.releaseLock();
}

async function finish() {
  'use step';
  await getWritable<string>().close();
}

/** Writes to its output stream while the test reads it live. */
export async function ticker(count: number, gapMs: number) {
  'use workflow';
  await emit(count, gapMs);
  await finish();
  return count;
}

async function slowly(label: string, ms: number) {
  'use step';
  await new Promise((resolve) => setTimeout(resolve, ms));
  return label;
}

/** Long enough to be killed in the middle of: two slow steps around a sleep. */
export async function survivor(stepMs: number) {
  'use workflow';
  const first = await slowly('first', stepMs);
  await sleep('2s');
  const second = await slowly('second', stepMs);
  return [first, second];
}
