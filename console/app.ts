/**
 * The middle-management web console: a hash-routed page over the same bearer
 * API as `mm`. Everything the API returns is put on the page as text
 * (textContent / form values): never parsed as HTML.
 */
import { completeSignIn, currentSession, signIn, signOut, type ConsoleSettings, type Session } from './auth.js';
import { validate, type Issue, type Schema } from './validate.js';

interface CommandSummary {
  name: string;
  description: string;
  schema: Schema;
  timeLimitMs: number;
  exclusive: boolean;
  dryRun: boolean;
  approvers?: string[];
  sensitive?: string[];
}

interface ApiError {
  code: string;
  message: string;
  executionId?: string;
  issues?: Issue[];
}

type Attrs = Record<string, string | number | boolean | undefined | ((event: any) => void)>;
type Child = Node | string | number | null | undefined | false | Child[];

/** Elements and text nodes only: nothing here can turn a string into markup. */
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

const main = () => document.getElementById('main')!;
const settingsFrom = (): ConsoleSettings | undefined => {
  const data = document.body.dataset;
  if (!data.clientId || !data.issuer) return undefined;
  return {
    issuer: data.issuer,
    clientId: data.clientId,
    redirectUri: data.redirectUri || `${location.origin}${location.pathname}`,
    scopes: data.scopes || 'openid',
    tokenUse: data.tokenUse === 'id' ? 'id' : 'access',
    ...(data.resource ? { resource: data.resource } : {}),
  };
};
/** The API's base: the console lives at `<base>/__manage__/console`. */
const apiBase = () => location.pathname.replace(/\/console\/?$/, '');

let session: Session | undefined;
let commandsCache: { commands: CommandSummary[]; httpTimeLimitMs: number } | undefined;
/** Stops the polling of the page that is being left. */
let leave: (() => void) | undefined;

class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly error: ApiError,
  ) {
    super(error.message);
  }
}

async function api(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any }> {
  if (!session) throw new ApiFailure(401, { code: 'Unauthorized', message: 'Sign in first.' });
  const response = await fetch(`${apiBase()}${path}`, {
    method: init.method ?? 'GET',
    credentials: 'omit',
    cache: 'no-store',
    headers: {
      authorization: `Bearer ${session.token}`,
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    signOut();
    session = undefined;
  }
  if (!response.ok) throw new ApiFailure(response.status, body?.error ?? { code: String(response.status), message: response.statusText || 'Request failed.' });
  return { status: response.status, body };
}

function errorBox(error: unknown): HTMLElement {
  if (error instanceof ApiFailure) {
    const { code, message, executionId } = error.error;
    return h(
      'div',
      { class: 'notice error', role: 'alert' },
      h('strong', {}, `${error.status} ${code}`),
      ' ',
      message,
      executionId ? [' ', h('a', { href: `#/executions/${encodeURIComponent(executionId)}` }, `execution ${executionId}`)] : null,
    );
  }
  return h('div', { class: 'notice error', role: 'alert' }, error instanceof Error ? error.message : String(error));
}

function show(title: string, ...content: Child[]): void {
  const root = main();
  root.replaceChildren(h('h1', { tabindex: -1, id: 'page-title' }, title), ...(content.flat(Infinity as 1) as Node[]).filter(Boolean).map((c) => (typeof c === 'string' ? document.createTextNode(c) : (c as Node))));
  document.title = `${title} — middle-management`;
  (document.getElementById('page-title') as HTMLElement).focus();
  for (const link of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    const current = location.hash.startsWith(link.getAttribute('href')!);
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

const pretty = (value: unknown) => (value === undefined ? '' : JSON.stringify(value, null, 2));
const when = (iso?: string) => (iso ? new Date(iso).toLocaleString() : '');
const actorName = (actor: any) =>
  !actor ? '' : actor.kind === 'invoke' ? `invoke ${actor.name}` : `${actor.username ?? actor.subject}${actor.username && actor.username !== actor.subject ? ` (${actor.subject})` : ''}`;
const statusBadge = (status: string) => h('span', { class: `status status-${status}` }, status.replace(/_/g, ' '));
const isMine = (actor: any) => session && actor?.kind === 'token' && actor.subject === session.claims.sub && actor.issuer === session.claims.iss;
const groupsOf = (): string[] => {
  const groups = session?.claims['cognito:groups'] ?? session?.claims.groups;
  return Array.isArray(groups) ? groups.map(String) : typeof groups === 'string' ? [groups] : [];
};

async function loadCommands(force = false) {
  if (!commandsCache || force) commandsCache = (await api('')).body;
  return commandsCache!;
}

// ── Commands ──────────────────────────────────────────────────────────────

async function commandsPage(): Promise<void> {
  const { commands } = await loadCommands(true);
  show(
    'Commands',
    h('p', {}, 'The commands you may run. Pick one to fill in its arguments.'),
    commands.length === 0
      ? h('p', {}, 'You may run no command. Ask for a group that a command requires.')
      : h(
          'ul',
          { class: 'cards' },
          commands.map((command) =>
            h(
              'li',
              {},
              h('a', { href: `#/commands/${encodeURIComponent(command.name)}`, class: 'card' }, h('strong', {}, command.name), h('span', {}, command.description)),
              h(
                'p',
                { class: 'meta' },
                [command.dryRun ? 'dry run' : null, command.exclusive ? 'one at a time' : null, command.approvers ? `needs approval (${command.approvers.join(', ')})` : null, `limit ${formatMs(command.timeLimitMs)}`]
                  .filter(Boolean)
                  .join(' · '),
              ),
            ),
          ),
        ),
  );
}

function formatMs(ms: number): string {
  return ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`;
}

interface Field {
  name: string;
  schema: Schema;
  required: boolean;
  input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
  error: HTMLElement;
}

function choices(schema: Schema): unknown[] | undefined {
  if (Array.isArray(schema.enum)) return schema.enum;
  if (Array.isArray(schema.anyOf) && schema.anyOf.every((v: Schema) => v && 'const' in v)) return schema.anyOf.map((v: Schema) => v.const);
  return undefined;
}

function fieldFor(name: string, schema: Schema, required: boolean, sensitive: boolean, formId: string): Field {
  const id = `${formId}-${name}`;
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  const common = { id, name, 'aria-describedby': `${hintId} ${errorId}`, 'aria-required': required ? 'true' : undefined };
  const options = choices(schema);
  let input: Field['input'];
  if (options) {
    input = h('select', common, required ? null : h('option', { value: '' }, '(none)'), options.map((o) => h('option', { value: JSON.stringify(o) }, String(o))));
    if ('default' in schema) input.value = JSON.stringify(schema.default);
  } else if (schema.type === 'boolean') {
    input = h('input', { ...common, type: 'checkbox' });
    (input as HTMLInputElement).checked = schema.default === true;
  } else if (schema.type === 'integer' || schema.type === 'number') {
    input = h('input', {
      ...common,
      type: 'number',
      inputmode: schema.type === 'integer' ? 'numeric' : 'decimal',
      step: schema.type === 'integer' ? 1 : 'any',
      min: schema.minimum,
      max: schema.maximum,
    });
    if (typeof schema.default === 'number') input.value = String(schema.default);
  } else if (schema.type === 'string') {
    input = h('input', {
      ...common,
      type: sensitive || schema.writeOnly || schema.format === 'password' ? 'password' : 'text',
      autocomplete: sensitive ? 'off' : undefined,
      spellcheck: 'false',
    });
    if (typeof schema.default === 'string') input.value = schema.default;
  } else {
    input = h('textarea', { ...common, rows: 4, spellcheck: 'false' });
    if ('default' in schema) input.value = JSON.stringify(schema.default);
  }
  input.setAttribute('data-field', name);
  // The page checks, with the server's messages: the browser's own bubbles would say other words.
  const limits = [
    schema.type === 'integer' ? 'whole number' : schema.type,
    schema.minimum !== undefined ? `min ${schema.minimum}` : null,
    schema.maximum !== undefined ? `max ${schema.maximum}` : null,
    schema.minLength !== undefined ? `at least ${schema.minLength} characters` : null,
    schema.maxLength !== undefined ? `at most ${schema.maxLength} characters` : null,
    'default' in schema ? `default ${JSON.stringify(schema.default)}` : null,
    sensitive ? 'sensitive: never audited' : null,
    !options && !['string', 'integer', 'number', 'boolean'].includes(schema.type) ? 'JSON' : null,
  ].filter(Boolean);
  const error = h('p', { class: 'field-error', id: errorId, 'aria-live': 'polite' });
  const wrapper = h(
    'div',
    { class: `field${schema.type === 'boolean' ? ' field-check' : ''}` },
    h('label', { for: id }, name, required ? h('span', { class: 'req' }, ' (required)') : null),
    input,
    h('p', { class: 'hint', id: hintId }, [schema.description, limits.join(', ')].filter(Boolean).join(' — ')),
    error,
  );
  (input as any).wrapper = wrapper;
  return { name, schema, required, input, error };
}

/** The form's values as `data`: empty optional fields are left out (the server applies defaults). */
function readFields(fields: Field[]): { data: Record<string, unknown>; parseIssues: Issue[] } {
  const data: Record<string, unknown> = {};
  const parseIssues: Issue[] = [];
  for (const field of fields) {
    const { input, schema, name } = field;
    if (input instanceof HTMLInputElement && input.type === 'checkbox') {
      data[name] = input.checked;
    } else if (input instanceof HTMLSelectElement) {
      if (input.value !== '') data[name] = JSON.parse(input.value);
    } else if (input instanceof HTMLInputElement && input.type === 'number') {
      if (input.value !== '') data[name] = Number(input.value);
      else if (input.validity.badInput) data[name] = input.value;
    } else if (input instanceof HTMLTextAreaElement) {
      if (input.value.trim() !== '') {
        try {
          data[name] = JSON.parse(input.value);
        } catch {
          parseIssues.push({ path: `/${name}`, message: 'Expected JSON' });
        }
      }
    } else if (input.value !== '' || (field.required && schema.type === 'string' && 'minLength' in schema)) {
      data[name] = input.value;
    }
  }
  return { data, parseIssues };
}

function showIssues(fields: Field[], issues: Issue[], summary: HTMLElement): void {
  for (const field of fields) {
    field.error.textContent = '';
    field.input.removeAttribute('aria-invalid');
  }
  summary.replaceChildren();
  if (issues.length === 0) return;
  let first: Field | undefined;
  const others: Issue[] = [];
  for (const issue of issues) {
    const name = issue.path.split('/')[1]?.replace(/~1/g, '/').replace(/~0/g, '~');
    const field = fields.find((f) => f.name === name);
    if (field) {
      field.error.textContent = field.error.textContent ? `${field.error.textContent}; ${issue.message}` : issue.message;
      field.input.setAttribute('aria-invalid', 'true');
      first ??= field;
    } else others.push(issue);
  }
  summary.append(
    h(
      'div',
      { class: 'notice error', role: 'alert' },
      h('strong', {}, 'Invalid arguments'),
      h('ul', {}, issues.map((i) => h('li', {}, h('code', {}, i.path || '/'), ' ', i.message))),
    ),
  );
  first?.input.focus();
  if (!first && others.length) summary.focus();
}

async function commandPage(name: string): Promise<void> {
  const { commands, httpTimeLimitMs } = await loadCommands();
  const command = commands.find((c) => c.name === name);
  if (!command) return show(name, h('div', { class: 'notice error', role: 'alert' }, `Command "${name}" is not allowed.`));
  const schema = command.schema ?? {};
  const properties: Record<string, Schema> = schema.properties ?? {};
  const required: string[] = schema.required ?? [];
  const formId = `run-${command.name}`;
  const fields = Object.entries(properties).map(([key, property]) => fieldFor(key, property, required.includes(key), (command.sensitive ?? []).includes(key), formId));
  const summary = h('div', { tabindex: -1, id: `${formId}-summary` });
  const outcome = h('div', { 'aria-live': 'polite', id: `${formId}-outcome` });
  const long = command.timeLimitMs > httpTimeLimitMs;
  const asyncBox = h('input', { type: 'checkbox', id: `${formId}-async`, name: '__async' });
  asyncBox.checked = long;
  const dryBox = command.dryRun ? h('input', { type: 'checkbox', id: `${formId}-dry`, name: '__dry' }) : undefined;
  const button = h('button', { type: 'submit', class: 'primary' }, 'Run');

  const form = h(
    'form',
    { id: formId, novalidate: true, class: 'run-form' },
    fields.length ? fields.map((f) => (f.input as any).wrapper) : h('p', {}, 'This command takes no arguments.'),
    h(
      'fieldset',
      { class: 'options' },
      h('legend', {}, 'How to run'),
      dryBox ? h('div', { class: 'field-check' }, dryBox, h('label', { for: dryBox.id }, 'Dry run: show the plan, change nothing')) : null,
      h(
        'div',
        { class: 'field-check' },
        asyncBox,
        h('label', { for: asyncBox.id }, `Run in the background and follow its status${long ? ` (recommended: may take up to ${formatMs(command.timeLimitMs)})` : ''}`),
      ),
    ),
    summary,
    button,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const { data, parseIssues } = readFields(fields);
    const issues = parseIssues.length ? parseIssues : validate(schema, data);
    showIssues(fields, issues, summary);
    outcome.replaceChildren();
    if (issues.length) return;
    button.disabled = true;
    button.textContent = 'Running…';
    try {
      const dryRun = dryBox?.checked ?? false;
      const response = await api(`/${encodeURIComponent(command.name)}`, {
        method: 'POST',
        body: { data, ...(dryRun ? { dryRun: true } : {}) },
        headers: { 'idempotency-key': crypto.randomUUID(), ...(asyncBox.checked && !dryRun ? { prefer: 'respond-async' } : {}) },
      });
      if (response.status === 202) {
        location.hash = `#/executions/${encodeURIComponent(response.body.executionId)}`;
        return;
      }
      outcome.replaceChildren(outcomeView(response.body));
      outcome.querySelector<HTMLElement>('h2')?.focus();
    } catch (error) {
      if (error instanceof ApiFailure && error.error.code === 'InvalidArguments' && error.error.issues) showIssues(fields, error.error.issues, summary);
      else outcome.replaceChildren(errorBox(error));
    } finally {
      button.disabled = false;
      button.textContent = 'Run';
    }
  });

  show(
    `Run ${command.name}`,
    h('p', {}, command.description),
    command.approvers ? h('p', { class: 'notice' }, `A member of ${command.approvers.join(', ')} other than you must approve each run.`) : null,
    form,
    outcome,
  );
}

function outcomeView(body: any): HTMLElement {
  return h(
    'section',
    { class: 'outcome', 'aria-labelledby': 'outcome-title' },
    h('h2', { id: 'outcome-title', tabindex: -1 }, body.dryRun ? 'Plan' : 'Result', ' ', statusBadge(body.status)),
    h('p', {}, 'Execution ', h('a', { href: `#/executions/${encodeURIComponent(body.executionId)}` }, h('code', {}, body.executionId)), body.durationMs !== undefined ? ` · ${body.durationMs} ms` : ''),
    body.plan !== undefined ? h('pre', { class: 'json' }, pretty(body.plan)) : null,
    body.result !== undefined ? h('pre', { class: 'json', 'data-testid': 'result' }, pretty(body.result)) : null,
    outputView(body.output),
  );
}

function outputView(lines: unknown): HTMLElement | null {
  if (!Array.isArray(lines) || lines.length === 0) return null;
  return h('div', {}, h('h3', {}, 'Output'), h('pre', { class: 'output', 'data-testid': 'output' }, lines.map(String).join('\n')));
}

// ── Executions ────────────────────────────────────────────────────────────

const FINAL = new Set(['succeeded', 'failed', 'timed_out', 'rejected', 'expired', 'planned']);

async function executionsPage(query: URLSearchParams): Promise<void> {
  const command = query.get('command') ?? '';
  const status = query.get('status') ?? '';
  const cursor = query.get('cursor') ?? '';
  const params = new URLSearchParams({ limit: '25', ...(command ? { command } : {}), ...(cursor ? { cursor } : {}) });
  const { body } = await api(`/executions?${params}`);
  const rows = (body.executions as any[]).filter((e) => !status || e.status === status);
  const auditor = rows.some((e) => !isMine(e.actor));
  const { commands } = await loadCommands().catch(() => ({ commands: [] as CommandSummary[] }));

  const filter = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter executions' },
    h('div', { class: 'field' }, h('label', { for: 'filter-command' }, 'Command'), h('select', { id: 'filter-command', name: 'command' }, h('option', { value: '' }, 'all'), commands.map((c) => h('option', { value: c.name, selected: c.name === command }, c.name)))),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'filter-status' }, 'Status (this page)'),
      h('select', { id: 'filter-status', name: 'status' }, h('option', { value: '' }, 'any'), [...FINAL, 'accepted', 'running', 'awaiting_approval'].map((s) => h('option', { value: s, selected: s === status }, s.replace(/_/g, ' ')))),
    ),
    h('button', { type: 'submit' }, 'Filter'),
  );
  filter.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    const data = new FormData(filter);
    for (const key of ['command', 'status']) if (data.get(key)) next.set(key, String(data.get(key)));
    location.hash = `#/executions${next.size ? `?${next}` : ''}`;
  });
  const nextQuery = new URLSearchParams(query);
  if (body.cursor) nextQuery.set('cursor', body.cursor);
  show(
    'Executions',
    h('p', {}, auditor ? 'Everyone’s executions (you are an auditor), newest first.' : 'Your executions, newest first.'),
    filter,
    rows.length === 0
      ? h('p', {}, 'No executions.')
      : h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            {},
            h('caption', { class: 'visually-hidden' }, 'Executions'),
            h('thead', {}, h('tr', {}, ['Execution', 'Command', 'Status', 'Who', 'Requested'].map((t) => h('th', { scope: 'col' }, t)))),
            h(
              'tbody',
              {},
              rows.map((e) =>
                h(
                  'tr',
                  {},
                  h('td', {}, h('a', { href: `#/executions/${encodeURIComponent(e.executionId)}` }, h('code', {}, e.executionId))),
                  h('td', {}, e.command),
                  h('td', {}, statusBadge(e.status)),
                  h('td', {}, actorName(e.actor)),
                  h('td', {}, when(e.requestedAt ?? e.startedAt)),
                ),
              ),
            ),
          ),
        ),
    h(
      'nav',
      { class: 'paging', 'aria-label': 'Pages' },
      cursor ? h('a', { href: '#/executions' + (command || status ? `?${new URLSearchParams({ ...(command ? { command } : {}), ...(status ? { status } : {}) })}` : '') }, '« First page') : null,
      body.cursor ? h('a', { href: `#/executions?${nextQuery}`, rel: 'next' }, 'Next page »') : null,
    ),
  );
}

async function executionPage(id: string): Promise<void> {
  let timer: number | undefined;
  let alive = true;
  leave = () => {
    alive = false;
    if (timer !== undefined) clearTimeout(timer);
  };
  const render = async (first: boolean): Promise<void> => {
    const { body: record } = await api(`/executions/${encodeURIComponent(id)}`);
    if (!alive) return;
    const live = !FINAL.has(record.status) && record.status !== 'awaiting_approval';
    const content = executionView(record, live);
    if (first) show(`Execution ${id}`, content);
    else {
      const root = main();
      root.replaceChildren(root.firstElementChild!, content);
    }
    if (live) timer = window.setTimeout(() => render(false).catch((error) => main().append(errorBox(error))), 1000);
  };
  await render(true);
}

function executionView(record: any, live: boolean): HTMLElement {
  const fields: [string, Child][] = [
    ['Status', h('span', { id: 'execution-status', 'aria-live': 'polite' }, statusBadge(record.status), live ? ' (updating…)' : '')],
    ['Command', record.command],
    ['Requested by', actorName(record.actor)],
    ['Requested', when(record.requestedAt)],
    ['Started', when(record.startedAt)],
    ['Finished', when(record.finishedAt)],
    ['Duration', record.durationMs !== undefined ? `${record.durationMs} ms` : ''],
    ['Channel', record.source?.channel ?? ''],
    ['Dry run', record.dryRun ? 'yes' : ''],
    ['Decision', record.decision ? `${record.decision.decision} by ${actorName(record.decision.by)} at ${when(record.decision.at)}` : ''],
    ['Plan digest', record.planDigest ? h('code', { id: 'plan-digest' }, record.planDigest) : ''],
    ['Outcome recorded', record.outcomeRecorded === false && FINAL.has(record.status) ? 'no: the run left no outcome record' : ''],
  ];
  return h(
    'div',
    { class: 'execution' },
    h('dl', { class: 'facts' }, fields.filter(([, v]) => v !== '' && v !== undefined).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    h('h2', {}, 'Arguments'),
    h('pre', { class: 'json', id: 'execution-args' }, pretty(record.args ?? {})),
    record.status === 'awaiting_approval' ? approvalPanel(record) : null,
    record.plan !== undefined ? [h('h2', {}, 'Plan'), h('pre', { class: 'json' }, pretty(record.plan))] : null,
    record.result !== undefined ? [h('h2', {}, 'Result'), h('pre', { class: 'json', 'data-testid': 'result' }, pretty(record.result))] : null,
    record.error ? [h('h2', {}, 'Error'), h('p', { class: 'notice error' }, h('strong', {}, record.error.code), ' ', record.error.message)] : null,
    outputView(record.output),
  );
}

function approvalPanel(record: any): HTMLElement {
  const outcome = h('div', { 'aria-live': 'polite' });
  const mine = isMine(record.actor);
  const decide = (decision: 'approve' | 'reject') => async () => {
    for (const b of buttons) b.disabled = true;
    try {
      const { body } = await api(`/executions/${encodeURIComponent(record.executionId)}/${decision}`, {
        method: 'POST',
        body: decision === 'approve' ? { planDigest: record.planDigest } : {},
      });
      outcome.replaceChildren(h('p', { class: 'notice ok', role: 'status' }, `${decision === 'approve' ? 'Approved' : 'Rejected'}: now ${String(body.status).replace(/_/g, ' ')}.`));
      window.setTimeout(() => route(), 600);
    } catch (error) {
      outcome.replaceChildren(errorBox(error));
      for (const b of buttons) b.disabled = false;
    }
  };
  const buttons = [
    h('button', { type: 'button', class: 'primary', id: 'approve', onclick: decide('approve') }, 'Approve and run'),
    h('button', { type: 'button', class: 'danger', id: 'reject', onclick: decide('reject') }, 'Reject'),
  ];
  return h(
    'section',
    { class: 'approval', 'aria-labelledby': 'approval-title' },
    h('h2', { id: 'approval-title' }, 'Waiting for approval'),
    h('p', {}, mine ? 'You asked for this run; a second person must approve it. The server refuses your own approval.' : `${actorName(record.actor)} asks to run ${record.command} with the arguments below.`),
    mine ? h('p', {}, 'Send an approver this link: ', h('code', { id: 'approval-link' }, `${location.origin}${location.pathname}#/executions/${encodeURIComponent(record.executionId)}`)) : null,
    h('p', {}, 'Approving sends the plan digest ', h('code', {}, record.planDigest ?? '(none)'), ': if the request changed since you read it, the server refuses.'),
    h('div', { class: 'actions' }, buttons),
    outcome,
  );
}

async function approvalsPage(): Promise<void> {
  const waiting: any[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 5; page++) {
    const { body } = await api(`/executions?${new URLSearchParams({ limit: '100', ...(cursor ? { cursor } : {}) })}`);
    waiting.push(...body.executions.filter((e: any) => e.status === 'awaiting_approval'));
    cursor = body.cursor;
    if (!cursor) break;
  }
  const others = waiting.filter((e) => !isMine(e.actor));
  const mine = waiting.filter((e) => isMine(e.actor));
  const list = (items: any[]) =>
    h(
      'ul',
      { class: 'approvals' },
      items.map((e) =>
        h(
          'li',
          {},
          h('a', { href: `#/executions/${encodeURIComponent(e.executionId)}` }, h('strong', {}, e.command), ' ', h('code', {}, e.executionId)),
          h('span', {}, ` by ${actorName(e.actor)}, ${when(e.requestedAt)}`),
          h('pre', { class: 'json' }, pretty(e.args ?? {})),
        ),
      ),
    );
  show(
    'Approvals',
    h('h2', {}, 'Waiting for you'),
    others.length ? list(others) : h('p', {}, 'Nothing waits for your approval.'),
    h('h2', {}, 'Your requests waiting for someone else'),
    mine.length ? list(mine) : h('p', {}, 'None.'),
    groupsOf().includes('auditors') ? null : h('p', { class: 'hint' }, 'Requests by others show here if you may read them (auditors); an approver can always open the link the requester sends.'),
  );
}

// ── Audit ─────────────────────────────────────────────────────────────────

async function auditPage(): Promise<void> {
  const result = h('div', { 'aria-live': 'polite', id: 'audit-result' });
  const button = h('button', { type: 'button', class: 'primary', id: 'verify' }, 'Verify the audit trail');
  button.addEventListener('click', async () => {
    button.disabled = true;
    result.replaceChildren(h('p', {}, 'Verifying…'));
    try {
      const { body } = await api('/audit/verify');
      result.replaceChildren();
      append(result, [
        h('p', { class: `notice ${body.ok ? 'ok' : 'error'}`, role: 'status', id: 'audit-verdict' }, body.ok ? 'The audit trail is intact.' : `The audit trail has ${body.problems.length} problem(s).`, body.keyed ? ' (keyed HMAC chains)' : ' (plain SHA-256 chains: shows accidental edits, not a forger’s)'),
        body.problems.length
          ? h(
              'ul',
              { class: 'problems', id: 'audit-problems' },
              body.problems.map((p: any) =>
                h(
                  'li',
                  {},
                  h('strong', {}, String(p.problem ?? 'problem').replace(/_/g, ' ')),
                  ` in chain ${p.chain ?? '?'} at record ${p.seq ?? '?'}: ${p.detail ?? ''}`,
                  p.executionId ? [' — ', h('a', { href: `#/executions/${encodeURIComponent(p.executionId)}` }, `execution ${p.executionId}`)] : null,
                ),
              ),
            )
          : null,
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            {},
            h('caption', {}, 'Chains'),
            h('thead', {}, h('tr', {}, ['Chain', 'Records', 'Problems'].map((t) => h('th', { scope: 'col' }, t)))),
            h('tbody', {}, body.chains.map((c: any) => h('tr', {}, h('td', {}, c.chain), h('td', {}, c.records), h('td', {}, c.problems?.length ?? 0)))),
          ),
        ),
      ]);
    } catch (error) {
      result.replaceChildren(errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  show('Audit', h('p', {}, 'Checks every command’s hash chain: a record changed, removed or inserted shows as a problem. Auditors only.'), button, result);
}

// ── Shell ─────────────────────────────────────────────────────────────────

function signedOutPage(settings: ConsoleSettings | undefined, problem?: unknown): void {
  renderHeader();
  if (!settings) {
    show(
      'Console not set up',
      h('p', {}, 'This console has no sign-in settings. Set MANAGE_CONSOLE_CLIENT_ID (a public client of your issuer, with this page as its redirect URI) on the manage function; see docs/console.md.'),
    );
    return;
  }
  const button = h('button', { type: 'button', class: 'primary', id: 'sign-in' }, 'Sign in');
  button.addEventListener('click', () => {
    button.disabled = true;
    signIn(settings, location.hash || '#/commands').catch((error) => {
      button.disabled = false;
      main().append(errorBox(error));
    });
  });
  show('Sign in', problem ? errorBox(problem) : null, h('p', {}, 'Sign in with ', h('code', {}, new URL(settings.issuer).host), ' to run, watch, approve and audit commands.'), button);
}

function renderHeader(): void {
  const user = document.getElementById('user')!;
  if (!session) return void user.replaceChildren();
  const out = h('button', { type: 'button', id: 'sign-out' }, 'Sign out');
  out.addEventListener('click', () => {
    signOut();
    session = undefined;
    commandsCache = undefined;
    signedOutPage(settingsFrom());
  });
  const name = String(session.claims.username ?? session.claims['cognito:username'] ?? session.claims.sub ?? '');
  user.replaceChildren(h('span', { id: 'who' }, name, groupsOf().length ? h('span', { class: 'groups' }, ` (${groupsOf().join(', ')})`) : null), out);
}

async function route(): Promise<void> {
  leave?.();
  leave = undefined;
  session = currentSession();
  if (!session) return signedOutPage(settingsFrom());
  renderHeader();
  const [path = '', search = ''] = location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === 'commands' && parts[1]) await commandPage(parts[1]);
    else if (parts[0] === 'executions' && parts[1]) await executionPage(parts[1]);
    else if (parts[0] === 'executions') await executionsPage(new URLSearchParams(search));
    else if (parts[0] === 'approvals') await approvalsPage();
    else if (parts[0] === 'audit') await auditPage();
    else await commandsPage();
  } catch (error) {
    if (!session) return signedOutPage(settingsFrom(), error);
    show('Something went wrong', errorBox(error));
  }
}

async function start(): Promise<void> {
  const settings = settingsFrom();
  if (settings) {
    try {
      const back = await completeSignIn(settings);
      if (back !== undefined) {
        if (back !== location.hash) history.replaceState(null, '', `${location.pathname}${back}`);
      }
    } catch (error) {
      return signedOutPage(settings, error);
    }
  }
  window.addEventListener('hashchange', () => void route());
  await route();
}

void start();
