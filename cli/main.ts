/**
 * `mm` (alias `middle-management`): the operators' client of the
 * middle-management API. This file only declares the commands; each one's
 * code is loaded when it runs, so that `mm --help` starts fast.
 */
import { Command, CommanderError, Option } from 'commander';
import { registerDev } from './commands/dev.js';
import { CliError, EXIT_CODE_HELP, Exit } from './errors.js';
import { colors, err, errLine, exit, outRaw } from './io.js';
import type { GlobalOptions, Session } from './session.js';

const VERSION = typeof __MM_VERSION__ === 'string' ? __MM_VERSION__ : 'dev';

const ENVIRONMENT_HELP = `Environment:
  MM_PROFILE         profile to use (--profile wins)
  MM_URL             API base URL, over the profile's (--url wins)
  MM_TOKEN           bearer token, over any sign-in (--token wins)
  MM_CLIENT_SECRET   client secret (client credentials, device grant, Cognito SECRET_HASH);
                     over the one stored by mm configure --client-secret
  MM_CLIENT_ID, MM_TOKEN_URL, MM_SCOPE, MM_AUDIENCE, MM_RESOURCE
                     client-credentials sign-in without a profile (CI)
  MM_USERNAME, MM_PASSWORD, MM_MFA_CODE, MM_NEW_PASSWORD
                     Cognito sign-in without prompts
  AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER, AWS_ENDPOINT_URL
                     Cognito endpoint (over the profile's --cognito-endpoint)
  MM_CONFIG_DIR      configuration directory (default $XDG_CONFIG_HOME/middle-management
                     or ~/.config/middle-management)
  NO_COLOR           no colours (colours are only ever used on a terminal)`;

const EXAMPLES = `Examples:
  mm configure                                  # create a profile interactively
  mm commands                                   # what may I run, with arguments
  mm run echo message=hello repeat=2            # run and print the result
  mm run echo --data-json '{"message":"hi"}' --json | jq .result
  mm run sleep ms=600000 --wait                 # long run: submit, then follow it
  mm executions --command echo --limit 5
  mm show 01JB2X…`;

type Action = (session: Session, ...args: any[]) => Promise<number>;

function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

/** Runs an action with a session; every failure becomes a report and an exit code. */
function act(action: Action) {
  return async (...args: any[]) => {
    const command = args.at(-1) as Command;
    const options = globals(command);
    let session: Session | undefined;
    try {
      const { Session } = await import('./session.js');
      session = new Session(options);
      process.exitCode = await action(session, ...args.slice(0, -1));
    } catch (error) {
      process.exitCode = report(error, session, options);
    }
  };
}

/** For commands that work without a session (no profile required). */
function actPlain(action: (options: GlobalOptions, ...args: any[]) => Promise<number> | number) {
  return async (...args: any[]) => {
    const options = globals(args.at(-1) as Command);
    try {
      process.exitCode = await action(options, ...args.slice(0, -1));
    } catch (error) {
      process.exitCode = report(error, undefined, options);
    }
  };
}

function report(error: unknown, session: Session | undefined, options: GlobalOptions): number {
  if (error instanceof CliError) {
    if (session) session.report(error);
    else if (options.json) outRaw(error.jsonText());
    else errLine(`${colors.err.red('✖')} ${error.message}`);
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  const unexpected = new CliError(Exit.Service, 'UnexpectedError', `Unexpected error: ${message}`);
  if (options.json) outRaw(unexpected.jsonText());
  else errLine(`${colors.err.red('✖')} ${unexpected.message}`);
  if (process.env.MM_DEBUG && error instanceof Error && error.stack) err(`${error.stack}\n`);
  return Exit.Service;
}

export function buildProgram(argv: string[] = []): Command {
  // --json asks for JSON on stdout even for a mistyped command line.
  const jsonMode = argv.includes('--json');
  const program = new Command('mm')
    .description('Run allow-listed maintenance commands on middle-management over its authenticated, audited API.')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .option('-p, --profile <name>', 'profile from the config file (default: $MM_PROFILE, then the default profile)')
    .option('--url <url>', 'API base URL (overrides $MM_URL and the profile)')
    .option('--token <token>', 'bearer token (overrides $MM_TOKEN and sign-in; prefer MM_TOKEN: flags show in ps)')
    .option('--client-id <id>', 'client id for client-credentials sign-in')
    .option('--json', 'print the raw JSON response body only (on stdout), errors included')
    .showSuggestionAfterError(true)
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('after', `\n${EXAMPLES}\n\n${ENVIRONMENT_HELP}\n\n${EXIT_CODE_HELP}\n\nDocs: docs/cli.md\n`)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => process.stdout.write(text),
      writeErr: (text) => process.stderr.write(text),
      outputError: (text, write) => {
        if (jsonMode) outRaw(new CliError(Exit.Usage, 'UsageError', text.replace(/^error: /, '').trim()).jsonText());
        else write(colors.err.red(text));
      },
    });

  program
    .command('run')
    .description('run a command: arguments as key=value, typed by the command\'s schema')
    .argument('<command>', 'command name (see mm commands)')
    .argument('[args...]', 'arguments: key=value (typed by the schema), key:=<json> (taken as JSON)')
    .option('--data-json <json>', 'arguments as one JSON object (key=value pairs are applied on top)')
    .option('--data-file <file>', 'arguments from a JSON file ("-" for stdin)')
    .option('--dry-run', 'ask the command for its plan instead of running it')
    .option('--idempotency-key <key>', 'the Idempotency-Key to send (default: a random UUID); re-use it to retry safely')
    .option('--async', 'submit and return at once: prints the execution id')
    .option('--wait', 'submit, then follow the execution until it ends (default for commands longer than the HTTP window)')
    .option('--no-wait', 'run synchronously even if the command is long')
    .option('--wait-timeout <seconds>', 'with --wait: give up waiting after this long (e.g. 900, 15m); exit 5')
    .option('-y, --yes', 'do not ask for confirmation (profiles with confirm: true)')
    .addHelpText(
      'after',
      `
Argument types come from the command's JSON Schema (GET /__manage__):
  integer/number  repeat=3  ratio=0.5        boolean  force=true (true/false/yes/no/1/0)
  array           ids=1,2,3  or  ids='[1,2]'  (repeating the key appends)
  object          filter='{"a":1}'           any JSON value  key:='"007"'
Unknown keys and bad values stop with exit 2 before anything is sent.

Output: status, duration, execution id, result and the command's output lines;
with --json exactly the response body. Exit code: 0 succeeded, 1 failed, 5 timed out (see mm --help).
`,
    )
    .action(act(async (session, name: string, words: string[], options) => (await import('./commands/run.js')).run(session, name, words, options)));

  program
    .command('commands')
    .description('list the commands you may run, with their arguments')
    .action(act(async (session) => (await import('./commands/read.js')).listCommands(session)));

  program
    .command('executions')
    .description('list executions, newest first (yours; all of them for auditors)')
    .option('-c, --command <name>', 'only this command')
    .option('-n, --limit <n>', 'how many (1–100, default 20)')
    .option('--cursor <cursor>', 'the next page (printed after a full page)')
    .action(act(async (session, options) => (await import('./commands/read.js')).listExecutions(session, options)));

  program
    .command('show')
    .description('show one execution: status, actor, arguments, timings, result or error, output')
    .argument('<executionId>', 'execution id (from mm run or mm executions)')
    .action(act(async (session, id: string) => (await import('./commands/read.js')).show(session, id)));

  for (const decision of ['approve', 'reject'] as const) {
    const command = program
      .command(decision)
      .description(
        decision === 'approve'
          ? 'approve an execution that awaits approval (two-person rule): it then runs'
          : 'reject an execution that awaits approval: it never runs',
      )
      .argument('<executionId>', 'execution id');
    if (decision === 'approve') {
      command
        .option('--wait', 'follow the execution until it ends (the default when the approved run goes to a worker)')
        .option('--no-wait', 'do not follow an approved run that went to a worker')
        .option('--wait-timeout <seconds>', 'with --wait: give up waiting after this long; exit 5')
        .option('-y, --yes', 'do not ask for confirmation (profiles with confirm: true)');
    }
    command.action(act(async (session, id: string, options) => (await import('./commands/decide.js')).decide(session, decision, id, options)));
  }

  program
    .command('audit')
    .description('audit trail tools')
    .command('verify')
    .description('verify the audit trail\'s hash chains on the server; exit 0 if intact, 1 if not')
    .option('-c, --command <name>', 'only this command\'s chain')
    .option('--since <time>', 'only records since an ISO-8601 time or an age (30m, 24h, 7d)')
    .action(act(async (session, options) => (await import('./commands/audit.js')).verifyAudit(session, options)));

  program
    .command('token')
    .description('print a bearer token for the profile (signing in if needed): the only command that prints one')
    .action(act(async (session) => (await import('./commands/token.js')).printToken(session)));

  program
    .command('login')
    .description('sign in with the profile\'s method now and cache the token')
    .option('--new-password-from-env <var>', 'cognito: if a new password is required, take it from this environment variable (no prompt)')
    .action(act(async (session) => (await import('./commands/token.js')).login(session)));

  program
    .command('logout')
    .description('forget the profile\'s cached token')
    .action(act(async (session) => (await import('./commands/token.js')).logout(session)));

  program
    .command('configure')
    .description('create or change a profile (asks on a terminal; flags answer without asking)')
    .option('--auth <method>', 'sign-in: cognito, device, client_credentials, command or token')
    .option('--region <region>', 'cognito: AWS region of the user pool')
    .option('--user-pool-id <id>', 'cognito: user pool id (gives the region)')
    .option('--username <name>', 'cognito: username (else asked at sign-in)')
    .option('--cognito-endpoint <url>', 'cognito: another Cognito IdP endpoint (VPC endpoint, emulator); AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER wins')
    .option('--token-url <url>', 'client_credentials: token endpoint')
    .option('--issuer <url>', 'device: OIDC issuer')
    .option('--scope <scopes>', 'client_credentials/device: scopes')
    .option('--audience <aud>', 'client_credentials/device: audience parameter (Auth0, Okta), if the issuer needs one')
    .addOption(
      new Option('--resource <uri>', 'client_credentials/device: RFC 8707 resource indicator of the API (repeat for several; "" removes)').argParser(
        (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
      ),
    )
    .option('--client-secret <secret>', 'client secret, stored in <config dir>/secrets/<profile>.json (0600); "-" reads it from stdin, "" removes it')
    .option('--client-auth <basic|post>', 'client_credentials/device: how the client secret is sent (default basic)')
    .option('--token-use <access|id>', 'cognito/device: send the access token (default) or the id token')
    .option('--token-command <cmd>', 'command: a shell command that prints a token')
    .option('--output <human|json>', 'default output format')
    .option('--confirm', 'ask before every run (e.g. production)')
    .option('--no-confirm', 'do not ask before runs')
    .option('--default', 'make it the default profile')
    .action(
      actPlain(async (options) => {
        const { configure } = await import('./commands/profiles.js');
        return configure(options as never);
      }),
    );

  program
    .command('profiles')
    .description('list profiles, the active one, and whether a token is cached')
    .action(
      actPlain(async (options) => {
        const { listProfiles } = await import('./commands/profiles.js');
        return listProfiles(options);
      }),
    );

  registerDev(program);

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram(argv);
  if (argv.length === 0) {
    program.outputHelp();
    return Exit.Ok;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') {
        return Exit.Ok;
      }
      return Exit.Usage;
    }
    throw error;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : Exit.Ok;
}

main(process.argv.slice(2)).then(
  (code) => exit(code),
  (error: unknown) => {
    errLine(`✖ Unexpected error: ${error instanceof Error ? error.message : String(error)}`);
    return exit(Exit.Service);
  },
);
