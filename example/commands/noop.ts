import * as Type from '@sinclair/typebox';
import { defineCommand } from '../../src/command.js';

export default defineCommand({
  description: 'Does nothing; checks that the pipeline, auth and audit work.',
  args: Type.Object({}),
  run: () => null,
  plan: () => ({ wouldDo: 'nothing' }),
});
