/**
 * The plugin, as an adopting service uses it: `plugins: [serverless-middle-management/plugin]`
 * and a `custom.middleManagement` block in a service that has functions of its
 * own. Each fixture is packaged with the real framework (osls), offline: empty
 * HOME, no credentials, no AWS profile.
 *
 * Besides what issue 10 asks (resources, role separation, environment on the
 * manage function only, self-invocation of a renamed function, validation naming
 * the key, stepFunctions on/off), this file asserts the properties that checkov
 * and parliament check on these resource types, since neither tool can be
 * installed here (no PyPI). Every waived check is explained in docs/plugin.md.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rm } from 'node:fs/promises';
import { auditTableDefinition, stateTableDefinition } from '../../src/stores/audit/table.js';
import { parseSettings, SettingsError } from '../../plugin/settings.js';
import { installPlugin, ofType, packageService, tempDir, type PackageResult, type Template } from './support.js';

const HANDLER = 'export const handler = async () => ({ ok: true });\n';

/** A service of its own: one function, a provider role statement and a provider environment. */
function serviceYml(block: string, extra = ''): string {
  return `service: shop
frameworkVersion: '>=3'
plugins:
  - serverless-middle-management/plugin
provider:
  name: aws
  runtime: nodejs20.x
  environment:
    SHARED: one
  iam:
    role:
      statements:
        - Effect: Allow
          Action: [s3:GetObject]
          Resource: arn:aws:s3:::shop-bucket/*
functions:
  orders:
    handler: handler.handler
    environment:
      ORDERS_ONLY: two
    events:
      - httpApi: { method: GET, path: /orders }
${extra}custom:
  middleManagement:
${block
  .trim()
  .split('\n')
  .map((line) => `    ${line}`)
  .join('\n')}
`;
}

const MAIN_BLOCK = `
handler: handler.handler
allowList: [reindex, purge]
jwt: { issuer: https://login.example.com, audience: ops-api }
groupsClaim: [realm_access.roles]
commandGroups: { purge: [ops] }
auditorGroups: [auditors]
exclusive: [purge]
approval: { purge: [leads] }
auditHmacKey: '{{resolve:secretsmanager:shop/audit-hmac-key}}'
stepFunctions: true
maxBodyBytes: 32768
httpTimeLimitMs: 20000
idempotencyTtlSeconds: 3600
approvalTtlSeconds: 600
logRetentionInDays: 90
console:
  clientId: console-app
  redirectUri: https://ops.example.com/callback
  issuer: https://login.example.com
  scopes: [openid, ops-api/run]
  resource: https://ops-api.example.com
  tokenUse: id
  authOrigins: [https://auth.example.com/x]
environment: { NODE_OPTIONS: --enable-source-maps }
iamStatements:
  - Effect: Allow
    Action: [dynamodb:GetItem]
    Resource: arn:aws:dynamodb:us-east-1:111122223333:table/shop-orders
`;

const RENAMED_BLOCK = `
handler: handler.handler
functionName: ops
allowList: reindex
jwt:
  - { issuer: https://login.example.com, audience: ops-api, groupsClaim: roles }
  - { issuer: https://id.partner.example, audience: [a, b], jwksUri: https://id.partner.example/keys, tokenUse: access }
cognito: { userPoolId: eu-west-1_AbCdEf123, clientId: [c1, c2], tokenUse: id }
kmsKeyArn: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
reservedConcurrency: 5
throttling: { burstLimit: 5, rateLimit: 2 }
`;

let work: string;
const packaged: Record<string, PackageResult> = {};

async function fixture(name: string, yml: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await installPlugin(dir);
  await writeFile(join(dir, 'handler.js'), HANDLER);
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  await writeFile(join(dir, 'serverless.yml'), yml);
  return dir;
}

function template(name: string): Template {
  const result = packaged[name]!;
  assert.ok(result.ok, result.output);
  return result.template!;
}

function statementsOf(role: { Properties: any }): any[] {
  return role.Properties.Policies.flatMap((policy: any) => [policy.PolicyDocument.Statement].flat());
}

function fnNamed(t: Template, name: string) {
  const found = ofType(t, 'AWS::Lambda::Function').find(([, resource]) => resource.Properties.FunctionName === name);
  assert.ok(found, `no function ${name}`);
  return found;
}

function sortByName<T extends Record<string, unknown>>(items: T[] | undefined, key: keyof T): T[] {
  return [...(items ?? [])].sort((a, b) => String(a[key]).localeCompare(String(b[key])));
}

describe('serverless-middle-management/plugin', { timeout: 300_000 }, () => {
  before(async () => {
    work = await tempDir('mm-plugin-');
    const main = await fixture('main', serviceYml(MAIN_BLOCK));
    // MANAGE_* in the packaging environment must not reach the template.
    packaged.main = await packageService(main, work, [], { MANAGE_ALLOW_LIST: 'everything', MANAGE_JWT_ISSUER: 'https://evil.example' });
    const renamed = await fixture('renamed', serviceYml(RENAMED_BLOCK, 'resources:\n  Resources:\n    AuditTable: { Type: AWS::SNS::Topic }\n'));
    packaged.renamed = await packageService(renamed, work, ['--stage', 'prod']);
    packaged.missing = await packageService(await fixture('missing', serviceYml('allowList: [reindex]', 'configValidationMode: warn\n')), work);
    packaged.typo = await packageService(await fixture('typo', serviceYml('handler: handler.handler\nallowlist: [reindex]')), work);
    packaged.audience = await packageService(await fixture('audience', serviceYml('handler: handler.handler\njwt: { issuer: https://login.example.com }')), work);
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  describe('the resources it adds', () => {
    it('the audit table: the layout of src/stores/audit/table.ts, retained, PITR, encrypted, deletion-protected', () => {
      const t = template('main');
      const audit = t.Resources.MiddleManagementAuditTable!;
      const expected = auditTableDefinition('shop-dev-mm-audit');
      assert.equal(audit.Type, 'AWS::DynamoDB::Table');
      assert.equal(audit.Properties.TableName, expected.TableName);
      assert.equal(audit.Properties.BillingMode, 'PAY_PER_REQUEST');
      assert.deepEqual(audit.Properties.KeySchema, expected.KeySchema);
      assert.deepEqual(sortByName(audit.Properties.AttributeDefinitions, 'AttributeName'), sortByName(expected.AttributeDefinitions as any, 'AttributeName'));
      assert.deepEqual(sortByName(audit.Properties.GlobalSecondaryIndexes, 'IndexName'), sortByName(expected.GlobalSecondaryIndexes as any, 'IndexName'));
      assert.equal(audit.DeletionPolicy, 'Retain');
      assert.equal(audit.UpdateReplacePolicy, 'Retain');
      assert.equal(audit.Properties.DeletionProtectionEnabled, true);
      assert.deepEqual(audit.Properties.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
      assert.deepEqual(audit.Properties.SSESpecification, { SSEEnabled: true });
    });

    it('the state table: the layout of src/stores/audit/table.ts, TTL on ttl, encrypted', () => {
      const state = template('main').Resources.MiddleManagementStateTable!;
      const expected = stateTableDefinition('shop-dev-mm-state');
      assert.equal(state.Properties.TableName, expected.TableName);
      assert.deepEqual(state.Properties.KeySchema, expected.KeySchema);
      assert.deepEqual(state.Properties.AttributeDefinitions, expected.AttributeDefinitions);
      assert.deepEqual(state.Properties.TimeToLiveSpecification, { AttributeName: 'ttl', Enabled: true });
      assert.deepEqual(state.Properties.SSESpecification, { SSEEnabled: true });
    });

    it('the manage function: nodejs22.x on arm64, 1024 MB, 900 s, the handler of the block, no async retries', () => {
      const [id, fn] = fnNamed(template('main'), 'shop-dev-manage');
      assert.equal(id, 'ManageLambdaFunction');
      assert.equal(fn.Properties.Handler, 'handler.handler');
      assert.equal(fn.Properties.Runtime, 'nodejs22.x');
      assert.deepEqual(fn.Properties.Architectures, ['arm64']);
      assert.equal(fn.Properties.MemorySize, 1024);
      assert.equal(fn.Properties.Timeout, 900);
      const config = template('main').Resources.ManageLambdaEvConf!;
      assert.equal(config.Type, 'AWS::Lambda::EventInvokeConfig');
      assert.equal(config.Properties.MaximumRetryAttempts, 0);
      assert.deepEqual(config.Properties.DestinationConfig.OnFailure.Destination, { 'Fn::GetAtt': ['MiddleManagementFailureQueue', 'Arn'] });
    });

    it('routes every method of /__manage__ and /__manage__/{proxy+} to it; the service keeps its own route', () => {
      const t = template('main');
      const routes = ofType(t, 'AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties);
      const keys = routes.map((route) => route.RouteKey).sort();
      assert.deepEqual(keys, ['ANY /__manage__', 'ANY /__manage__/{proxy+}', 'GET /orders']);
      for (const route of routes.filter((r) => r.RouteKey.startsWith('ANY'))) {
        assert.match(JSON.stringify(route.Target), /HttpApiIntegrationManage/);
      }
    });

    it('the function log group and the HTTP API access log group have a retention; access logs are JSON', () => {
      const t = template('main');
      const groups = ofType(t, 'AWS::Logs::LogGroup');
      const manageGroup = groups.find(([, group]) => group.Properties.LogGroupName === '/aws/lambda/shop-dev-manage');
      assert.ok(manageGroup);
      assert.equal(manageGroup[1].Properties.RetentionInDays, 90);
      assert.ok([fnNamed(t, 'shop-dev-manage')[1].DependsOn].flat().includes(manageGroup[0]));
      const stage = t.Resources.HttpApiStage!;
      const access = stage.Properties.AccessLogSettings;
      assert.deepEqual(access.DestinationArn, { 'Fn::GetAtt': ['MiddleManagementHttpApiAccessLogGroup', 'Arn'] });
      const format = JSON.parse(access.Format);
      for (const field of ['requestId', 'sourceIp', 'routeKey', 'status']) assert.ok(format[field], field);
      assert.equal(t.Resources.MiddleManagementHttpApiAccessLogGroup!.Properties.RetentionInDays, 90);
    });

    it('throttles the manage routes only (the service routes keep the stage default)', () => {
      const stage = template('main').Resources.HttpApiStage!;
      assert.deepEqual(Object.keys(stage.Properties.RouteSettings).sort(), ['ANY /__manage__', 'ANY /__manage__/{proxy+}']);
      for (const setting of Object.values<any>(stage.Properties.RouteSettings)) {
        assert.deepEqual(setting, { ThrottlingBurstLimit: 20, ThrottlingRateLimit: 10 });
      }
      // Route settings may only name existing routes.
      assert.ok([stage.DependsOn].flat().includes('HttpApiRouteAnyManage'));
      const renamed = template('renamed').Resources.HttpApiStage!;
      for (const setting of Object.values<any>(renamed.Properties.RouteSettings)) {
        assert.deepEqual(setting, { ThrottlingBurstLimit: 5, ThrottlingRateLimit: 2 });
      }
    });

    it('namespaces every logical id and physical name', () => {
      const t = template('main');
      const ours = Object.keys(t.Resources).filter((id) => id.startsWith('MiddleManagement')).sort();
      assert.deepEqual(ours, [
        'MiddleManagementAuditTable',
        'MiddleManagementFailureQueue',
        'MiddleManagementHttpApiAccessLogGroup',
        'MiddleManagementRole',
        'MiddleManagementStateTable',
      ]);
      assert.equal(t.Resources.MiddleManagementFailureQueue!.Properties.QueueName, 'shop-dev-mm-failed');
      // The service's own "AuditTable" is left alone.
      assert.equal(template('renamed').Resources.AuditTable!.Type, 'AWS::SNS::Topic');
    });
  });

  describe('role and environment: the manage function only', () => {
    it('the service function keeps the framework role, its environment, and gains nothing', () => {
      const t = template('main');
      const [, orders] = fnNamed(t, 'shop-dev-orders');
      assert.deepEqual(orders.Properties.Role, { 'Fn::GetAtt': ['IamRoleLambdaExecution', 'Arn'] });
      assert.deepEqual(orders.Properties.Environment.Variables, { SHARED: 'one', ORDERS_ONLY: 'two' });
      const shared = statementsOf(t.Resources.IamRoleLambdaExecution!);
      const text = JSON.stringify(shared);
      assert.doesNotMatch(text, /MiddleManagement|dynamodb|states:|lambda:InvokeFunction|sqs:/);
      assert.match(text, /s3:GetObject/);
    });

    it('the manage function has a role of its own, without the provider statements', () => {
      const t = template('main');
      const [, manage] = fnNamed(t, 'shop-dev-manage');
      assert.deepEqual(manage.Properties.Role, { 'Fn::GetAtt': ['MiddleManagementRole', 'Arn'] });
      const role = t.Resources.MiddleManagementRole!;
      assert.deepEqual(role.Properties.AssumeRolePolicyDocument.Statement, [
        { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
      ]);
      assert.doesNotMatch(JSON.stringify(statementsOf(role)), /s3:GetObject/);
    });

    it('MANAGE_* from the block, on the manage function only; never from the packaging environment', () => {
      const [, manage] = fnNamed(template('main'), 'shop-dev-manage');
      assert.deepEqual(manage.Properties.Environment.Variables, {
        SHARED: 'one',
        NODE_OPTIONS: '--enable-source-maps',
        MANAGE_ALLOW_LIST: 'reindex,purge',
        MANAGE_JWT_ISSUER: 'https://login.example.com',
        MANAGE_JWT_AUDIENCE: 'ops-api',
        MANAGE_JWT_GROUPS_CLAIM: 'realm_access.roles',
        MANAGE_COMMAND_GROUPS: '{"purge":["ops"]}',
        MANAGE_AUDITOR_GROUPS: 'auditors',
        MANAGE_AUDIT_TABLE: 'shop-dev-mm-audit',
        MANAGE_STATE_TABLE: 'shop-dev-mm-state',
        MANAGE_AUDIT_HMAC_KEY: '{{resolve:secretsmanager:shop/audit-hmac-key}}',
        MANAGE_MAX_BODY_BYTES: '32768',
        MANAGE_HTTP_TIME_LIMIT_MS: '20000',
        MANAGE_EXCLUSIVE: 'purge',
        MANAGE_APPROVAL: '{"purge":["leads"]}',
        MANAGE_IDEMPOTENCY_TTL_SECONDS: '3600',
        MANAGE_APPROVAL_TTL_SECONDS: '600',
        MANAGE_CONSOLE_CLIENT_ID: 'console-app',
        MANAGE_CONSOLE_REDIRECT_URI: 'https://ops.example.com/callback',
        MANAGE_CONSOLE_ISSUER: 'https://login.example.com',
        MANAGE_CONSOLE_SCOPES: 'openid ops-api/run',
        MANAGE_CONSOLE_RESOURCE: 'https://ops-api.example.com',
        MANAGE_CONSOLE_TOKEN_USE: 'id',
        MANAGE_CONSOLE_AUTH_ORIGINS: 'https://auth.example.com/x',
      });
    });

    it('a list of issuers becomes MANAGE_JWT_ISSUERS; cognito its three variables', () => {
      const [, ops] = fnNamed(template('renamed'), 'shop-prod-ops');
      const variables = ops.Properties.Environment.Variables;
      assert.deepEqual(JSON.parse(variables.MANAGE_JWT_ISSUERS), [
        { issuer: 'https://login.example.com', audience: 'ops-api', groupsClaim: 'roles' },
        { issuer: 'https://id.partner.example', audience: ['a', 'b'], jwksUri: 'https://id.partner.example/keys', tokenUse: 'access' },
      ]);
      assert.equal(variables.MANAGE_JWT_ISSUER, undefined);
      assert.equal(variables.MANAGE_COGNITO_USER_POOL_ID, 'eu-west-1_AbCdEf123');
      assert.equal(variables.MANAGE_COGNITO_CLIENT_ID, 'c1,c2');
      assert.equal(variables.MANAGE_COGNITO_TOKEN_USE, 'id');
      assert.equal(variables.MANAGE_AUDIT_TABLE, 'shop-prod-mm-audit');
    });
  });

  describe('least privilege', () => {
    const AUDIT = { 'Fn::GetAtt': ['MiddleManagementAuditTable', 'Arn'] };
    const INDEXES = { 'Fn::Sub': '${MiddleManagementAuditTable.Arn}/index/*' };
    const STATE = { 'Fn::GetAtt': ['MiddleManagementStateTable', 'Arn'] };
    const QUEUE = { 'Fn::GetAtt': ['MiddleManagementFailureQueue', 'Arn'] };
    const self = (name: string) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:lambda:\${AWS::Region}:\${AWS::AccountId}:function:${name}` });
    const logs = (name: string) => `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${name}`;

    function grants(t: Template): any[] {
      return t.Resources.MiddleManagementRole!.Properties.Policies[0].PolicyDocument.Statement;
    }

    it('grants exactly: own logs, audit put/get/query, state put/get/delete, invoke itself, the failure queue, SendTask* on *', () => {
      assert.deepEqual(grants(template('main')), [
        { Effect: 'Allow', Action: ['logs:CreateLogStream'], Resource: [{ 'Fn::Sub': `${logs('shop-dev-manage')}:*` }] },
        { Effect: 'Allow', Action: ['logs:PutLogEvents'], Resource: [{ 'Fn::Sub': `${logs('shop-dev-manage')}:log-stream:*` }] },
        { Effect: 'Allow', Action: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:Query'], Resource: [AUDIT] },
        { Effect: 'Allow', Action: ['dynamodb:Query'], Resource: [INDEXES] },
        { Effect: 'Allow', Action: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'], Resource: [STATE] },
        { Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: [self('shop-dev-manage')] },
        { Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: [QUEUE] },
        { Effect: 'Allow', Action: ['states:SendTaskSuccess', 'states:SendTaskFailure'], Resource: '*' },
      ]);
      // The block's iamStatements: for the commands' own needs, in a policy of their own.
      const commands = template('main').Resources.MiddleManagementRole!.Properties.Policies[1];
      assert.equal(commands.PolicyName, 'middle-management-commands');
      assert.deepEqual(commands.PolicyDocument.Statement[0].Action, ['dynamodb:GetItem']);
    });

    it('a renamed function invokes itself by its real name; stepFunctions off grants no states:*', () => {
      const t = template('renamed');
      const [id] = fnNamed(t, 'shop-prod-ops');
      assert.equal(id, 'OpsLambdaFunction');
      const statements = grants(t);
      const invoke = statements.find((s) => s.Action.includes('lambda:InvokeFunction'));
      assert.deepEqual(invoke.Resource, [self('shop-prod-ops')]);
      assert.ok(!JSON.stringify(statements).includes('states:'));
      assert.ok(statements.every((s) => s.Resource !== '*'));
      assert.deepEqual(statements[0].Resource, [{ 'Fn::Sub': `${logs('shop-prod-ops')}:*` }]);
    });

    it('nothing can update or delete audit records', () => {
      for (const name of ['main', 'renamed']) {
        for (const statement of statementsOf(template(name).Resources.MiddleManagementRole!)) {
          const resources = JSON.stringify(statement.Resource);
          if (!/MiddleManagementAuditTable/.test(resources)) continue;
          for (const action of statement.Action) {
            assert.ok(['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:Query'].includes(action), `${action} on the audit table`);
          }
        }
      }
    });
  });

  /**
   * What checkov (CloudFormation checks) and parliament would flag on these
   * resources, asserted here; docs/plugin.md explains each waiver.
   */
  describe('checkov and parliament checks', () => {
    it('CKV_AWS_28 DynamoDB PITR; CKV_AWS_119 KMS CMK when kmsKeyArn is set (waived otherwise: AWS managed key)', () => {
      for (const id of ['MiddleManagementAuditTable', 'MiddleManagementStateTable']) {
        assert.equal(template('main').Resources[id]!.Properties.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled, true, id);
      }
      const key = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
      for (const id of ['MiddleManagementAuditTable', 'MiddleManagementStateTable']) {
        assert.deepEqual(template('renamed').Resources[id]!.Properties.SSESpecification, { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: key });
      }
    });

    it('CKV_AWS_173 environment encryption and CKV_AWS_158 log group KMS when kmsKeyArn is set; the role may use the key', () => {
      const key = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
      const t = template('renamed');
      assert.equal(fnNamed(t, 'shop-prod-ops')[1].Properties.KmsKeyArn, key);
      assert.equal(t.Resources.OpsLogGroup!.Properties.KmsKeyId, key);
      assert.equal(t.Resources.MiddleManagementHttpApiAccessLogGroup!.Properties.KmsKeyId, key);
      assert.equal(t.Resources.MiddleManagementFailureQueue!.Properties.KmsMasterKeyId, key);
      const kms = statementsOf(t.Resources.MiddleManagementRole!).find((s) => s.Action.includes('kms:Decrypt'));
      assert.deepEqual(kms.Resource, [key]);
    });

    it('CKV_AWS_115 reserved concurrency when reservedConcurrency is set (waived by default)', () => {
      assert.equal(fnNamed(template('renamed'), 'shop-prod-ops')[1].Properties.ReservedConcurrentExecutions, 5);
    });

    it('CKV_AWS_116 (DLQ) is met by an on-failure destination; CKV_AWS_27 the queue is encrypted', () => {
      const queue = template('main').Resources.MiddleManagementFailureQueue!;
      assert.equal(queue.Properties.SqsManagedSseEnabled, true);
      assert.equal(queue.Properties.MessageRetentionPeriod, 1_209_600);
      assert.ok(template('main').Resources.ManageLambdaEvConf!.Properties.DestinationConfig.OnFailure);
    });

    it('CKV_AWS_66 every log group of the plugin has a retention; CKV_AWS_76 / CKV_AWS_95 API access logging', () => {
      for (const name of ['main', 'renamed']) {
        const t = template(name);
        for (const [id, group] of ofType(t, 'AWS::Logs::LogGroup')) {
          if (id.startsWith('Orders')) continue; // the service's own function: untouched
          assert.ok(Number.isInteger(group.Properties.RetentionInDays), id);
        }
        assert.ok(t.Resources.HttpApiStage!.Properties.AccessLogSettings.DestinationArn);
      }
    });

    it('CKV_AWS_45 no literal secret in the environment (the example key is a dynamic reference)', () => {
      const variables = fnNamed(template('main'), 'shop-dev-manage')[1].Properties.Environment.Variables;
      assert.match(variables.MANAGE_AUDIT_HMAC_KEY, /^\{\{resolve:secretsmanager:/);
    });

    it('parliament: known actions only, no wildcard actions, Resource "*" only for actions with no resource type', () => {
      const known = new Set([
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        'dynamodb:PutItem',
        'dynamodb:GetItem',
        'dynamodb:Query',
        'dynamodb:DeleteItem',
        'lambda:InvokeFunction',
        'sqs:SendMessage',
        'states:SendTaskSuccess',
        'states:SendTaskFailure',
        'kms:Decrypt',
        'kms:Encrypt',
        'kms:GenerateDataKey',
        'kms:DescribeKey',
      ]);
      /** The Service Authorization Reference lists no resource type for these: only "*" matches. */
      const noResourceType = new Set(['states:SendTaskSuccess', 'states:SendTaskFailure']);
      for (const name of ['main', 'renamed']) {
        const policy = template(name).Resources.MiddleManagementRole!.Properties.Policies[0].PolicyDocument;
        assert.equal(policy.Version, '2012-10-17');
        for (const statement of policy.Statement) {
          assert.equal(statement.Effect, 'Allow');
          assert.equal(statement.NotAction, undefined);
          assert.equal(statement.NotResource, undefined);
          for (const action of statement.Action) {
            assert.ok(known.has(action), `unknown or unexpected action ${action}`);
            assert.ok(!action.includes('*'));
          }
          const wildcard = [statement.Resource].flat().some((resource: unknown) => resource === '*');
          assert.equal(wildcard, statement.Action.every((action: string) => noResourceType.has(action)), JSON.stringify(statement));
        }
      }
    });
  });

  describe('validation', () => {
    it('serverless package fails naming a missing handler', () => {
      assert.equal(packaged.missing!.ok, false);
      // With configValidationMode: warn, the framework's schema check only warns: the plugin's own check fails.
      assert.match(packaged.missing!.output, /custom\.middleManagement\.handler: is required/);
    });

    it('serverless package fails naming a misspelled key (the block schema, osls validating in error mode)', () => {
      assert.equal(packaged.typo!.ok, false);
      assert.match(packaged.typo!.output, /custom\.middleManagement\.allowlist: is not a known key|'custom\.middleManagement': unrecognized property 'allowlist'/);
    });

    it('serverless package fails naming jwt.audience when an issuer has none', () => {
      assert.equal(packaged.audience!.ok, false);
      assert.match(packaged.audience!.output, /custom\.middleManagement\.jwt\.audience: is required/);
    });

    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['handler', { allowList: 'x' }, /\.handler: is required/],
      ['handler', { handler: 'no-export' }, /\.handler: "no-export" is not <file>\.<export>/],
      ['functionName', { handler: 'a.b', functionName: 'bad name' }, /\.functionName: /],
      ['jwt[1].issuer', { handler: 'a.b', jwt: [{ issuer: 'https://a', audience: 'x' }, { audience: 'y' }] }, /\.jwt\[1\]\.issuer: is required/],
      ['jwt.issuer', { handler: 'a.b', jwt: { issuer: 'not a url', audience: 'x' } }, /\.jwt\.issuer: "not a url" is not a URL/],
      ['jwt.tokenUse', { handler: 'a.b', jwt: { issuer: 'https://a', audience: 'x', tokenUse: 'refresh' } }, /\.jwt\[0\]\.tokenUse|\.jwt\.tokenUse/],
      ['cognito.clientId', { handler: 'a.b', cognito: { userPoolId: 'eu-west-1_AbC123' } }, /\.cognito\.clientId: is required/],
      ['cognito.userPoolId', { handler: 'a.b', cognito: { userPoolId: 'pool', clientId: 'c' } }, /\.cognito\.userPoolId: "pool"/],
      ['commandGroups.x', { handler: 'a.b', commandGroups: { x: [] } }, /\.commandGroups\.x: names no group/],
      ['approval', { handler: 'a.b', approval: 'not json' }, /\.approval: /],
      ['auditHmacKey', { handler: 'a.b', auditHmacKey: 'short' }, /\.auditHmacKey: must be at least 32/],
      ['stepFunctions', { handler: 'a.b', stepFunctions: 'yes' }, /\.stepFunctions: must be true or false/],
      ['logRetentionInDays', { handler: 'a.b', logRetentionInDays: 31 }, /\.logRetentionInDays: must be one of/],
      ['httpTimeLimitMs', { handler: 'a.b', httpTimeLimitMs: 60000, timeout: 30 }, /\.httpTimeLimitMs: must be below/],
      ['maxBodyBytes', { handler: 'a.b', maxBodyBytes: -1 }, /\.maxBodyBytes: must be an integer/],
      ['environment.MANAGE_X', { handler: 'a.b', environment: { MANAGE_X: '1' } }, /\.environment\.MANAGE_X: /],
      ['iamStatements[0]', { handler: 'a.b', iamStatements: [{ Effect: 'Allow' }] }, /\.iamStatements\[0\]: needs/],
      ['throttling.rateLimit', { handler: 'a.b', throttling: { rateLimit: 0 } }, /\.throttling\.rateLimit: /],
      ['console.redirectUri', { handler: 'a.b', console: { redirectUri: 'nope' } }, /\.console\.redirectUri: /],
      ['console.clientId', { handler: 'a.b', console: { redirectUri: 'https://ops.example.com/console' } }, /\.console\.clientId: is required with console\.redirectUri/],
      ['console.issuer', { handler: 'a.b', console: { clientId: 'c', issuer: 'login.example.com' } }, /\.console\.issuer: "login\.example\.com" is not a URL/],
      ['console.tokenUse', { handler: 'a.b', console: { clientId: 'c', tokenUse: 'refresh' } }, /\.console\.tokenUse: must be "access" or "id"/],
      ['console.resource', { handler: 'a.b', console: { clientId: 'c', resource: 'ops api' } }, /\.console\.resource: "ops api" is not an absolute URI/],
      ['console.authOrigins[1]', { handler: 'a.b', console: { clientId: 'c', authOrigins: ['https://a.example.com', 'nope'] } }, /\.console\.authOrigins\[1\]: /],
      ['console.colour', { handler: 'a.b', console: { clientId: 'c', colour: 'blue' } }, /\.console\.colour: is not a key of console/],
      ['kmsKeyArn', { handler: 'a.b', kmsKeyArn: 42 }, /\.kmsKeyArn: /],
    ];
    for (const [key, block, message] of cases) {
      it(`names ${key}`, () => {
        assert.throws(() => parseSettings(block), (error: unknown) => {
          assert.ok(error instanceof SettingsError);
          assert.match(error.message, /^custom\.middleManagement\./);
          assert.match(error.message, message);
          return true;
        });
      });
    }

    it('empty strings switch a key off (stage parameters may leave an issuer empty)', () => {
      const settings = parseSettings({ handler: 'a.b', jwt: { issuer: '', audience: '', jwksUri: '' }, cognito: { userPoolId: '', clientId: '' }, auditHmacKey: '' });
      assert.deepEqual(settings.jwt, []);
      assert.equal(settings.cognito, undefined);
      assert.equal(settings.auditHmacKey, undefined);
      const noConsole = parseSettings({ handler: 'a.b', console: { clientId: '', redirectUri: '', issuer: '', scopes: '', resource: '', tokenUse: '', authOrigins: '' } });
      assert.equal(noConsole.console, undefined);
    });

    it('console scopes may be a list or a space- or comma-separated string', () => {
      for (const scopes of [['openid', 'profile'], 'openid profile', 'openid,profile']) {
        assert.equal(parseSettings({ handler: 'a.b', console: { clientId: 'c', scopes } }).console?.scopes, 'openid profile');
      }
    });
  });
});
