/**
 * The esbuild options serverless-esbuild uses for the `manage` function, read
 * from serverless.yml's `custom.esbuild`, so that the bench measures the bundle
 * that `serverless package` ships (and a baseline built the same way).
 *
 * Mirrors serverless-esbuild 1.x: its defaults, then `custom.esbuild`, minus the
 * plugin's own keys; `outputFileExtension` becomes `outExtension`, `exclude`
 * becomes `external`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { BuildOptions } from 'esbuild';

/** Keys serverless-esbuild removes before calling esbuild (dist/bundle.js). */
const PLUGIN_KEYS = [
  'concurrency',
  'zipConcurrency',
  'exclude',
  'nativeZip',
  'packager',
  'packagePath',
  'watch',
  'keepOutputDirectory',
  'packagerOptions',
  'installExtraArgs',
  'outputFileExtension',
  'outputBuildFolder',
  'outputWorkFolder',
  'nodeExternals',
  'skipBuild',
  'skipRebuild',
  'skipBuildExcludeFns',
  'stripEntryResolveExtensions',
  'disposeContext',
];

export interface ServiceBuild {
  /** What esbuild gets, without entry points and output folder. */
  options: BuildOptions;
  /** `provider.environment.NODE_OPTIONS`, as the deployed function runs with it. */
  nodeOptions: string;
  /** `provider.memorySize` and `provider.timeout`. */
  memorySize: number;
  timeout: number;
}

export function serviceBuild(root: string): ServiceBuild {
  // js-yaml is serverless' own YAML parser (a dependency of the `serverless` package).
  const yaml = createRequire(createRequire(join(root, 'package.json')).resolve('serverless/package.json'))('js-yaml') as {
    load(text: string): any;
  };
  const service = yaml.load(readFileSync(join(root, 'serverless.yml'), 'utf8'));
  const custom: Record<string, unknown> = service?.custom?.esbuild;
  if (!custom || typeof custom !== 'object') throw new Error('serverless.yml has no custom.esbuild');
  const merged: Record<string, unknown> = { bundle: true, platform: 'node', external: [], exclude: ['aws-sdk'], outputFileExtension: '.js', ...custom };
  const exclude = (merged.exclude as string[] | undefined) ?? [];
  const options: Record<string, unknown> = { ...merged };
  for (const key of PLUGIN_KEYS) delete options[key];
  options.external = [...((merged.external as string[]) ?? []), ...(exclude.includes('*') ? [] : exclude)];
  if (merged.outputFileExtension !== '.js') options.outExtension = { '.js': merged.outputFileExtension as string };
  return {
    options: options as BuildOptions,
    nodeOptions: String(service?.provider?.environment?.NODE_OPTIONS ?? ''),
    memorySize: Number(service?.provider?.memorySize),
    timeout: Number(service?.provider?.timeout),
  };
}
