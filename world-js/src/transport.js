// @ts-check
// The one small interface both transports implement.

/**
 * A stream write: one chunk, several chunks in one request, or the close marker.
 * @typedef {{kind: 'chunk', chunk: string | Uint8Array}
 *   | {kind: 'multi', items: Array<{data: string, type?: 'string'}>}
 *   | {kind: 'close'}} StreamWrite
 */

/**
 * @typedef {object} CallArgs
 * @property {string[]} [params]                 path parameters, in path order
 * @property {Record<string, unknown>} [query]   query-string parameters
 * @property {unknown} [body]                    the JSON body
 */

/**
 * @typedef {object} Transport
 * @property {(fn: string, args?: CallArgs) => Promise<any>} call
 *   One `workflow.<fn>` call (one façade route); resolves to the response body with byte
 *   envelopes restored, rejects with a PgWorldFailure.
 * @property {(message: Uint8Array | object) => Promise<{messageId: string}>} enqueue
 *   A queue envelope: CBOR bytes, or a JSON object.
 * @property {(runId: string, name: string, write: StreamWrite) => Promise<void>} streamWrite
 * @property {(name: string, startIndex?: number) => Promise<ReadableStream<Uint8Array>>} streamRead
 *   A live read: the stream's chunks from `startIndex`, then new ones as they are written,
 *   ending when the stream is closed.
 * @property {() => Promise<void>} close
 */

export {};
