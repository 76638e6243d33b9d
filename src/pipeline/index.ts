/**
 * The pipeline's rooms, built once per Lambda instance. Transports call the
 * room a request belongs to; the rooms share the policy (who may) and the
 * recorder (how the audit is written). Dependencies point one way:
 *
 *   running ──► deferring ──► task-tokens
 *      │            │
 *      └──────► recorded-run ──► run.ts, rails.ts
 *   reading        all of them ──► policy, recorder ──► stores
 */
import { Deferring } from './deferring.js';
import { Policy } from './policy.js';
import { Reading } from './reading.js';
import { RecordedRuns } from './recorded-run.js';
import { Recorder } from './recorder.js';
import { Running } from './running.js';
import { TaskTokens } from './task-tokens.js';
import type { PipelineDependencies } from './types.js';

export type * from './types.js';
export type { Running, Deferring, Reading };

export interface Pipeline {
  /** Run requests (HTTP `POST /__manage__/{command}`, direct invocations). */
  running: Running;
  /** Approval decisions and worker invocations. */
  deferring: Deferring;
  /** The read routes. */
  reading: Reading;
}

export function createPipeline(deps: PipelineDependencies): Pipeline {
  const now = deps.now ?? Date.now;
  const { config, audit, state, logger } = deps;
  const policy = new Policy({ config, commands: deps.commands, logger });
  const recorder = new Recorder({ config, audit, state, logger, now });
  const runs = new RecordedRuns({ state, policy, recorder, logger, now });
  const tasks = new TaskTokens({ state, recorder, logger, now, ...(deps.reporter ? { reporter: deps.reporter } : {}) });
  const deferring = new Deferring({ config, state, logger, now, policy, recorder, runs, tasks, ...(deps.launcher ? { launcher: deps.launcher } : {}) });
  return {
    running: new Running({ config, state, now, policy, recorder, runs, deferring, tasks }),
    deferring,
    reading: new Reading({ config, audit, policy, recorder }),
  };
}
