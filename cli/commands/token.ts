/** `mm token` (the one command that prints a token), `mm login`, `mm logout`. */
import { Exit } from '../errors.js';
import { colors, errLine, outLine, outRaw, writeSecretToStdout } from '../io.js';
import { subjectOf } from '../auth/cache.js';
import type { Session } from '../session.js';

export async function printToken(session: Session): Promise<number> {
  const token = await session.auth.token();
  writeSecretToStdout(token);
  return Exit.Ok;
}

export async function login(session: Session): Promise<number> {
  const signedIn = await session.auth.login();
  const who = signedIn.subject ?? subjectOf(signedIn.token);
  const until = signedIn.expiresAt ? new Date(signedIn.expiresAt).toISOString() : undefined;
  if (session.json) {
    outRaw(JSON.stringify({ profile: session.profileName ?? null, method: session.auth.method ?? null, subject: who ?? null, expiresAt: until ?? null }));
  } else {
    outLine(
      `${colors.out.green('✔')} Signed in${who ? ` as ${who}` : ''}${session.profileName ? ` (profile ${session.profileName})` : ''}${until ? `; token valid until ${until}` : ''}.`,
    );
    if (!session.profileName) errLine(colors.err.dim('No profile: the token was not cached.'));
  }
  return Exit.Ok;
}

export async function logout(session: Session): Promise<number> {
  const removed = session.auth.logout();
  if (session.json) outRaw(JSON.stringify({ profile: session.profileName ?? null, removed }));
  else outLine(removed ? `Removed the cached token of profile ${session.profileName}.` : 'No cached token to remove.');
  return Exit.Ok;
}
