import { createLogger } from "@clasper/telemetry";
import { exitOnSignals, runService } from "@clasper/service-kit";
import registryService from "./index.js";

// Standalone entry: config → db → migrations → listen → SIGTERM drain.
const running = await runService(registryService);
exitOnSignals(running.stop, createLogger({ serviceName: "clasper-registry" }));
