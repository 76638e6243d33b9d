import { Type, defineCommand } from 'serverless-middle-management';

export default defineCommand({
  description: 'Does nothing; checks that the pipeline, auth and audit work.',
  args: Type.Object({}),
  run: () => null,
  plan: () => ({ wouldDo: 'nothing' }),
});
