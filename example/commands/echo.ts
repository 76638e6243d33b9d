import { Type, defineCommand } from 'serverless-middle-management';

export default defineCommand({
  description: 'Returns a message, repeated; logs one line.',
  args: Type.Object({
    message: Type.String({ description: 'what to say back', maxLength: 4096 }),
    repeat: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, default: 1, description: 'how many times' })),
    secret: Type.Optional(Type.String({ description: 'a sensitive value: never audited or returned' })),
  }),
  sensitive: ['secret'],
  run({ message, repeat = 1 }, ctx) {
    ctx.log(`echoing ${message.length} characters ${repeat} time(s)`);
    return { message: Array.from({ length: repeat }, () => message).join(' ') };
  },
  plan: ({ message, repeat = 1 }) => ({ wouldReturn: { message: Array.from({ length: repeat }, () => message).join(' ') } }),
});
