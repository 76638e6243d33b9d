import { Type, defineCommand } from 'serverless-middle-management';
import { greeting, greetingStyles } from '../src/greetings.js';

export default defineCommand({
  description: "Greets someone, in the service's own words (imports the service's own module).",
  args: Type.Object({
    name: Type.String({ minLength: 1, maxLength: 100, description: 'who to greet' }),
    style: Type.Optional(Type.Union(greetingStyles.map((style) => Type.Literal(style)), { default: 'plain' })),
  }),
  run({ name, style }, ctx) {
    const text = greeting(name, style);
    ctx.log(text);
    return { greeting: text };
  },
  plan: ({ name, style }) => ({ wouldSay: greeting(name, style) }),
});
