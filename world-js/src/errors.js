// @ts-check
// Errors as the WDK runtime recognizes them (world-adapter.md §7). Both transports report a
// failure the same way (HTTP status, or the nnn of SQLSTATE WFnnn); this module turns it into
// the app's own @workflow/errors classes, which the runtime matches by `name`.
import * as wdkErrors from '@workflow/errors';

/** A failed call, before it is given a WDK class. */
export class PgWorldFailure extends Error {
  /**
   * @param {number} status HTTP status, or the nnn of WFnnn; 503 for transport failures
   * @param {string} message
   * @param {{code?: string, meta?: Record<string, unknown>, cause?: unknown}} [extra]
   */
  constructor(status, message, extra = {}) {
    super(message, { cause: extra.cause });
    this.name = 'PgWorldFailure';
    this.status = status;
    this.code = extra.code;
    this.meta = extra.meta;
  }
}

/**
 * What the call was about, for the 404 and 410 cases whose class depends on it.
 * @typedef {object} CallContext
 * @property {'run' | 'hook' | 'queue' | 'other'} [subject]
 * @property {string} [runId]
 * @property {string} [hookId]
 * @property {string} [token]
 */

/** @type {Record<string, any>} */
const classes = /** @type {any} */ (wdkErrors);

/**
 * An instance of the named @workflow/errors class, or a plain Error carrying that name's
 * fallback (`WorkflowAPIError`) when the installed SDK line lacks the class.
 * @param {string} name
 * @param {unknown[]} args
 * @returns {Error & Record<string, any>}
 */
function build(name, ...args) {
  const Class = classes[name];
  if (typeof Class === 'function') return new Class(...args);
  const err = /** @type {Error & Record<string, any>} */ (new Error(String(args[0] ?? name)));
  err.name = 'WorkflowAPIError';
  return err;
}

/**
 * Whole seconds until `iso`, at least 1.
 * @param {unknown} iso
 */
function secondsUntil(iso) {
  const at = typeof iso === 'string' || typeof iso === 'number' ? new Date(iso).getTime() : NaN;
  if (!Number.isFinite(at)) return undefined;
  return Math.max(1, Math.ceil((at - Date.now()) / 1000));
}

/** Marks errors that `isDeploymentUnavailableError` answers true for. */
export const DEPLOYMENT_UNAVAILABLE = Symbol.for('@pgworld/world/deployment-unavailable');

/**
 * The WDK error for a failure.
 * @param {unknown} failure
 * @param {CallContext} [ctx]
 * @returns {unknown}
 */
export function toWdkError(failure, ctx = {}) {
  if (!(failure instanceof PgWorldFailure)) return failure;
  const { status, message, code, meta } = failure;
  /** @type {Error & Record<string, any>} */
  let err;
  if (status === 404 && code === 'WF_RUN_NOT_FOUND' && ctx.subject === 'run') {
    err = build('WorkflowRunNotFoundError', ctx.runId ?? '');
  } else if (status === 404 && (ctx.subject === 'hook' || code === 'WF_HOOK_NOT_FOUND')) {
    err = build('HookNotFoundError', ctx.token ?? ctx.hookId ?? '');
    if (ctx.hookId) err.hookId = ctx.hookId;
  } else if (status === 409) {
    err = build('EntityConflictError', message);
  } else if (status === 410 && ctx.subject === 'queue') {
    err = build('WorkflowWorldError', message, { status, code });
    Object.defineProperty(err, DEPLOYMENT_UNAVAILABLE, { value: true });
  } else if (status === 410) {
    err = build('RunExpiredError', message);
  } else if (status === 425) {
    const retryAfter = secondsUntil(meta?.retryAfter) ?? 1;
    err = build('TooEarlyError', message, { retryAfter });
    err.retryAfter = retryAfter;
  } else if (status === 429) {
    const retryAfter = secondsUntil(meta?.retryAfter);
    err = build('ThrottleError', message, { retryAfter });
    if (retryAfter !== undefined) err.retryAfter = retryAfter;
  } else {
    err = build('WorkflowWorldError', message, { status, code, cause: failure.cause });
  }
  err.status = status;
  err.statusCode = status;
  if (code !== undefined) err.code = code;
  if (meta !== undefined) err.meta = meta;
  return err;
}

/**
 * @param {unknown} err
 */
export function isDeploymentUnavailable(err) {
  return Boolean(err && typeof err === 'object' && /** @type {any} */ (err)[DEPLOYMENT_UNAVAILABLE]);
}
