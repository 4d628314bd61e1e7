// @ts-check
// HTTP transport: the pgworld façade (or any server speaking its wire protocol), over undici.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { PgWorldFailure } from './errors.js';
import { OPS, fillPath, queryStrings } from './ops.js';
import { fromWire, toWire } from './wire.js';

/** @typedef {import('./transport.js').Transport} Transport */
/** @typedef {import('./transport.js').StreamWrite} StreamWrite */

/** @implements {Transport} */
export class HttpTransport {
  /**
   * @param {import('./config.js').PgWorldConfig} config
   */
  constructor(config) {
    this.base = `${config.serviceUrl}/api/v1/apps/${encodeURIComponent(config.appId)}`;
    this.tokenPath = config.tokenPath;
    this.apiToken = config.apiToken;
    this.apiTokenFile = config.apiTokenFile;
    // headersTimeout 0: a live stream read may wait long for its first chunk.
    this.agent = new Agent({ connections: 128, keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });
  }

  /** @returns {Record<string, string>} */
  headers() {
    /** @type {Record<string, string>} */
    const h = { 'x-pgworld-payload': 'envelope', accept: 'application/json' };
    if (this.apiToken) {
      h.authorization = `Bearer ${this.apiToken}`;
      return h;
    }
    // Re-read on every request: mounted secrets and projected service-account tokens rotate.
    const file = this.apiTokenFile ?? this.tokenPath;
    try {
      const token = readFileSync(file, 'utf8').trim();
      if (token) h.authorization = `Bearer ${token}`;
    } catch (e) {
      // No service-account token: a single-tenant façade. A configured token file must exist.
      if (this.apiTokenFile) throw new Error(`PGWORLD_TOKEN_FILE ${file} cannot be read: ${/** @type {Error} */ (e).message}`);
    }
    return h;
  }

  /**
   * @param {'GET' | 'POST' | 'PUT' | 'DELETE'} method
   * @param {string} path
   * @param {{query?: Record<string, string>, headers?: Record<string, string>, body?: string | Uint8Array}} [req]
   */
  async send(method, path, req = {}) {
    const qs = new URLSearchParams(req.query ?? {}).toString();
    const url = `${this.base}/${path}${qs ? `?${qs}` : ''}`;
    let res;
    try {
      res = await request(url, {
        method,
        headers: { ...this.headers(), ...req.headers },
        body: req.body,
        dispatcher: this.agent,
      });
    } catch (cause) {
      throw new PgWorldFailure(503, `pgworld service unreachable: ${/** @type {Error} */ (cause).message}`, { cause });
    }
    if (res.statusCode >= 400) {
      const text = await res.body.text();
      /** @type {any} */
      let body = {};
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: a proxy's error page
      }
      throw new PgWorldFailure(res.statusCode, body.message ?? (text || `HTTP ${res.statusCode}`), {
        code: body.code,
        meta: body.meta,
      });
    }
    return res;
  }

  /** @type {Transport['call']} */
  async call(fn, args = {}) {
    const route = OPS[fn];
    if (!route) throw new Error(`no route for ${fn}`);
    const hasBody = route.body;
    const res = await this.send(route.method, fillPath(route, args.params ?? []), {
      query: route.query ? queryStrings(args.query) : undefined,
      headers: hasBody ? { 'content-type': 'application/json' } : undefined,
      body: hasBody ? JSON.stringify(toWire(args.body ?? {})) : undefined,
    });
    const text = await res.body.text();
    return text ? fromWire(JSON.parse(text)) : undefined;
  }

  /** @type {Transport['enqueue']} */
  async enqueue(message) {
    const res =
      message instanceof Uint8Array
        ? await this.send('POST', 'queue', { headers: { 'content-type': 'application/cbor' }, body: message })
        : await this.send('POST', 'queue', {
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(toWire(message)),
          });
    return /** @type {any} */ (await res.body.json());
  }

  /** @type {Transport['streamWrite']} */
  async streamWrite(runId, name, write) {
    const path = fillPath(OPS.stream_put, [runId, name]);
    /** @type {Record<string, string>} */
    const headers = {};
    /** @type {string | Uint8Array} */
    let body;
    if (write.kind === 'close') {
      headers['x-stream-done'] = 'true';
      headers['content-type'] = 'application/json';
      body = '{}';
    } else if (write.kind === 'multi') {
      headers['x-stream-multi'] = 'true';
      headers['content-type'] = 'application/json';
      body = JSON.stringify(write.items);
    } else if (typeof write.chunk === 'string') {
      headers['content-type'] = 'text/plain';
      body = write.chunk;
    } else {
      headers['content-type'] = 'application/octet-stream';
      body = write.chunk;
    }
    const res = await this.send('PUT', path, { headers, body });
    await res.body.dump();
  }

  /** @type {Transport['streamRead']} */
  async streamRead(name, startIndex) {
    /** @type {Record<string, string>} */
    const query = { stream: 'true' };
    if (startIndex !== undefined) query.startIndex = String(startIndex);
    const res = await this.send('GET', `streams/${encodeURIComponent(name)}`, {
      query,
      headers: { accept: 'application/octet-stream' },
    });
    const body = res.body;
    const chunks = body[Symbol.asyncIterator]();
    return new ReadableStream({
      async pull(controller) {
        try {
          const { value, done } = await chunks.next();
          // A fresh copy: consumers may transfer (detach) what they receive.
          if (done) controller.close();
          else controller.enqueue(new Uint8Array(value));
        } catch (err) {
          controller.error(err);
        }
      },
      cancel() {
        body.destroy();
      },
    });
  }

  async close() {
    // Destroy, not close: a live stream read may still be open, and the World is done.
    await this.agent.destroy();
  }
}
