// @ts-check
// Handler registration (world-adapter.md §6): tells pgworld where this pod serves the
// deployment version it runs, so the dispatcher routes that version's messages here.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { toWdkError } from './errors.js';
import { withRetry } from './retry.js';

const REGISTER_TRIES = 5;

/**
 * The port of a TCP server this process listens on, when there is exactly one candidate.
 * @returns {number | undefined}
 */
function listeningPort() {
  const handles = /** @type {any} */ (process)._getActiveHandles?.() ?? [];
  for (const h of handles) {
    if (h && typeof h.address === 'function' && typeof h.listen === 'function' && h.listening) {
      const addr = h.address();
      if (addr && typeof addr === 'object' && addr.port) return addr.port;
    }
  }
  return undefined;
}

/**
 * Where the dispatcher reaches this pod: the explicit option, else the environment, else the
 * port this process listens on. Resolved at start(), not at construction: frameworks (and the
 * WDK test server) set PORT only once they listen.
 * @param {import('./config.js').PgWorldConfig} config
 */
export function handlerBaseUrl(config, env = process.env) {
  const explicit = config.handlerBaseUrl || env.PGWORLD_HANDLER_BASE_URL || env.WORKFLOW_LOCAL_BASE_URL;
  const port = env.PORT || listeningPort();
  const base = explicit || (port ? `http://localhost:${port}` : undefined);
  return base?.replace(/\/+$/, '');
}

/**
 * The app's own `@workflow/core` version (resolved from its working directory first, where the
 * app's dependencies are), or undefined.
 * @returns {string | undefined}
 */
export function workflowCoreVersion() {
  for (const base of [join(process.cwd(), 'package.json'), import.meta.url]) {
    try {
      let dir = dirname(createRequire(base).resolve('@workflow/core'));
      for (let i = 0; i < 5; i++, dir = dirname(dir)) {
        const file = join(dir, 'package.json');
        if (!existsSync(file)) continue;
        const pkg = JSON.parse(readFileSync(file, 'utf8'));
        if (pkg.name === '@workflow/core' && typeof pkg.version === 'string') return pkg.version;
      }
    } catch {
      // not resolvable from here
    }
  }
  return undefined;
}

/**
 * @param {import('./transport.js').Transport} transport
 * @param {import('./config.js').PgWorldConfig} config
 * @param {number} specVersion
 * @param {() => string} deploymentVersion
 * @returns {Promise<{podId: string} | undefined>}
 */
export async function registerHandlers(transport, config, specVersion, deploymentVersion) {
  if (config.managed && !config.registerHandlers) return undefined;
  const base = handlerBaseUrl(config);
  if (!base) {
    console.warn('[@pgworld/world] no handler base URL (set PGWORLD_HANDLER_BASE_URL or PORT); handlers not registered');
    return undefined;
  }
  const stepPath = config.stepPath ?? (specVersion >= 4 ? 'flow' : 'step');
  const body = {
    podId: config.podId,
    deploymentVersion: deploymentVersion(),
    // What this pod runs, so workflows started from SQL are written the way it reads them.
    sdk: { specVersion, workflowCoreVersion: workflowCoreVersion() },
    // Unset: pgworld's default. pgworld never holds more deliveries open to this pod at once.
    ...(config.maxConcurrency === undefined ? {} : { maxConcurrency: config.maxConcurrency }),
    endpoints: {
      workflow: `${base}/.well-known/workflow/v1/flow`,
      step: `${base}/.well-known/workflow/v1/${stepPath.replace(/^\/+/, '')}`,
      webhook: `${base}/.well-known/workflow/v1/webhook`,
    },
  };
  try {
    await withRetry(() => transport.call('handler_register', { body }), { tries: REGISTER_TRIES, firstMs: 1_000, maxMs: 8_000 });
  } catch (err) {
    throw toWdkError(err);
  }
  return { podId: config.podId };
}

/**
 * Best effort, bounded: a pod shutting down must not hang on it.
 * @param {import('./transport.js').Transport} transport
 * @param {string} podId
 */
export async function deregisterHandlers(transport, podId) {
  await Promise.race([transport.call('handler_deregister', { params: [podId] }).catch(() => undefined), sleep(2_000)]);
}
