// @ts-check
// The World object (world-adapter.md §3): every member is one transport call, with the
// response restored (bytes, dates) and failures turned into WDK errors.
import * as worldSpec from '@workflow/world';
import { PgWorldFailure, isDeploymentUnavailable, toWdkError } from './errors.js';
import { createQueue, createQueueHandler } from './queue.js';
import { registerHandlers, deregisterHandlers } from './handlers.js';
import { base64, reviveEntity, reviveEventResult, revivePage } from './wire.js';

/** The highest spec version pgworld serves (workflow.max_spec_version). */
const SERVER_MAX_SPEC = 7;
const FINISHED = new Set(['completed', 'failed', 'cancelled', 'expired']);

/**
 * The service answers `run_started` on a finished run with the run and no event (so that any
 * client acknowledges a late message); the WDK's World contract wants RunExpiredError there.
 * @param {any} data
 * @param {any} result
 */
function expiredIfFinished(data, result) {
  const run = result?.run;
  if (data?.eventType === 'run_started' && result?.event == null && run && FINISHED.has(run.status)) {
    const failure = new PgWorldFailure(410, `Run ${run.runId} is in terminal state: ${run.status}`, {
      code: 'WF_RUN_EXPIRED',
    });
    throw toWdkError(failure, { subject: 'run', runId: run.runId });
  }
  return reviveEventResult(result);
}

/** Page size when the WDK asks for "all remaining events". */
const ALL_EVENTS_PAGE = 1000;

/** @returns {number} */
function sdkSpecVersion() {
  const spec = /** @type {Record<string, any>} */ (worldSpec);
  const minted = typeof spec.mintedSpecVersion === 'function' ? spec.mintedSpecVersion() : undefined;
  const current = Number(minted ?? spec.SPEC_VERSION_CURRENT ?? 3);
  return Math.min(current, SERVER_MAX_SPEC);
}

/**
 * @param {{limit?: number, cursor?: string | null, sortOrder?: string} | undefined} p
 */
function pageQuery(p) {
  return { limit: p?.limit, cursor: p?.cursor ?? undefined, sortOrder: p?.sortOrder };
}

/**
 * @param {import('./transport.js').Transport} transport
 * @param {import('./config.js').PgWorldConfig} config
 */
export function buildWorld(transport, config) {
  const specVersion = config.specVersionOverride ?? sdkSpecVersion();

  const deploymentVersion = () => {
    if (config.deploymentVersion) return config.deploymentVersion;
    if (config.managed) throw new Error('World deployment version not resolved yet; retry');
    return 'local';
  };

  /**
   * A transport operation with its failure turned into the WDK error for `ctx`.
   * @template T
   * @param {() => Promise<T>} f
   * @param {import('./errors.js').CallContext} [ctx]
   * @returns {Promise<T>}
   */
  const guarded = async (f, ctx) => {
    try {
      return await f();
    } catch (err) {
      throw toWdkError(err, ctx);
    }
  };

  /**
   * One `workflow.<fn>` call (one façade route).
   * @param {string} fn
   * @param {import('./transport.js').CallArgs} args
   * @param {import('./errors.js').CallContext} [ctx]
   */
  const call = (fn, args, ctx) => guarded(() => transport.call(fn, args), ctx);

  const runs = {
    /**
     * @param {string} id
     * @param {{resolveData?: string}} [params]
     */
    get: async (id, params) =>
      reviveEntity(await call('run_get', { params: [id], query: { resolveData: params?.resolveData } }, { subject: 'run', runId: id })),
    /** @param {any} [params] */
    list: async (params = {}) =>
      revivePage(
        await call('runs_list', {
          query: {
            workflowName: params.workflowName,
            status: params.status,
            deploymentId: params.deploymentId,
            resolveData: params.resolveData,
            ...pageQuery(params.pagination),
          },
        }),
      ),
    /**
     * @param {string} runId
     * @param {Array<{key: string, value: string | null}>} changes
     * @param {{allowReservedAttributes?: boolean}} [opts]
     */
    experimentalSetAttributes: async (runId, changes, opts) => {
      /** @type {Record<string, unknown>} */
      const eventData = { changes, writer: { type: 'workflow' } };
      if (opts?.allowReservedAttributes) eventData.allowReservedAttributes = true;
      const res = await call(
        'event_create',
        { params: [runId], query: { resolveData: 'none' }, body: { eventType: 'attr_set', eventData, specVersion } },
        { subject: 'run', runId },
      );
      return { attributes: res?.run?.attributes ?? {} };
    },
  };

  const steps = {
    /**
     * @param {string} runId
     * @param {string} stepId
     * @param {{resolveData?: string}} [params]
     */
    get: async (runId, stepId, params) =>
      reviveEntity(
        await call('step_get', { params: [runId, stepId], query: { resolveData: params?.resolveData } }, { subject: 'run', runId }),
      ),
    /** @param {any} params */
    list: async (params) =>
      revivePage(
        await call(
          'steps_list',
          { params: [params.runId], query: { resolveData: params.resolveData, ...pageQuery(params.pagination) } },
          { subject: 'run', runId: params.runId },
        ),
      ),
  };

  const events = {
    /**
     * @param {string | null} runId
     * @param {any} data
     * @param {any} [params]
     */
    create: async (runId, data, params = {}) =>
      expiredIfFinished(
        data,
        await call(
          'event_create',
          {
            params: [runId ?? 'null'],
            query: {
              resolveData: params.resolveData,
              eventCount: params.eventCount,
              resumeId: params.resumeId,
              resumePayloadDigest: params.resumePayloadDigest,
            },
            body: data,
          },
          { subject: 'run', runId: runId ?? undefined },
        ),
      ),
    /**
     * @param {string} runId
     * @param {string} eventId
     * @param {{resolveData?: string}} [params]
     */
    get: async (runId, eventId, params) =>
      reviveEntity(
        await call('event_get', { params: [runId, eventId], query: { resolveData: params?.resolveData } }, { subject: 'run', runId }),
      ),
    /** @param {any} params */
    list: async (params) => {
      const ctx = /** @type {const} */ ({ subject: 'run', runId: params.runId });
      const pagination = params.pagination ?? {};
      if (pagination.limit !== undefined) {
        return revivePage(
          await call('events_list', { params: [params.runId], query: { resolveData: params.resolveData, ...pageQuery(pagination) } }, ctx),
        );
      }
      // No limit means "every remaining event" to the WDK.
      /** @type {any[]} */
      const all = [];
      let cursor = pagination.cursor ?? undefined;
      for (;;) {
        const page = await call(
          'events_list',
          {
            params: [params.runId],
            query: { resolveData: params.resolveData, ...pageQuery({ ...pagination, limit: ALL_EVENTS_PAGE, cursor }) },
          },
          ctx,
        );
        all.push(...page.data);
        cursor = page.cursor ?? cursor;
        if (!page.hasMore) break;
      }
      return revivePage({ data: all, cursor: cursor ?? null, hasMore: false });
    },
    /** @param {any} params */
    listByCorrelationId: async (params) =>
      revivePage(
        await call('events_by_correlation', {
          query: {
            correlationId: params.correlationId,
            runId: params.runId,
            resolveData: params.resolveData,
            ...pageQuery(params.pagination),
          },
        }),
      ),
  };

  const hooks = {
    /**
     * @param {string} hookId
     * @param {{resolveData?: string}} [params]
     */
    get: async (hookId, params) =>
      reviveEntity(await call('hook_get', { params: [hookId], query: { resolveData: params?.resolveData } }, { subject: 'hook', hookId })),
    /**
     * @param {string} token
     * @param {{resolveData?: string}} [params]
     */
    getByToken: async (token, params) =>
      reviveEntity(
        await call('hook_get_by_token', { params: [token], query: { resolveData: params?.resolveData } }, { subject: 'hook', token }),
      ),
    /** @param {any} params */
    list: async (params = {}) =>
      revivePage(
        await call('hooks_list', {
          query: { runId: params.runId, resolveData: params.resolveData, ...pageQuery(params.pagination) },
        }),
      ),
  };

  /**
   * @param {string} runId
   * @param {string} name
   * @param {string | Uint8Array} chunk
   */
  const write = (runId, name, chunk) => guarded(() => transport.streamWrite(runId, name, { kind: 'chunk', chunk }));
  /**
   * @param {string} runId
   * @param {string} name
   * @param {Array<string | Uint8Array>} chunks
   */
  const writeMulti = (runId, name, chunks) =>
    guarded(() =>
      transport.streamWrite(runId, name, {
        kind: 'multi',
        items: chunks.map((c) => (typeof c === 'string' ? { data: c, type: /** @type {const} */ ('string') } : { data: base64(c) })),
      }),
    );
  /**
   * @param {string} runId
   * @param {string} name
   */
  const closeStream = (runId, name) => guarded(() => transport.streamWrite(runId, name, { kind: 'close' }));
  /**
   * @param {string} name
   * @param {number} [startIndex]
   */
  const read = (name, startIndex) => guarded(() => transport.streamRead(name, startIndex));
  /** @param {string} runId */
  const listStreams = async (runId) => /** @type {string[]} */ (await call('streams_list', { params: [runId] }));
  /**
   * @param {string} runId
   * @param {string} name
   * @param {{limit?: number, cursor?: string}} [options]
   */
  const getChunks = async (runId, name, options) => {
    const page = await call('stream_chunks', { params: [runId, name], query: { limit: options?.limit, cursor: options?.cursor } });
    page.data = page.data.map((/** @type {{index: number, data: string}} */ c) => ({
      index: c.index,
      data: new Uint8Array(Buffer.from(c.data, 'base64')),
    }));
    return page;
  };
  /**
   * @param {string} runId
   * @param {string} name
   */
  const getInfo = (runId, name) => call('stream_info', { params: [runId, name] });

  const queue = createQueue(transport, config, deploymentVersion);
  /** @type {{podId: string} | undefined} */
  let registered;

  const world = {
    specVersion,
    capabilities: {
      hookResumeDedup: true,
      ...(config.deploymentAffinity ? { deploymentAffinity: true } : {}),
    },
    getDeploymentId: async () => deploymentVersion(),
    queue,
    createQueueHandler,
    /** @param {unknown} err */
    isDeploymentUnavailableError: (err) => isDeploymentUnavailable(err),
    runs,
    steps,
    events,
    hooks,
    streams: {
      write,
      writeMulti,
      close: closeStream,
      /**
       * @param {string} _runId
       * @param {string} name
       * @param {number} [startIndex]
       */
      get: (_runId, name, startIndex) => read(name, startIndex),
      list: listStreams,
      getChunks,
      getInfo,
    },
    // The WDK 4.x stream surface: same routes, stream name first.
    /** @type {(name: string, runId: string, chunk: string | Uint8Array) => Promise<void>} */
    writeToStream: (name, runId, chunk) => write(runId, name, chunk),
    /** @type {(name: string, runId: string, chunks: Array<string | Uint8Array>) => Promise<void>} */
    writeToStreamMulti: (name, runId, chunks) => writeMulti(runId, name, chunks),
    /** @type {(name: string, runId: string) => Promise<void>} */
    closeStream: (name, runId) => closeStream(runId, name),
    readFromStream: read,
    listStreamsByRunId: listStreams,
    /** @type {(name: string, runId: string, options?: {limit?: number, cursor?: string}) => Promise<any>} */
    getStreamChunks: (name, runId, options) => getChunks(runId, name, options),
    /** @type {(name: string, runId: string) => Promise<any>} */
    getStreamInfo: (name, runId) => getInfo(runId, name),

    /**
     * @param {string | {runId: string}} runOrId
     * @returns {Promise<Uint8Array | undefined>}
     */
    getEncryptionKeyForRun: async (runOrId) => {
      const runId = typeof runOrId === 'string' ? runOrId : runOrId.runId;
      const res = await call('encryption_key', { query: { runId } });
      return typeof res?.key === 'string' ? new Uint8Array(Buffer.from(res.key, 'base64')) : undefined;
    },

    start: async () => {
      registered = await registerHandlers(transport, config, specVersion, deploymentVersion);
    },
    /** @param {boolean} [closeTransport] false while other Worlds still use the transport */
    close: async (closeTransport = true) => {
      if (registered) await deregisterHandlers(transport, registered.podId);
      registered = undefined;
      if (closeTransport) await transport.close();
    },
  };
  return world;
}
