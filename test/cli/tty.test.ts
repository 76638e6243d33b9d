/**
 * On a terminal: colours (unless NO_COLOR), the spinner, and the confirmation
 * prompt of a `confirm: true` profile. The CLI runs in a pseudo-terminal made by
 * util-linux `script`; where that is missing, these tests are skipped.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { buildCli, fakeServer, makeHome, sendJson, writeConfig, type FakeServer } from './helpers.js';

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
const T = { timeout: 30_000 };
const TOKEN = 'tttttttttttttttt.uuuuuuuuuuuuuuuuuu.vvvvvvvvvvvvvvvvvv';
const SGR_COLOUR = /\u001b\[(?:3[0-9]|9[0-7]|1|2)m/;

interface TtyResult {
  code: number | null;
  output: string;
}

/** Runs the CLI on a pseudo-terminal 100 columns wide; `keys` are typed after `delayMs`. */
function onTerminal(args: string[], env: Record<string, string>, keys = '', delayMs = 800): Promise<TtyResult> {
  const entry = buildCli();
  const command = `stty cols 100 rows 40; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(entry)} ${args.map((a) => `'${a}'`).join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TERM: 'xterm-256color', ...env } });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const typing = setTimeout(() => child.stdin.write(keys), delayMs);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no end on the terminal: ${output}`));
    }, 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(typing);
      resolve({ code, output });
    });
  });
}

describe('mm on a terminal', { skip: !hasScript && 'util-linux script is not installed', timeout: 120_000 }, () => {
  let api: FakeServer;
  const home = makeHome();
  let env: Record<string, string>;

  before(async () => {
    buildCli();
    api = await fakeServer((req, res) => {
      if (req.method === 'GET') {
        return sendJson(res, 200, { commands: [{ name: 'echo', description: 'echo', schema: { type: 'object', properties: { message: { type: 'string' }, password: { type: 'string' } } } }] });
      }
      return sendJson(res, 200, { executionId: '01JTTY000000000000000000000', command: 'echo', status: 'succeeded', result: { ok: 1 }, output: ['line'], startedAt: 'x', finishedAt: 'x', durationMs: 5 });
    });
    writeConfig(home.configDir, { profiles: { prod: { url: api.url, confirm: true } } });
    env = { HOME: home.home, MM_CONFIG_DIR: home.configDir, MM_URL: api.url, MM_TOKEN: TOKEN };
  });

  after(async () => {
    await api?.close();
    home.cleanup();
  });

  test('colours and a spinner on a terminal; no colours with NO_COLOR', T, async () => {
    const coloured = await onTerminal(['run', 'echo', 'message=hi'], env);
    assert.equal(coloured.code, 0, coloured.output);
    assert.match(coloured.output, SGR_COLOUR);
    assert.match(coloured.output, /Running echo \d+s/);
    assert.match(coloured.output, /echo.*succeeded/);
    const plain = await onTerminal(['run', 'echo', 'message=hi'], { ...env, NO_COLOR: '1' });
    assert.equal(plain.code, 0, plain.output);
    assert.doesNotMatch(plain.output, SGR_COLOUR);
    assert.match(plain.output, /echo succeeded in 5 ms/);
    assert.ok(!coloured.output.includes(TOKEN) && !plain.output.includes(TOKEN));
  });

  test('confirm: true shows the command and arguments (secrets hidden) and asks; "n" sends nothing', T, async () => {
    const posts = () => api.requests.filter((r) => r.method === 'POST').length;
    const before = posts();
    const no = await onTerminal(['--profile', 'prod', 'run', 'echo', 'message=careful', 'password=hunter2-hunter2'], env, 'n');
    assert.equal(no.code, 2, no.output);
    assert.match(no.output, /About to run.*echo.*profile prod/);
    assert.match(no.output, /message\s+= "careful"/);
    assert.match(no.output, /password\s+= .*hidden/);
    assert.ok(!no.output.includes('hunter2'));
    assert.match(no.output, /Cancelled: nothing was sent/);
    assert.equal(posts(), before);
    const yes = await onTerminal(['--profile', 'prod', 'run', 'echo', 'message=careful'], env, 'y');
    assert.equal(yes.code, 0, yes.output);
    assert.equal(posts(), before + 1);
    const skip = await onTerminal(['--profile', 'prod', 'run', 'echo', 'message=careful', '--yes'], env);
    assert.equal(skip.code, 0, skip.output);
    assert.doesNotMatch(skip.output, /About to run/);
  });
});
