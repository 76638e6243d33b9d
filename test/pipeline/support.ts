/** Rooms built over in-memory stores, for the pipeline's own tests. */
import { Type } from '@sinclair/typebox';
import { defineCommand, type Actor, type CommandLoader } from '../../src/command.js';
import { loadConfig, type ManageConfig } from '../../src/config.js';
import { createPipeline } from '../../src/pipeline/index.js';
import { MemoryAuditStore } from '../../src/stores/audit/memory.js';
import { MemoryStateStore } from '../../src/stores/state/store.js';
import type { WorkerEvent } from '../../src/handler/worker.js';

export const ran: string[] = [];

export const commands: Record<string, CommandLoader> = {
  touch: async () => ({
    default: defineCommand({
      description: 'Records that it ran.',
      args: Type.Object({ label: Type.String(), token: Type.Optional(Type.String()) }),
      sensitive: ['token'],
      run: ({ label }, ctx) => {
        ran.push(label);
        ctx.log(`touched ${label}`);
        return { label };
      },
      plan: ({ label }) => ({ wouldTouch: label }),
    }),
  }),
  guarded: async () => ({
    default: defineCommand({ description: 'Needs ops.', args: Type.Object({}), groups: ['ops'], scopes: ['mm/run'], run: () => 'ok' }),
  }),
  broken: () => Promise.reject(new Error('module failed to load')),
  hidden: async () => ({ default: defineCommand({ description: 'Not allowed.', args: Type.Object({}), run: () => 'no' }) }),
};

export function config(env: Record<string, string> = {}): ManageConfig {
  return loadConfig(
    {
      MANAGE_ALLOW_LIST: 'touch,guarded',
      MANAGE_JWT_ISSUER: 'https://issuer.example.com',
      MANAGE_JWT_AUDIENCE: 'mm',
      MANAGE_AUDIT_TABLE: 'audit',
      MANAGE_AUDITOR_GROUPS: 'auditors',
      AWS_REGION: 'us-east-1',
      ...env,
    },
    Object.keys(commands),
  );
}

export const user = (subject: string, groups: string[] = [], scopes: string[] = []): Actor => ({
  kind: 'token',
  issuer: 'https://issuer.example.com',
  subject,
  groups,
  scopes,
});

export function rooms(env: Record<string, string> = {}) {
  const audit = new MemoryAuditStore();
  const state = new MemoryStateStore();
  const queued: WorkerEvent[] = [];
  const logs: Array<{ level: string; event: string }> = [];
  const pipeline = createPipeline({
    config: config(env),
    audit,
    state,
    commands,
    logger: { log: (level, event) => void logs.push({ level, event }) },
    launcher: { launch: async (event) => void queued.push(event) },
  });
  return { ...pipeline, audit, state, queued, logs };
}

export const request = (command: string, data: Record<string, unknown>, actor: Actor, extra: Record<string, unknown> = {}) => ({
  command,
  data,
  dryRun: false,
  actor,
  source: { channel: 'http' as const },
  maxTimeMs: 10_000,
  ...extra,
});
