// @ts-check
// Direct transport: the workflow.* functions over a pg pool. Each call is one statement in its
// own transaction that first sets the app (tenancy.md §5.4), so it costs one round trip.
import pg from 'pg';
import { PgWorldFailure } from './errors.js';
import { OPS, queryStrings } from './ops.js';
import { fromWire, toWire } from './wire.js';
import { withRetry } from './retry.js';

/** @typedef {import('./transport.js').Transport} Transport */

/** SQLSTATEs worth one more try: serialization failure, deadlock. */
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_TRIES = 5;
/** A live read re-checks at least this often, in case a notification was missed. */
const SAFETY_POLL_MS = 5_000;
const READ_BATCH = 500;

// The settings row comes first and the function refers to it, so the app is set before the
// function runs whatever order the planner picks.
const SETTINGS = "(SELECT pg_catalog.set_config('workflow.app_id', $1::text, true) AS a) settings";

/**
 * @param {unknown} err
 * @returns {unknown}
 */
function failureOf(err) {
  const e = /** @type {any} */ (err);
  const sqlstate = typeof e?.code === 'string' ? e.code : '';
  if (/^WF\d{3}$/.test(sqlstate)) {
    /** @type {Record<string, unknown> | undefined} */
    let meta;
    if (e.detail) {
      try {
        meta = JSON.parse(e.detail);
      } catch {
        meta = undefined;
      }
    }
    return new PgWorldFailure(Number(sqlstate.slice(2)), e.message, { code: e.hint, meta });
  }
  if (sqlstate === '' || sqlstate.startsWith('08') || sqlstate.startsWith('57P')) {
    return new PgWorldFailure(503, `database unavailable: ${e?.message ?? e}`, { cause: err });
  }
  return new PgWorldFailure(500, `database error ${sqlstate}: ${e.message}`, { cause: err });
}

/** @implements {Transport} */
export class SqlTransport {
  /**
   * @param {import('./config.js').PgWorldConfig} config
   */
  constructor(config) {
    this.appId = config.appId;
    this.ownsPool = !config.pool;
    this.connectionString = config.databaseUrl;
    this.pool =
      config.pool ??
      new pg.Pool({ connectionString: config.databaseUrl, max: config.poolSize, application_name: 'pgworld-world' });
    // An idle client's error (the server restarted) must not crash the app.
    this.pool.on('error', () => {});
    /** @type {pg.Client | undefined} */
    this.listener = undefined;
    /** @type {Promise<pg.Client> | undefined} */
    this.listening = undefined;
    /** @type {Map<string, Set<() => void>>} */
    this.wakers = new Map();
    this.closed = false;
  }

  /**
   * Runs `text` with `values` after the app parameter $1, retrying transient conflicts.
   * @param {string} name   prepared-statement name
   * @param {string} text
   * @param {unknown[]} values
   */
  async query(name, text, values) {
    try {
      return await withRetry(() => this.pool.query({ name, text, values: [this.appId, ...values] }), {
        tries: MAX_TRIES,
        firstMs: 20,
        maxMs: 80,
        retryable: (err) => RETRYABLE.has(/** @type {any} */ (err)?.code),
      });
    } catch (err) {
      throw failureOf(err);
    }
  }

  /**
   * `workflow.<fn>(args…)` in one statement that first sets the app; resolves to its result.
   * @param {string} fn
   * @param {Array<[unknown, 'text' | 'jsonb' | 'bytea']>} args  each value with its SQL type
   */
  async invoke(fn, args) {
    const casts = args.map(([, type], i) => `$${i + 2}::${type}`).join(', ');
    const text = `SELECT CASE WHEN settings.a IS NOT NULL THEN workflow.${fn}(${casts}) END AS r FROM ${SETTINGS}`;
    const res = await this.query(`pgworld_${fn}`, text, args.map(([value]) => value));
    return res.rows[0]?.r;
  }

  /** @type {Transport['call']} */
  async call(fn, args = {}) {
    const route = OPS[fn];
    if (!route) throw new Error(`no function ${fn}`);
    /** @type {Array<[unknown, 'text' | 'jsonb']>} */
    const sqlArgs = (args.params ?? []).map((p) => [p, 'text']);
    if (route.query) sqlArgs.push([JSON.stringify({ ...queryStrings(args.query), $payload: 'envelope' }), 'jsonb']);
    if (route.body) sqlArgs.push([JSON.stringify(toWire(args.body ?? {})), 'jsonb']);
    return fromWire(await this.invoke(fn, sqlArgs));
  }

  /** @type {Transport['enqueue']} */
  async enqueue(message) {
    const query = JSON.stringify({ $payload: 'envelope' });
    return message instanceof Uint8Array
      ? this.invoke('queue_enqueue_cbor', [[query, 'jsonb'], [Buffer.from(message), 'bytea']])
      : this.invoke('queue_enqueue', [[query, 'jsonb'], [JSON.stringify(toWire(message)), 'jsonb']]);
  }

  /** @type {Transport['streamWrite']} */
  async streamWrite(runId, name, write) {
    if (write.kind === 'chunk') {
      const bytes = typeof write.chunk === 'string' ? Buffer.from(write.chunk, 'utf8') : Buffer.from(write.chunk);
      await this.invoke('stream_put_bytes', [[runId, 'text'], [name, 'text'], ['{}', 'jsonb'], [bytes, 'bytea']]);
      return;
    }
    const flags = write.kind === 'close' ? { $done: 'true' } : { $multi: 'true' };
    const body = write.kind === 'multi' ? write.items : {};
    await this.invoke('stream_put', [
      [runId, 'text'],
      [name, 'text'],
      [JSON.stringify(flags), 'jsonb'],
      [JSON.stringify(body), 'jsonb'],
    ]);
  }

  /**
   * @param {string} name
   * @returns {Promise<{app: number, count: number, closed: boolean, channel?: string}>}
   */
  streamState(name) {
    return this.invoke('stream_state', [[name, 'text']]);
  }

  /**
   * @param {string} name
   * @param {number} from
   * @returns {Promise<Array<{idx: string, data: Buffer}>>}
   */
  async chunksFrom(name, from) {
    const text = `SELECT r.idx, r.data FROM ${SETTINGS}, LATERAL workflow.stream_read(CASE WHEN settings.a IS NOT NULL THEN $2::text END, $3::int8, $4::int4) AS r`;
    const res = await this.query('pgworld_stream_read', text, [name, from, READ_BATCH]);
    return res.rows;
  }

  /**
   * The LISTEN connection, opened on first use and reopened after a failure.
   * @returns {Promise<pg.Client>}
   */
  listen() {
    if (!this.listening) {
      const client = new pg.Client({ connectionString: this.connectionString, application_name: 'pgworld-world-listen' });
      const drop = () => {
        if (this.listener === client) this.listener = undefined;
        this.listening = undefined;
        // Wake every reader: a notification may have been lost while reconnecting.
        for (const set of this.wakers.values()) for (const wake of set) wake();
      };
      client.on('error', drop);
      client.on('end', drop);
      client.on('notification', (msg) => {
        for (const wake of this.wakers.get(msg.payload ?? '') ?? []) wake();
      });
      this.listening = client
        .connect()
        .then(() => client.query('LISTEN pgworld_stream'))
        .then(() => {
          this.listener = client;
          return client;
        });
      this.listening.catch(drop);
    }
    return this.listening;
  }

  /** @type {Transport['streamRead']} */
  async streamRead(name, startIndex = 0) {
    const first = await this.streamState(name);
    // What this stream's pings carry: an opaque channel (extension 0.3.0), `<app>:<name>` before.
    const key = first.channel ?? `${first.app}:${name}`;
    let next = startIndex < 0 ? Math.max(0, first.count + startIndex) : startIndex;
    /** @type {(() => void) | undefined} */
    let wake;
    let pinged = false;
    const waker = () => {
      pinged = true;
      wake?.();
    };
    const subscribe = () => {
      let set = this.wakers.get(key);
      if (!set) this.wakers.set(key, (set = new Set()));
      set.add(waker);
    };
    const unsubscribe = () => {
      const set = this.wakers.get(key);
      set?.delete(waker);
      if (set && set.size === 0) this.wakers.delete(key);
    };
    // Subscribe before the first read, so no write between the two goes unnoticed. A direct
    // transport without a URL (an app-supplied pool) falls back to polling.
    subscribe();
    if (this.connectionString) await this.listen().catch(() => undefined);
    let cancelled = false;
    return new ReadableStream({
      pull: async (controller) => {
        try {
          for (;;) {
            if (cancelled) return;
            if (this.closed) throw new Error('World closed');
            if (this.connectionString && !this.listening) this.listen().catch(() => undefined);
            pinged = false;
            const state = await this.streamState(name);
            if (next < state.count) {
              const rows = await this.chunksFrom(name, next);
              for (const row of rows) {
                next = Number(row.idx) + 1;
                controller.enqueue(new Uint8Array(row.data));
              }
              if (rows.length > 0) return;
            }
            if (state.closed && next >= state.count) {
              unsubscribe();
              controller.close();
              return;
            }
            if (!pinged) {
              await new Promise((resolve) => {
                const timer = setTimeout(resolve, SAFETY_POLL_MS);
                wake = () => {
                  clearTimeout(timer);
                  resolve(undefined);
                };
              });
              wake = undefined;
            }
          }
        } catch (err) {
          unsubscribe();
          controller.error(err);
        }
      },
      cancel: () => {
        cancelled = true;
        unsubscribe();
        wake?.();
      },
    });
  }

  async close() {
    this.closed = true;
    for (const set of this.wakers.values()) for (const wake of set) wake();
    const listener = this.listener;
    this.listener = undefined;
    this.listening = undefined;
    await listener?.end().catch(() => undefined);
    if (this.ownsPool) await this.pool.end();
  }
}
