/**
 * `serverless offline` support.
 *
 * 1. serverless-offline hands a handler only the `AWS_*` variables of its own
 *    process (plus what serverless.yml sets). The local stack (`middle-management
 *    dev`) passes the local issuer, endpoints and tables as environment
 *    variables, so under `offline` (and only there) the plugin copies them onto
 *    the manage function's environment. `serverless package`/`deploy` never read
 *    `MANAGE_*` from the environment.
 *
 * 2. serverless-offline 14.8.2 answers a failed direct invocation with
 *    `errorType: "Error"` whatever was thrown, while AWS Lambda reports the
 *    error's `name` (what Step Functions' `ErrorEquals` matches: `CommandNotAllowed`,
 *    `CommandTimedOut`…). Without asking the user to patch `node_modules`, the
 *    plugin registers a module load hook (`module.register`, Node ≥ 20.6) that
 *    rewrites that one expression of `InvocationsController.js` as it is loaded.
 *    It checks the installed file first and only warns when it is not as expected.
 *    In offline's default runner (worker threads) the structured clone turns
 *    every custom error into a plain `Error`; its stack still begins with the
 *    name, so the rewritten expression falls back to that.
 *
 * 3. serverless-esbuild writes its work folder (`.esbuild/`) into the service's
 *    folder. Under `middle-management dev` (which sets
 *    `MIDDLE_MANAGEMENT_DEV_STATE_DIR`), the plugin points it into the local
 *    stack's state folder instead (`.middle-management/esbuild/`), unless the
 *    service chose a work folder of its own.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as nodeModule from 'node:module';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/** The variables copied from `process.env` onto the manage function under `offline`. */
export function isOverlaidVariable(name: string): boolean {
  return (
    name.startsWith('MANAGE_') ||
    name.startsWith('AWS_ENDPOINT_URL') ||
    ['AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_LAMBDA_FUNCTION_NAME'].includes(name)
  );
}

/** The manage function's environment with the local stack's variables laid over it. */
export function overlayEnvironment(
  environment: Record<string, unknown> | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, unknown> {
  const result: Record<string, unknown> = { ...environment };
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && isOverlaidVariable(name)) result[name] = value;
  }
  return result;
}

export const CONTROLLER_PATH = ['src', 'lambda', 'routes', 'invocations', 'InvocationsController.js'] as const;
/** What 14.8.2 (and the 14.x line before it) says for every failed direct invocation. */
export const ORIGINAL = 'errorType: "Error",';
/**
 * The error's name; when it reads "Error", the name at the head of its stack: an
 * error that crossed from a worker thread (offline's default runner) arrives as a
 * plain `Error`, but its stack still starts with `CommandNotAllowed: …`.
 */
export const REPLACEMENT =
  'errorType: ((e) => (e && typeof e.name === "string" && e.name !== "Error" && e.name) || ' +
  '(e && typeof e.stack === "string" && (/^([A-Za-z_$][\\w$]*)(?=:|\\n|$)/.exec(e.stack) || [])[1]) || "Error")(err),';
/** Already reports the name (this repository's own patch-package patch, or a fixed release). */
const ALREADY_FIXED = /errorType:\s*err(\?\.|\s*&&\s*)/;

/**
 * The load hook, as a `data:` module so that it works from any build layout.
 * It runs in Node's loader thread and touches only the one file, when its text
 * holds exactly one occurrence of {@link ORIGINAL}.
 */
function hookSource(suffix: string): string {
  return `
const SUFFIX = ${JSON.stringify(suffix)};
const ORIGINAL = ${JSON.stringify(ORIGINAL)};
const REPLACEMENT = ${JSON.stringify(REPLACEMENT)};
export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (!url.startsWith('file:') || !decodeURIComponent(url).endsWith(SUFFIX) || result.source == null) return result;
  const text = typeof result.source === 'string' ? result.source : new TextDecoder().decode(result.source);
  if (text.split(ORIGINAL).length !== 2) return result;
  return { ...result, source: text.replace(ORIGINAL, REPLACEMENT) };
}
`;
}

export type OfflineFixOutcome =
  | { status: 'registered'; version: string; file: string }
  | { status: 'already-fixed'; version: string; file: string }
  | { status: 'unexpected'; version?: string; file?: string; reason: string };

let registered = false;

/** Where serverless-offline is, as the service resolves it. */
export function findServerlessOffline(serviceDir: string): { root: string; version: string } | undefined {
  const require = createRequire(join(serviceDir, 'package.json'));
  let entry: string;
  try {
    entry = require.resolve('serverless-offline');
  } catch {
    return undefined;
  }
  // `exports` hides package.json: walk up from src/index.js to the package root.
  let root = dirname(entry);
  while (!root.endsWith(`${sep}serverless-offline`) && dirname(root) !== root) root = dirname(root);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  return { root, version: pkg.version };
}

/**
 * Make direct invocations report the thrown error's name as `errorType`.
 * Idempotent; call it before serverless-offline starts its Lambda endpoint.
 */
export function fixOfflineErrorType(serviceDir: string): OfflineFixOutcome {
  const found = findServerlessOffline(serviceDir);
  if (!found) return { status: 'unexpected', reason: 'serverless-offline is not installed in this service' };
  const file = join(found.root, ...CONTROLLER_PATH);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { status: 'unexpected', version: found.version, file, reason: `${file} does not exist` };
  }
  if (ALREADY_FIXED.test(text)) return { status: 'already-fixed', version: found.version, file };
  if (!found.version.startsWith('14.')) {
    return { status: 'unexpected', version: found.version, file, reason: `serverless-offline ${found.version} is not the 14.x line the fix was written for` };
  }
  if (text.split(ORIGINAL).length !== 2) {
    return { status: 'unexpected', version: found.version, file, reason: `${file} does not contain ${ORIGINAL} exactly once` };
  }
  const register = (nodeModule as { register?: (specifier: string, parentURL?: string) => void }).register;
  if (typeof register !== 'function') {
    return { status: 'unexpected', version: found.version, file, reason: `Node.js ${process.version} has no module.register (needs ≥ 20.6)` };
  }
  if (!registered) {
    const suffix = ['', 'serverless-offline', ...CONTROLLER_PATH].join('/');
    register(`data:text/javascript,${encodeURIComponent(hookSource(suffix))}`);
    registered = true;
  }
  return { status: 'registered', version: found.version, file };
}

/** Set by `middle-management dev` for serverless-offline: the local stack's state folder. */
export const DEV_STATE_DIR_VARIABLE = 'MIDDLE_MANAGEMENT_DEV_STATE_DIR';
/**
 * What serverless-esbuild 1.x's watcher ignores when `watch.ignore` is not set
 * (its `.esbuild` work folder, `dist`, `node_modules`, its `.build` folder): an
 * `ignore` of our own replaces that list, so it is repeated.
 */
export const ESBUILD_DEFAULT_WATCH_IGNORE = ['.esbuild', 'dist', 'node_modules', '.build'] as const;

export type EsbuildWorkFolderOutcome = { status: 'set'; workFolder: string } | { status: 'kept'; reason: string };

/**
 * Points serverless-esbuild's work folder (`custom.esbuild.outputWorkFolder`,
 * default `.esbuild`) at `<stateDir>/esbuild`, so that a local run leaves no build
 * output in the service's folder. serverless-esbuild joins the option to the
 * service's folder (`path.join`, not `resolve`): an absolute path would land
 * inside the service, so the value is relative to it. Its file watcher (under
 * `offline`) ignores `.esbuild` only: the new folder is added to `watch.ignore`,
 * or every bundle it writes would start the next build.
 *
 * Leaves the block alone when the service sets `outputWorkFolder` itself, builds
 * its options in a file (`custom.esbuild.config`), or when `custom.esbuild` is
 * not an object. Must run before serverless-esbuild's `initialize` hook, which
 * reads its options once.
 */
export function pointEsbuildAtStateDir(
  custom: Record<string, unknown>,
  serviceDir: string,
  stateDir: string,
): EsbuildWorkFolderOutcome {
  const current = custom.esbuild;
  if (current !== undefined && (current === null || typeof current !== 'object' || Array.isArray(current))) {
    return { status: 'kept', reason: 'custom.esbuild is not an object' };
  }
  const esbuild = (current ?? {}) as Record<string, unknown>;
  if (typeof esbuild.outputWorkFolder === 'string' && esbuild.outputWorkFolder !== '') {
    return { status: 'kept', reason: `custom.esbuild.outputWorkFolder is set (${esbuild.outputWorkFolder})` };
  }
  if (esbuild.config !== undefined) return { status: 'kept', reason: 'custom.esbuild.config builds the options' };
  const workFolder = relative(resolve(serviceDir), join(resolve(serviceDir, stateDir), 'esbuild'));
  if (workFolder === '' || isAbsolute(workFolder)) {
    return { status: 'kept', reason: `${stateDir} cannot be reached by a path relative to the service` };
  }
  const watch = esbuild.watch;
  if (watch !== undefined && (watch === null || typeof watch !== 'object' || Array.isArray(watch))) {
    return { status: 'kept', reason: 'custom.esbuild.watch is not an object' };
  }
  const ignore = (watch as { ignore?: unknown } | undefined)?.ignore;
  const ignored = ignore === undefined ? [...ESBUILD_DEFAULT_WATCH_IGNORE] : [ignore].flat();
  custom.esbuild = {
    ...esbuild,
    outputWorkFolder: workFolder,
    watch: { ...(watch as object | undefined), ignore: [...ignored, workFolder] },
  };
  return { status: 'set', workFolder };
}
