import { AuthConfigError } from "@clasper/auth";
import { ConfigError } from "@clasper/core";

/**
 * How every Clasper entry point ends a failed start: configuration problems exit 2 with the
 * message alone (it names the variable); anything else is a bug and exits 1 with its stack.
 */
export function failStartup(err: unknown): never {
  if (err instanceof ConfigError || err instanceof AuthConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
