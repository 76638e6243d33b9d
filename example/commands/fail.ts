import { Type, defineCommand } from 'serverless-middle-management';

export default defineCommand({
  description: 'Throws an error; checks how failures are reported and audited.',
  args: Type.Object({
    message: Type.Optional(Type.String({ maxLength: 4096, description: 'the error message' })),
  }),
  run({ message }) {
    throw new Error(message ?? 'fail: this command always fails');
  },
});
