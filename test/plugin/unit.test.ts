/**
 * The plugin's hooks on a stand-in `serverless` object: the cases that need no
 * real packaging (a service with its own access logs, an HTTP API defined
 * elsewhere, name collisions, `remove`).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import MiddleManagementPlugin, { pointEsbuildAtStateDir } from '../../plugin/index.js';

function serverless(options: { resources?: Record<string, unknown>; functions?: Record<string, unknown>; commands?: string[]; compiled?: Record<string, any> } = {}) {
  return {
    service: {
      service: 'shop',
      custom: { middleManagement: { handler: 'handler.handler', allowList: 'reindex', jwt: { issuer: 'https://login.example.com', audience: 'ops' } } },
      functions: { ...(options.functions ?? {}) } as Record<string, any>,
      provider: { compiledCloudFormationTemplate: { Resources: { ...(options.compiled ?? {}) }, Outputs: {} } } as any,
      resources: { Resources: options.resources ?? {} },
    },
    serviceDir: process.cwd(),
    processedInput: { commands: options.commands ?? ['package'] },
    getProvider: () => ({ getStage: () => 'dev', naming: { getLogGroupLogicalId: (key: string) => `${key[0]!.toUpperCase()}${key.slice(1)}LogGroup` } }),
    classes: { Error },
  };
}

function run(sls: ReturnType<typeof serverless>) {
  const warnings: string[] = [];
  const plugin = new MiddleManagementPlugin(sls as any, {}, { log: { warning: (message: string) => warnings.push(message) } });
  plugin.hooks.initialize!();
  if (sls.service.functions.manage) plugin.hooks['after:package:compileEvents']!();
  return warnings;
}

const route = (key: string) => ({ Type: 'AWS::ApiGatewayV2::Route', Properties: { RouteKey: key } });

describe('plugin hooks', () => {
  it('keeps the service access logs (provider.logs.httpApi) and gives their log group a retention', () => {
    const sls = serverless({
      compiled: {
        HttpApiLogGroup: { Type: 'AWS::Logs::LogGroup', Properties: { LogGroupName: '/aws/http-api/shop-dev' } },
        HttpApiStage: { Type: 'AWS::ApiGatewayV2::Stage', Properties: { AccessLogSettings: { DestinationArn: 'theirs', Format: '$context.requestId' } }, DependsOn: 'HttpApiLogGroup' },
        HttpApiRouteAnyManage: route('ANY /__manage__'),
        HttpApiRouteAnyManageProxyVar: route('ANY /__manage__/{proxy+}'),
      },
    });
    run(sls);
    const resources = sls.service.provider.compiledCloudFormationTemplate.Resources;
    assert.deepEqual(resources.HttpApiStage.Properties.AccessLogSettings, { DestinationArn: 'theirs', Format: '$context.requestId' });
    assert.equal(resources.HttpApiLogGroup.Properties.RetentionInDays, 365);
    assert.equal(resources.MiddleManagementHttpApiAccessLogGroup, undefined);
    assert.deepEqual(resources.HttpApiStage.DependsOn.sort(), ['HttpApiLogGroup', 'HttpApiRouteAnyManage', 'HttpApiRouteAnyManageProxyVar']);
  });

  it('warns when the HTTP API is defined elsewhere (no stage in the template)', () => {
    const warnings = run(serverless());
    assert.ok(warnings.some((warning) => /provider\.httpApi\.id/.test(warning)), warnings.join('\n'));
  });

  it('refuses a service function of the same key, naming functionName', () => {
    assert.throws(() => run(serverless({ functions: { manage: { handler: 'x.y' } } })), /custom\.middleManagement\.functionName: the service already has a function "manage"/);
  });

  it('refuses a service resource with one of its logical ids', () => {
    assert.throws(() => run(serverless({ resources: { MiddleManagementRole: {} } })), /resources\.Resources\.MiddleManagementRole/);
  });

  it('warns when no issuer or no command is configured', () => {
    const sls = serverless();
    sls.service.custom.middleManagement = { handler: 'handler.handler' } as any;
    const warnings = run(sls);
    assert.ok(warnings.some((warning) => /neither jwt nor cognito/.test(warning)));
    assert.ok(warnings.some((warning) => /allowList is empty/.test(warning)));
  });

  it('remove: adds nothing and validates nothing', () => {
    const sls = serverless({ commands: ['remove'] });
    sls.service.custom.middleManagement = { wrong: true } as any;
    run(sls);
    assert.deepEqual(sls.service.functions, {});
  });
});

describe("serverless-esbuild's work folder under `middle-management dev`", () => {
  /** Stands for serverless-esbuild's plugin instance (the plugin looks for it by its class name). */
  class EsbuildServerlessPlugin {}
  const STATE = 'MIDDLE_MANAGEMENT_DEV_STATE_DIR';

  function runWith(options: { commands: string[]; state?: string; esbuild?: Record<string, unknown>; esbuildFirst?: boolean; noEsbuild?: boolean }) {
    const sls: ReturnType<typeof serverless> & { pluginManager?: { plugins: object[] } } = serverless({ commands: options.commands });
    const custom = sls.service.custom as Record<string, unknown>;
    if (options.esbuild) custom.esbuild = options.esbuild;
    const warnings: string[] = [];
    const saved = process.env[STATE];
    if (options.state === undefined) delete process.env[STATE];
    else process.env[STATE] = options.state;
    try {
      const plugin = new MiddleManagementPlugin(sls as any, {}, { log: { warning: (message: string) => warnings.push(message), verbose: () => {} } });
      const esbuild = new EsbuildServerlessPlugin();
      sls.pluginManager = { plugins: options.noEsbuild ? [plugin] : options.esbuildFirst ? [esbuild, plugin] : [plugin, esbuild] };
      plugin.hooks.initialize!();
    } finally {
      if (saved === undefined) delete process.env[STATE];
      else process.env[STATE] = saved;
    }
    return { esbuild: custom.esbuild as Record<string, any> | undefined, warnings };
  }

  const state = join(process.cwd(), '.middle-management');

  it('offline with the state folder set: outputWorkFolder is .middle-management/esbuild (relative: the plugin joins it to the service), and its watcher ignores it', () => {
    const { esbuild } = runWith({ commands: ['offline', 'start'], state, esbuild: { bundle: true, minify: true } });
    assert.deepEqual(esbuild, {
      bundle: true,
      minify: true,
      outputWorkFolder: join('.middle-management', 'esbuild'),
      watch: { ignore: ['.esbuild', 'dist', 'node_modules', '.build', join('.middle-management', 'esbuild')] },
    });
  });

  it('adds an esbuild block when the service has none; keeps its watch settings and adds to its ignore list', () => {
    assert.equal(runWith({ commands: ['offline', 'start'], state }).esbuild?.outputWorkFolder, join('.middle-management', 'esbuild'));
    const { esbuild } = runWith({ commands: ['offline', 'start'], state, esbuild: { watch: { pattern: 'src/**/*.ts', ignore: 'scratch' } } });
    assert.deepEqual(esbuild?.watch, { pattern: 'src/**/*.ts', ignore: ['scratch', join('.middle-management', 'esbuild')] });
  });

  it("leaves the service's own outputWorkFolder, and options built by custom.esbuild.config, alone", () => {
    assert.deepEqual(runWith({ commands: ['offline', 'start'], state, esbuild: { outputWorkFolder: 'build' } }).esbuild, { outputWorkFolder: 'build' });
    assert.deepEqual(runWith({ commands: ['offline', 'start'], state, esbuild: { config: './esbuild.config.cjs' } }).esbuild, { config: './esbuild.config.cjs' });
  });

  it('package (even with the variable set), offline without it, or without serverless-esbuild: nothing changes', () => {
    assert.equal(runWith({ commands: ['package'], state }).esbuild, undefined);
    assert.deepEqual(runWith({ commands: ['package'], state, esbuild: { bundle: true } }).esbuild, { bundle: true });
    assert.equal(runWith({ commands: ['offline', 'start'] }).esbuild, undefined);
    assert.equal(runWith({ commands: ['offline', 'start'], state, noEsbuild: true }).esbuild, undefined);
  });

  it('warns when serverless-esbuild is listed first (it has read its options already)', () => {
    const { esbuild, warnings } = runWith({ commands: ['offline', 'start'], state, esbuildFirst: true });
    assert.equal(esbuild, undefined);
    assert.ok(warnings.some((warning) => /serverless-esbuild is listed before serverless-middle-management\/plugin/.test(warning)), warnings.join('\n'));
  });

  it('a state folder outside the service is reached by a relative path', () => {
    const custom: Record<string, any> = {};
    assert.deepEqual(pointEsbuildAtStateDir(custom, '/srv/shop', '/var/tmp/mm-state'), { status: 'set', workFolder: join('..', '..', 'var', 'tmp', 'mm-state', 'esbuild') });
    assert.equal(custom.esbuild.outputWorkFolder, join('..', '..', 'var', 'tmp', 'mm-state', 'esbuild'));
    assert.equal(pointEsbuildAtStateDir({ esbuild: '${file(esbuild.yml)}' }, '/srv/shop', '/srv/shop/.middle-management').status, 'kept');
  });
});
