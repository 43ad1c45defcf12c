/** A CLI failure the user can act on: printed as one line without a stack, exit code 1. */
export class CliError extends Error {}
