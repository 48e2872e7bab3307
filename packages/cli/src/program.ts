/** The `clasper` command line: bin.ts loads it once the process runs with the right V8 flags. */
import { Command, Option } from "commander";
import { createLogger } from "@clasper/telemetry";
import { exitOnSignals, failStartup, isServiceName, runService, SERVICE_NAMES } from "@clasper/service-kit";
import { runGateway, CLASPER_VERSION } from "@clasper/gateway";
import { initWorkspace } from "./init.js";
import { migrateCommand } from "./migrate.js";
import { SERVICE_MODULES } from "./modules.js";
import { serveAll } from "./serve-all.js";
import { followParent } from "./young-generation.js";

const program = new Command();
program.name("clasper").description("Production runtime for AI agents in multi-tenant SaaS backends").version(CLASPER_VERSION);

program
  .command("serve")
  .description("Start Clasper: every service and the gateway in one process, or one service with --service")
  .addOption(new Option("--service <name>", "run only this component").choices(["gateway", ...SERVICE_NAMES]))
  .action(async (options: { service?: string }) => {
    const logger = createLogger({ serviceName: "clasper-cli" });
    if (options.service === undefined) {
      const system = await serveAll();
      printDevToken(system.url, system.devToken, `database: ${system.database.kind}`);
      exitOnSignals(system.stop, logger);
      return;
    }
    if (options.service === "gateway") {
      const gateway = await runGateway();
      printDevToken(gateway.url, gateway.devToken, "gateway only");
      exitOnSignals(gateway.stop, logger);
      return;
    }
    if (!isServiceName(options.service)) throw new Error(`unknown service ${options.service}`);
    // bin.ts relaunched the trace service with its young generation; stop with the process that did.
    if (options.service === "trace") followParent();
    const running = await runService(SERVICE_MODULES[options.service]);
    exitOnSignals(running.stop, logger);
  });

program
  .command("migrate")
  .description("Apply every service's database migrations (DATABASE_URL, else the embedded database)")
  .action(migrateCommand);

program
  .command("init")
  .description("Create a workspace from the built-in template")
  .argument("[dir]", "target directory", "workspace")
  .option("-f, --force", "overwrite existing files")
  .action(async (dir: string, options: { force?: boolean }) => {
    await initWorkspace(dir, options.force ?? false);
  });

/** Development only (no caller auth configured): the token goes to the terminal, never to logs. */
function printDevToken(url: string, token: string | undefined, detail: string): void {
  if (!token) return;
  process.stdout.write(
    `\nClasper is listening on ${url} (${detail}).\n` +
      `Development token (tenant "dev", role admin):\n\n  ${token}\n\n` +
      `Try: curl -H "Authorization: Bearer $TOKEN" ${url}/retention/policy\n\n`,
  );
}

program.parseAsync().catch(failStartup);
