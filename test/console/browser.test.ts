/**
 * The web console in a real browser: Chromium (Debian's package) driven by
 * playwright-core.
 *
 * 1. On the local stack, booted as `npm start` boots it (the example service under
 *    serverless-offline, dynalite, the development OpenID provider): a new user opens
 *    the console URL the stack prints, signs in, runs echo; a request needing
 *    approval is approved by a second user from the deep link.
 * 2. Everything else against the real handler served over loopback HTTP with
 *    dynalite behind it and the development OpenID provider (local/oidc-issuer.ts)
 *    as the trusted issuer (faster to set up, and commands of the test's own).
 *
 * Sign-in always goes through the provider's real form.
 *
 * Without Chromium these tests are skipped, saying how to run them.
 * `CONSOLE_SCREENSHOTS=docs/images` also saves screenshots of the main pages there.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import * as Type from '@sinclair/typebox';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { defineCommand } from '../../src/command.js';
import type { WorkerEvent } from '../../src/handler/worker.js';
import { startOidcIssuer, type RunningOidcIssuer } from '../../local/oidc-issuer.js';
import { freePort, groupAlive } from '../../local/processes.js';
import { serveHandler, type ServedHandler } from '../support/http-server.js';
import { lambdaContext, startStack, type TestStack } from '../support/stack.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HOW = `the browser tests of the web console need Chromium at ${CHROMIUM}: run \`apt-get install -y chromium\` (or set CHROMIUM_PATH), then \`node --import tsx --test test/console/browser.test.ts\``;
const skip = existsSync(CHROMIUM) ? false : `skipped: ${HOW}`;
if (skip) {
  process.stdout.write(`SKIPPED: ${HOW}\n`);
  // One skipped test that says why, so that the run's summary counts it ("# skipped 1").
  it('browser tests of the web console (Chromium)', { skip: `SKIPPED, ${HOW}` }, () => {});
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SHOTS = process.env.CONSOLE_SCREENSHOTS ? resolve(process.env.CONSOLE_SCREENSHOTS) : undefined;
const ATTACK = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2">';

const commands = {
  restart: async () => ({
    default: defineCommand({
      description: 'Restarts a service (needs a second person’s approval).',
      args: Type.Object({
        service: Type.Union([Type.Literal('api'), Type.Literal('worker')], { description: 'which service' }),
        reason: Type.String({ minLength: 3, maxLength: 200, description: 'why, for the audit' }),
      }),
      run: ({ service }, ctx) => {
        ctx.log(`restarting ${service}`);
        return { restarted: service };
      },
    }),
  }),
  render: async () => ({
    default: defineCommand({
      description: 'Returns and logs text that looks like HTML.',
      args: Type.Object({}),
      run: (_args, ctx) => {
        ctx.log(ATTACK);
        return { html: ATTACK };
      },
    }),
  }),
};

/** `npm start` in its own process group, as a terminal runs it; its output collected. */
class NpmStart {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  exitCode: number | null | undefined;

  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn('npm', ['start'], { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.child.on('exit', (code, signal) => (this.exitCode = code ?? (signal ? -1 : null)));
  }

  async ready(timeoutMs = 240_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stdout.includes('local stack is ready')) {
      assert.equal(this.exitCode, undefined, `npm start exited\n${this.stdout}\n${this.stderr}`);
      assert.ok(Date.now() < deadline, `npm start was not ready in time\n${this.stdout}\n${this.stderr}`);
      await new Promise((done) => setTimeout(done, 200));
    }
  }

  /** What the banner says after a label, e.g. `Console`. */
  printed(label: string): string {
    const match = new RegExp(`^  ${label} +(\\S+)`, 'm').exec(this.stdout);
    assert.ok(match, `npm start printed no ${label} line:\n${this.stdout}`);
    return match[1]!;
  }

  /** Ctrl-C to the group; whatever is left after 15 s (offline's group too) is killed. */
  async stop(): Promise<void> {
    const offline = Number(/serverless-offline is process group (\d+)/.exec(this.stderr)?.[1]) || undefined;
    const groups = [this.child.pid!, ...(offline ? [offline] : [])];
    try {
      process.kill(-this.child.pid!, 'SIGINT');
    } catch {
      // gone already
    }
    const deadline = Date.now() + 15_000;
    while (groups.some(groupAlive) && Date.now() < deadline) await new Promise((done) => setTimeout(done, 100));
    for (const group of groups) {
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

/** This machine's environment without what would change the stack (as test/local/stack.test.ts). */
function stackEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('MANAGE_') || key.startsWith('AWS_') || key.startsWith('npm_') || key === 'DEV_ISSUER_FILE') continue;
    env[key] = value;
  }
  return { ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...extra };
}

/**
 * Opens the console in a fresh context and returns the headers its script and style
 * came with, and whether the script ran (the sign-in button is its work).
 */
async function loadAssets(browser: Browser, url: string): Promise<Record<'app.js' | 'app.css', Record<string, string>>> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const seen: Partial<Record<'app.js' | 'app.css', Record<string, string>>> = {};
    page.on('response', async (response) => {
      const name = /\/(app\.(?:js|css))\?/.exec(response.url())?.[1] as 'app.js' | 'app.css' | undefined;
      if (name) seen[name] = await response.allHeaders();
    });
    await page.goto(url);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.ok(seen['app.js'] && seen['app.css'], 'both assets loaded');
    return seen as Record<'app.js' | 'app.css', Record<string, string>>;
  } finally {
    await context.close();
  }
}

describe('the web console on the local stack (npm start), in Chromium', { skip, timeout: 420_000 }, () => {
  let stack: NpmStart;
  let dir: string;
  let browser: Browser;
  let consoleUrl: string;
  let issuerUrl: string;
  let requester: { context: BrowserContext; page: Page };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mm-console-stack-'));
    const ports = { PORT: await freePort(), LAMBDA_PORT: await freePort(), DYNAMODB_PORT: await freePort(), ISSUER_PORT: await freePort() };
    stack = new NpmStart(
      stackEnv({
        ...Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, String(port)])),
        // The developer's example/.middle-management/dev-issuer.json is left alone.
        DEV_ISSUER_FILE: join(dir, 'dev-issuer.json'),
        MANAGE_APPROVAL: JSON.stringify({ noop: ['approvers'] }),
      }),
    );
    await stack.ready();
    consoleUrl = stack.printed('Console');
    issuerUrl = stack.printed('Token issuer');
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    await stack?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Through the dev issuer's own form; back on `at` (the console, or a deep link into it). */
  async function signIn(page: Page, user: string, at: string): Promise<void> {
    await page.goto(at);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${issuerUrl}/interaction/**`);
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(user);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${consoleUrl}**`);
    await page.locator('#who').getByText(user).waitFor();
  }

  it('prints the console URL next to the API’s; a new user opens it, signs in with the dev issuer and runs echo', async () => {
    const port = /localhost:(\d+)/.exec(stack.printed('API'))![1];
    assert.equal(consoleUrl, `http://localhost:${port}/__manage__/console`);
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    requester = { context, page: await context.newPage() };
    const { page } = requester;
    // developer: the default account, in every group (approvers too: the two-person rule still refuses their own request).
    await signIn(page, 'developer', consoleUrl);
    await page.getByRole('link', { name: /^echo/ }).click();
    await page.getByRole('heading', { name: 'Run echo' }).waitFor();
    await page.getByLabel('message (required)').fill('hello from the stack');
    await page.getByRole('button', { name: 'Run' }).click();
    await page.getByRole('heading', { name: /Result/ }).waitFor();
    assert.deepEqual(JSON.parse((await page.getByTestId('result').textContent()) ?? ''), { message: 'hello from the stack' });
  });

  it('its script and style come gzip-compressed through serverless-offline, and run', async () => {
    const assets = await loadAssets(browser, consoleUrl);
    for (const headers of Object.values(assets)) {
      assert.equal(headers['content-encoding'], 'gzip');
      assert.match(headers.vary ?? '', /accept-encoding/i);
    }
  });

  it('a request needing approval: 202 with the deep link, refused to the requester, approved by a second user from the link', async () => {
    const { page } = requester;
    await page.goto(`${consoleUrl}#/commands/noop`);
    await page.getByRole('heading', { name: 'Run noop' }).waitFor();
    const answered = page.waitForResponse((response) => response.request().method() === 'POST' && response.url().endsWith('/__manage__/noop'));
    await page.getByRole('button', { name: 'Run' }).click();
    const response = await answered;
    assert.equal(response.status(), 202);
    const body = await response.json();
    assert.equal(body.status, 'awaiting_approval');
    const deepLink = `${consoleUrl}#/executions/${body.executionId}`;
    assert.equal(body.approveUrl, deepLink, 'the 202 carries the console’s deep link for approvers');
    await page.waitForURL(deepLink);
    await page.getByRole('heading', { name: 'Waiting for approval' }).waitFor();
    assert.equal(await page.locator('#approval-link').textContent(), deepLink);
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'console-approval-link.png'), fullPage: true });
    await page.getByRole('button', { name: 'Approve and run' }).click();
    await page.getByRole('alert').getByText('You cannot decide on your own request').waitFor();
    await page.getByRole('alert').getByText('403 Forbidden').waitFor();

    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const approver = await context.newPage();
    await signIn(approver, 'bob', deepLink);
    assert.equal(approver.url(), deepLink, 'back on the deep link after sign-in');
    await approver.getByRole('heading', { name: 'Waiting for approval' }).waitFor();
    await approver.getByRole('button', { name: 'Approve and run' }).click();
    await approver.locator('#execution-status').getByText('succeeded').waitFor();
    await context.close();
    // The requester's page follows it to the end too.
    await page.reload();
    await page.locator('#execution-status').getByText('succeeded').waitFor();
    await requester.context.close();
  });
});

let issuer: RunningOidcIssuer;
let stack: TestStack;
let served: ServedHandler;
let browser: Browser;
let consoleUrl: string;
const cspViolations: string[] = [];

describe('the web console in Chromium', { skip }, () => {
  before(async () => {
    // The handler is looked up per request: the server's port must be known before the issuer and the stack exist.
    let handler: TestStack['handler'] | undefined;
    served = await serveHandler((event, context) => handler!(event, context));
    consoleUrl = `${served.url}/__manage__/console`;
    issuer = await startOidcIssuer({
      consoleRedirectUris: [consoleUrl],
      accounts: { alice: ['ops', 'approvers'], bob: ['approvers'], audrey: ['auditors'] },
    });
    // Worker invocations run in this process, a moment later, as Lambda's Event invocations would.
    const launcher = {
      async launch(event: WorkerEvent) {
        setTimeout(() => void handler!(event, lambdaContext(900_000)), 20);
      },
    };
    stack = await startStack({
      commands,
      handlerOptions: { launcher },
      env: {
        MANAGE_JWT_ISSUER: issuer.issuer,
        MANAGE_JWT_AUDIENCE: issuer.audience,
        MANAGE_AUDITOR_GROUPS: 'auditors',
        MANAGE_APPROVAL: JSON.stringify({ restart: ['approvers'] }),
        MANAGE_CONSOLE_CLIENT_ID: 'mm-console',
        MANAGE_CONSOLE_RESOURCE: issuer.audience,
      },
    });
    handler = stack.handler;
    const { chromium } = await import('playwright-core');
    // launch() gives every run a fresh temporary profile (user-data-dir).
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await served?.close();
    await issuer?.close();
    await stack?.close();
  });

  /** One person: their own browser context (storage, cookies at the issuer). */
  async function person(viewport = { width: 1280, height: 860 }): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.on('console', (message) => {
      if (/Content.Security.Policy|Trusted Type/i.test(message.text())) cspViolations.push(message.text());
    });
    return { context, page };
  }

  async function signIn(page: Page, user: string, at = consoleUrl): Promise<void> {
    await page.goto(at);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${issuer.issuer}/interaction/**`);
    if (user === 'alice') await shot(page, 'sign-in');
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(user);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${consoleUrl}**`);
    await page.locator('#who').getByText(user).waitFor();
  }

  async function shot(page: Page, name: string): Promise<void> {
    if (SHOTS) await page.screenshot({ path: join(SHOTS, `console-${name}.png`), fullPage: true });
  }

  let alice: { context: BrowserContext; page: Page };
  let approvalUrl: string;

  it('signs in with the issuer (code + PKCE), keeps the token out of the URL and cookies, lists the commands', async () => {
    alice = await person();
    const { page } = alice;
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await signIn(page, 'alice');
    assert.equal(new URL(page.url()).search, '', 'the code is cleared from the address bar');
    await page.getByRole('heading', { name: 'Commands' }).waitFor();
    for (const name of ['echo', 'sleep', 'restart']) await page.getByRole('link', { name: new RegExp(`^${name}`) }).waitFor();
    const storage = await page.evaluate(() => ({ session: sessionStorage.getItem('mm.session'), cookies: document.cookie, local: localStorage.length }));
    assert.ok(storage.session && JSON.parse(storage.session).token.split('.').length === 3);
    assert.equal(storage.cookies, '');
    assert.equal(storage.local, 0);
    const token = JSON.parse(storage.session!).token as string;
    assert.ok(requests.every((url) => !url.includes(token)), 'the token is in no URL');
    assert.ok(requests.some((url) => url.includes('code_challenge=') && url.includes('code_challenge_method=S256')));
    await shot(page, 'commands');
  });

  it('its script and style come gzip-compressed, as API Gateway passes them on (isBase64Encoded), and run', async () => {
    const assets = await loadAssets(browser, consoleUrl);
    for (const headers of Object.values(assets)) {
      assert.equal(headers['content-encoding'], 'gzip');
      assert.equal(headers.vary, 'accept-encoding');
      assert.match(headers['cache-control']!, /immutable/, 'the page links versioned URLs');
    }
  });

  it('runs echo through its form, with the sensitive field as a password input', async () => {
    const { page } = alice;
    await page.getByRole('link', { name: /^echo/ }).click();
    await page.getByRole('heading', { name: 'Run echo' }).waitFor();
    assert.equal(await page.getByLabel('secret').getAttribute('type'), 'password');
    assert.equal(await page.getByLabel('repeat').inputValue(), '1', 'the default is filled in');
    await page.getByLabel('message (required)').fill('hello');
    await page.getByLabel('repeat').fill('2');
    await page.getByLabel('secret').fill('hunter2');
    await page.getByRole('button', { name: 'Run' }).click();
    await page.getByRole('heading', { name: /Result/ }).waitFor();
    assert.deepEqual(JSON.parse(await page.getByTestId('result').textContent() ?? ''), { message: 'hello hello' });
    assert.match(await page.getByTestId('output').textContent() ?? '', /echoing 5 characters 2 time\(s\)/);
    assert.doesNotMatch(await page.locator('main').textContent() ?? '', /hunter2/);
    await shot(page, 'run-echo');
    // A dry run shows the plan.
    await page.getByLabel(/Dry run/).check();
    await page.getByRole('button', { name: 'Run' }).click();
    await page.getByRole('heading', { name: /Plan/ }).waitFor();
    await page.locator('#run-echo-outcome').getByText('"wouldReturn"').waitFor();
    await page.getByLabel(/Dry run/).uncheck();
  });

  it('refuses an invalid argument with the server’s message, before sending anything', async () => {
    const { page } = alice;
    let posts = 0;
    const count = (request: { method(): string }) => void (request.method() === 'POST' && posts++);
    page.on('request', count);
    await page.getByLabel('repeat').fill('11');
    await page.getByLabel('message (required)').fill('');
    await page.getByRole('button', { name: 'Run' }).click();
    const repeatError = page.locator('#run-echo-repeat-error');
    await repeatError.getByText('Expected integer to be less or equal to 10').waitFor();
    await page.locator('#run-echo-message-error').getByText('Expected required property').waitFor();
    assert.equal(await page.getByLabel('repeat').getAttribute('aria-invalid'), 'true');
    assert.equal(posts, 0);
    page.off('request', count);
    await shot(page, 'invalid');
    // The server says the same words for the same data.
    const token = JSON.parse((await page.evaluate(() => sessionStorage.getItem('mm.session')))!).token;
    const server = await stack.http({ path: '/__manage__/echo', token, body: { data: { repeat: 11 } } });
    assert.deepEqual(
      server.body.error.issues.map((i: { message: string }) => i.message),
      ['Expected required property', 'Expected integer to be less or equal to 10'],
    );
  });

  it('starts a long sleep in the background and follows it to the end', async () => {
    const { page } = alice;
    await page.goto(`${consoleUrl}#/commands/sleep`);
    await page.getByRole('heading', { name: 'Run sleep' }).waitFor();
    assert.equal(await page.getByLabel(/Run in the background/).isChecked(), true, 'a command longer than the HTTP window runs in the background');
    await page.getByLabel('ms (required)').fill('1500');
    await page.getByRole('button', { name: 'Run' }).click();
    await page.waitForURL(/#\/executions\/[0-9A-Z]+$/);
    await page.locator('#execution-status').getByText(/accepted|running/).waitFor();
    await shot(page, 'sleep-running');
    await page.locator('#execution-status').getByText('succeeded').waitFor({ timeout: 20_000 });
    await page.getByTestId('output').getByText('slept 1500 ms').waitFor();
  });

  it('asks for approval; the requester cannot approve their own request', async () => {
    const { page } = alice;
    await page.goto(`${consoleUrl}#/commands/restart`);
    await page.getByLabel('service (required)').selectOption({ label: 'worker' });
    await page.getByLabel('reason (required)').fill('deploy 42 is stuck');
    await page.getByRole('button', { name: 'Run' }).click();
    await page.waitForURL(/#\/executions\/[0-9A-Z]+$/);
    await page.getByRole('heading', { name: 'Waiting for approval' }).waitFor();
    approvalUrl = page.url();
    await page.getByRole('button', { name: 'Approve and run' }).click();
    await page.getByRole('alert').getByText('You cannot decide on your own request').waitFor();
    await page.getByRole('alert').getByText('403 Forbidden').waitFor();
  });

  it('a second person opens the deep link, signs in, approves with the keyboard only, and rejects another request', async () => {
    const bob = await person();
    const { page } = bob;
    await signIn(page, 'bob', approvalUrl);
    assert.equal(page.url(), approvalUrl, 'back on the deep link after sign-in');
    await page.getByRole('heading', { name: 'Waiting for approval' }).waitFor();
    const args = JSON.parse((await page.locator('#execution-args').textContent())!);
    assert.deepEqual(args, { service: 'worker', reason: 'deploy 42 is stuck' });
    const digest = (await page.locator('#plan-digest').textContent())!;
    assert.match(digest, /^[0-9a-f]{16,}$/);
    await shot(page, 'approval');
    let sent: unknown;
    page.on('request', (request) => {
      if (request.url().endsWith('/approve')) sent = request.postDataJSON();
    });
    for (let i = 0; i < 40 && (await page.evaluate(() => document.activeElement?.id)) !== 'approve'; i++) await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'approve', 'the approve button is reachable with Tab');
    await page.keyboard.press('Enter');
    await page.locator('#execution-status').getByText('succeeded').waitFor();
    assert.deepEqual(sent, { planDigest: digest });
    assert.match((await page.getByTestId('output').textContent())!, /restarting worker/);

    // A second request, rejected.
    // (sessionStorage belongs to one tab: alice's own tab asks.)
    const again = alice.page;
    await again.goto(`${consoleUrl}#/commands/restart`);
    await again.getByLabel('service (required)').selectOption({ label: 'api' });
    await again.getByLabel('reason (required)').fill('not needed after all');
    await again.getByRole('button', { name: 'Run' }).click();
    await again.waitForURL(/#\/executions\/[0-9A-Z]+$/);
    await page.goto(again.url());
    await page.getByRole('heading', { name: 'Waiting for approval' }).waitFor();
    await page.getByRole('button', { name: 'Reject' }).focus();
    await page.keyboard.press('Enter');
    await page.locator('#execution-status').getByText('rejected').waitFor();

    // The approver is no auditor: his list holds only his own executions (none).
    await page.goto(`${consoleUrl}#/executions`);
    await page.getByText('No executions.').waitFor();
    await bob.context.close();
  });

  it('an auditor lists everyone’s executions and verifies the audit, problems listed', async () => {
    const audrey = await person();
    const { page } = audrey;
    await signIn(page, 'audrey', `${consoleUrl}#/executions`);
    await page.getByRole('heading', { name: 'Executions' }).waitFor();
    await page.getByText('Everyone’s executions').waitFor();
    assert.ok((await page.locator('tbody tr').count()) >= 3);
    await shot(page, 'executions');
    await page.goto(`${consoleUrl}#/audit`);
    await page.getByRole('button', { name: 'Verify the audit trail' }).focus();
    await page.keyboard.press('Enter');
    await page.locator('#audit-verdict').getByText('The audit trail is intact.').waitFor();
    assert.ok((await page.locator('#audit-result tbody tr').count()) >= 3);
    await shot(page, 'audit');
    // Phone width: still one readable column (before the edit below: an altered record is not shown).
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(approvalUrl);
    await page.locator('#execution-status').getByText('succeeded').waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'no sideways scrolling');
    await shot(page, 'execution-phone');
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.goto(`${consoleUrl}#/audit`);
    await page.getByRole('button', { name: 'Verify the audit trail' }).waitFor();
    // Someone edits a record behind the API's back: the verification lists it.
    const items = (await stack.dynamo.client.send(new ScanCommand({ TableName: stack.dynamo.tableName }))).Items ?? [];
    const first = items.find((item) => item.pk?.S?.startsWith('CHAIN#restart') && item.sk?.S === '000000000001')!;
    const record = JSON.parse(first.record!.S!);
    record.args = { ...record.args, reason: 'edited behind the API' };
    await stack.dynamo.client.send(new PutItemCommand({ TableName: stack.dynamo.tableName, Item: { ...first, record: { S: JSON.stringify(record) } } }));
    await page.getByRole('button', { name: 'Verify the audit trail' }).click();
    await page.locator('#audit-verdict').getByText(/has 1 problem/).waitFor();
    assert.match((await page.locator('#audit-problems').textContent())!, /altered in chain restart#\d+ at record 1: the content does not match its hash — execution [0-9A-Z]+/);
    await shot(page, 'audit-problem');

    await audrey.context.close();
  });

  it('shows output that looks like HTML as text: nothing runs', async () => {
    const { page } = alice;
    await page.goto(`${consoleUrl}#/commands/render`);
    await page.getByRole('button', { name: 'Run' }).click();
    await page.getByRole('heading', { name: /Result/ }).waitFor();
    assert.equal(await page.getByTestId('output').textContent(), ATTACK);
    await page.locator(`a[href^="#/executions/"]`).first().click();
    await page.locator('#execution-status').getByText('succeeded').waitFor();
    assert.equal(await page.getByTestId('output').textContent(), ATTACK);
    assert.equal(await page.evaluate(() => (window as any).__pwned), undefined);
    assert.equal(await page.locator('main img, main script').count(), 0);
    await shot(page, 'html-as-text');
  });

  it('the device grant for mm: a person confirms the code in the browser, mm gets a token the API accepts', async () => {
    const discovery = await (await fetch(`${issuer.issuer}/.well-known/openid-configuration`)).json();
    const form = (body: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body) });
    const device = await (await fetch(discovery.device_authorization_endpoint, form({ client_id: 'mm-cli', scope: 'openid' }))).json();
    const { context, page } = await person();
    await page.goto(device.verification_uri);
    await page.getByLabel('Code').fill(device.user_code);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByText(device.user_code).waitFor();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('User name').fill('audrey');
    await page.getByLabel('Password').fill('audrey');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Signed in' }).waitFor();
    await context.close();
    const answer = await (await fetch(discovery.token_endpoint, form({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code, client_id: 'mm-cli' }))).json();
    assert.ok(answer.access_token, JSON.stringify(answer));
    const listed = await stack.http({ method: 'GET', path: '/__manage__/executions', token: answer.access_token });
    assert.equal(listed.status, 200);
    assert.ok(listed.body.executions.length > 0, 'audrey is an auditor: she sees everyone’s executions');
  });

  it('sign-out forgets the token; no CSP violation happened on the way', async () => {
    const { page, context } = alice;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('mm.session')), null);
    await context.close();
    assert.deepEqual(cspViolations, []);
  });
});
