/** One `sealpost` subcommand: parse args, call library code, print, return an exit code. */
export interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}
