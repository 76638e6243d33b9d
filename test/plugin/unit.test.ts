/**
 * The plugin's hooks on a stand-in `serverless` object: the cases that need no
 * real packaging (a service with its own access logs, an HTTP API defined
 * elsewhere, name collisions, `remove`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import MiddleManagementPlugin from '../../plugin/index.js';

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
