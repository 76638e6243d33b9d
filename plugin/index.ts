/**
 * `serverless-middle-management/plugin`: the Serverless Framework (v3 line,
 * e.g. osls) plugin that adds middle-management to an existing service.
 *
 * ```yaml
 * plugins:
 *   - serverless-middle-management/plugin
 * custom:
 *   middleManagement:
 *     handler: src/manage.handler
 *     allowList: [reindex]
 *     jwt: { issuer: https://login.example.com, audience: ops-api }
 * ```
 *
 * Lifecycle:
 * - constructor: registers the block's JSON schema (the framework warns on it);
 * - `initialize` (every command, after variables are resolved): validates the
 *   block (failing with the key's name) and adds the `manage` function, so that
 *   every other plugin (serverless-esbuild, serverless-offline) sees it as one
 *   of the service's functions; under `offline` also the local overlay, the
 *   errorType fix and, under `middle-management dev`, serverless-esbuild's work
 *   folder in `.middle-management/` (./offline.ts);
 * - `after:package:compileEvents`: adds the tables, the role, the failure queue
 *   and the HTTP API access logs and route throttling to the compiled template.
 *
 * Everything is attached to the manage function alone: the service's other
 * functions, their roles and the provider's environment are left as they are.
 * See docs/plugin.md.
 */
import { DEV_STATE_DIR_VARIABLE, fixOfflineErrorType, overlayEnvironment, pointEsbuildAtStateDir } from './offline.js';
import { ACCESS_LOG_FORMAT, accessLogGroup, ids, manageFunction, resources, ROUTES, type Context } from './resources.js';
import { BLOCK, blockSchema, parseSettings, SettingsError, type Settings } from './settings.js';

export { parseSettings, SettingsError, blockSchema } from './settings.js';
export { manageEnvironment, manageFunction, resources, roleStatements, ids, ROUTES, TASK_TOKEN_ACTIONS } from './resources.js';
export { fixOfflineErrorType, overlayEnvironment, pointEsbuildAtStateDir } from './offline.js';
export type { Settings } from './settings.js';

type Json = Record<string, any>;

/** The parts of the framework's `serverless` object this plugin uses. */
interface Serverless {
  service: {
    service: string;
    custom?: Json;
    functions: Record<string, Json>;
    provider: Json & { compiledCloudFormationTemplate: { Resources: Json; Outputs?: Json } };
    resources?: Json;
  };
  serviceDir: string;
  processedInput?: { commands?: string[] };
  pluginManager?: { plugins?: object[] };
  configSchemaHandler?: { defineCustomProperties(schema: unknown): void };
  getProvider(name: 'aws'): { getStage(): string; naming: { getLogGroupLogicalId(functionKey: string): string } };
  classes: { Error: new (message: string, code?: string) => Error };
}

interface Log {
  warning(message: string): void;
  notice?(message: string): void;
  verbose?(message: string): void;
  info?(message: string): void;
}

export default class MiddleManagementPlugin {
  readonly hooks: Record<string, () => void | Promise<void>>;
  private settings?: Settings;
  private context?: Context;
  private readonly log: Log;

  constructor(
    private readonly serverless: Serverless,
    _options: Record<string, unknown>,
    utils?: { log?: Log },
  ) {
    this.log = utils?.log ?? { warning: (message) => process.stderr.write(`middle-management: ${message}\n`) };
    serverless.configSchemaHandler?.defineCustomProperties(blockSchema);
    this.hooks = {
      initialize: () => this.addFunction(),
      'after:package:compileEvents': () => this.addResources(),
    };
  }

  private fail(error: unknown): never {
    const message = error instanceof Error ? error.message : String(error);
    throw new this.serverless.classes.Error(message, 'MIDDLE_MANAGEMENT_CONFIGURATION');
  }

  /** Validate the block and add the function (its key is `manage` unless `functionName` says otherwise). */
  addFunction(): void {
    const { service } = this.serverless;
    // Removing a stack needs none of it (and must not be blocked by a broken block).
    if (this.serverless.processedInput?.commands?.[0] === 'remove') return;
    let settings: Settings;
    try {
      settings = parseSettings(service.custom?.middleManagement);
    } catch (error) {
      if (error instanceof SettingsError) this.fail(error);
      throw error;
    }
    if (service.functions?.[settings.functionKey]) {
      this.fail(
        new SettingsError(
          'functionName',
          `the service already has a function "${settings.functionKey}"; set functionName to another key for the plugin's function`,
        ),
      );
    }
    const stage = this.serverless.getProvider('aws').getStage();
    const context: Context = {
      service: service.service,
      stage,
      functionName: `${service.service}-${stage}-${settings.functionKey}`,
      inVpc: Boolean(service.provider.vpc),
    };
    if (context.functionName.length > 64) {
      this.fail(new SettingsError('functionName', `the function's name "${context.functionName}" is over Lambda's 64 characters`));
    }
    const userResources = service.resources?.Resources ?? {};
    for (const id of [...Object.values(ids)]) {
      if (userResources[id]) this.fail(`resources.Resources.${id}: the name of a resource serverless-middle-management/plugin adds; rename yours`);
    }
    this.settings = settings;
    this.context = context;

    const fn = manageFunction(settings, context);
    if (settings.jwt.length === 0 && !settings.cognito) {
      this.log.warning(
        `${BLOCK}: neither jwt nor cognito is set: the ${settings.functionKey} function will refuse to start until a token issuer is configured.`,
      );
    }
    if (settings.allowList.length === 0) this.log.warning(`${BLOCK}.allowList is empty: no command may run.`);

    if (this.serverless.processedInput?.commands?.[0] === 'offline') {
      // The local stack's issuer, endpoints and tables, for this function only (see ./offline.ts).
      fn.environment = overlayEnvironment(fn.environment as Json);
      const outcome = fixOfflineErrorType(this.serverless.serviceDir);
      if (outcome.status === 'unexpected') {
        this.log.warning(`${BLOCK}: direct invocations will report errorType "Error" instead of the error's name: ${outcome.reason}.`);
      } else {
        this.log.verbose?.(`${BLOCK}: serverless-offline ${outcome.version}: errorType fix ${outcome.status}`);
      }
      this.moveEsbuildOutput();
    }
    service.functions = service.functions ?? {};
    service.functions[settings.functionKey] = fn;
  }

  /**
   * Under `middle-management dev` (MIDDLE_MANAGEMENT_DEV_STATE_DIR set, `offline`
   * only): serverless-esbuild's work folder goes to `<state>/esbuild` instead of
   * the service's `.esbuild/`. serverless-esbuild reads its options in its own
   * `initialize` hook, which runs after this one when this plugin is listed first.
   */
  private moveEsbuildOutput(): void {
    const stateDir = process.env[DEV_STATE_DIR_VARIABLE];
    if (!stateDir) return;
    const plugins = this.serverless.pluginManager?.plugins ?? [];
    const esbuild = plugins.findIndex((plugin) => plugin.constructor?.name === 'EsbuildServerlessPlugin');
    if (esbuild === -1) return;
    if (esbuild < plugins.indexOf(this)) {
      this.log.warning(
        `${BLOCK}: serverless-esbuild is listed before serverless-middle-management/plugin in plugins:, so its build output stays in .esbuild/; list this plugin first to keep it in .middle-management/.`,
      );
      return;
    }
    const { service } = this.serverless;
    service.custom = service.custom ?? {};
    const outcome = pointEsbuildAtStateDir(service.custom, this.serverless.serviceDir, stateDir);
    this.log.verbose?.(
      outcome.status === 'set'
        ? `${BLOCK}: serverless-esbuild's work folder is ${outcome.workFolder}`
        : `${BLOCK}: serverless-esbuild's work folder is left as configured: ${outcome.reason}`,
    );
  }

  /** The tables, role, queue, access logs and route throttling, in the compiled template. */
  addResources(): void {
    const { settings, context } = this;
    if (!settings || !context) return;
    const template = this.serverless.service.provider.compiledCloudFormationTemplate;
    const added = resources(settings, context);
    for (const [id, resource] of Object.entries(added.Resources)) {
      if (template.Resources[id]) this.fail(`${id}: the template already has a resource of that name (serverless-middle-management/plugin adds it)`);
      template.Resources[id] = resource;
    }
    template.Outputs = { ...template.Outputs, ...added.Outputs };

    const stage = template.Resources.HttpApiStage;
    if (!stage) {
      this.log.warning(
        `${BLOCK}: the service uses an HTTP API defined elsewhere (provider.httpApi.id): configure its access logs and throttling there.`,
      );
    } else {
      const dependsOn = new Set<string>([stage.DependsOn ?? []].flat());
      if (!stage.Properties.AccessLogSettings) {
        template.Resources[ids.accessLogGroup] = accessLogGroup(settings, context);
        stage.Properties.AccessLogSettings = {
          DestinationArn: { 'Fn::GetAtt': [ids.accessLogGroup, 'Arn'] },
          Format: ACCESS_LOG_FORMAT,
        };
        dependsOn.add(ids.accessLogGroup);
      } else {
        // The service's own access logs (provider.logs.httpApi): keep them, but never forever.
        const group = template.Resources.HttpApiLogGroup;
        if (group && group.Properties.RetentionInDays === undefined) group.Properties.RetentionInDays = settings.logRetentionInDays;
      }
      // Throttling on the manage routes only: the service's other routes keep their settings.
      const routeSettings: Json = { ...stage.Properties.RouteSettings };
      for (const path of ROUTES) {
        const routeKey = `ANY ${path}`;
        const route = Object.entries(template.Resources).find(
          ([, resource]) => resource.Type === 'AWS::ApiGatewayV2::Route' && resource.Properties.RouteKey === routeKey,
        );
        if (!route) continue;
        routeSettings[routeKey] = {
          ThrottlingBurstLimit: settings.throttling.burstLimit,
          ThrottlingRateLimit: settings.throttling.rateLimit,
        };
        // A route setting may name only a route that exists already.
        dependsOn.add(route[0]);
      }
      stage.Properties.RouteSettings = routeSettings;
      stage.DependsOn = [...dependsOn];
    }

    if (settings.kmsKeyArn) {
      const logGroup = template.Resources[this.serverless.getProvider('aws').naming.getLogGroupLogicalId(settings.functionKey)];
      if (logGroup) logGroup.Properties.KmsKeyId = settings.kmsKeyArn;
    }
  }
}
