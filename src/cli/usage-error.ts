// Exit codes and the one error type the commands throw for "you asked for something invalid".

export const EXIT_OK = 0;
/** The node ran and failed (could not start, or stopped on a fatal error). */
export const EXIT_FAILURE = 1;
/** Bad command line: unknown command or option, or an invalid value. */
export const EXIT_USAGE = 2;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}
