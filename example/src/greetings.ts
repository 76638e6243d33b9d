/**
 * A module of the service itself (in a real service: its repositories, its
 * database client…): the `greet` command imports it, as a team's own commands
 * import their own code.
 */
export const greetingStyles = ['plain', 'formal', 'pirate'] as const;
export type GreetingStyle = (typeof greetingStyles)[number];

export function greeting(name: string, style: GreetingStyle = 'plain'): string {
  switch (style) {
    case 'formal':
      return `Good day, ${name}.`;
    case 'pirate':
      return `Ahoy, ${name}!`;
    default:
      return `Hello, ${name}!`;
  }
}
