// Errors that know how the command ends: each class of this kit carries the
// exit code of its cause (src/shared/exit-codes.ts), and an error that wraps
// another keeps it as `cause`, as connect-es's ConnectError does. The entry
// points (src/bin/*.ts, scripts/gen-certs.ts) then end every failure the same
// way, through describeFailure, with no table of their own.
import * as exit from './exit-codes.js';

/** The base of every error class with a known cause; subclasses set `exitCode` and `name`. */
export abstract class KitError extends Error {
  abstract readonly exitCode: number;
}

export interface Failure {
  /** One line for standard error: the message a person acts on. */
  message: string;
  exitCode: number;
}

/**
 * How any thrown value ends a command. A KitError ends with its own code and
 * message; anything else is a bug here, so its stack is printed, exit 1.
 */
export function describeFailure(err: unknown): Failure {
  if (err instanceof KitError) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof Error) return { message: err.stack ?? err.message, exitCode: exit.UNEXPECTED };
  return { message: String(err), exitCode: exit.UNEXPECTED };
}
