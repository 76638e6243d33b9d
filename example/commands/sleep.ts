import { setTimeout as wait } from 'node:timers/promises';
import { Type, defineCommand } from 'serverless-middle-management';

export default defineCommand({
  description: 'Waits a number of milliseconds; stops early when its time limit aborts it.',
  args: Type.Object({
    ms: Type.Integer({ minimum: 0, maximum: 900_000, description: 'how long to wait' }),
  }),
  timeLimitMs: 900_000,
  async run({ ms }, ctx) {
    const started = Date.now();
    try {
      await wait(ms, undefined, { signal: ctx.signal });
    } catch (error) {
      if (!ctx.signal.aborted) throw error;
      ctx.log(`aborted after ${Date.now() - started} ms`);
      throw new Error(`sleep aborted after ${Date.now() - started} of ${ms} ms`);
    }
    ctx.log(`slept ${ms} ms`);
    return { sleptMs: ms };
  },
  plan: ({ ms }) => ({ wouldSleepMs: ms }),
});
