import { createLogger } from "@clasper/telemetry";
import { exitOnSignals, runService } from "@clasper/service-kit";
import governanceService from "./index.js";

// Standalone entry: config → db → migrations → listen → SIGTERM drain.
const running = await runService(governanceService);
exitOnSignals(running.stop, createLogger({ serviceName: "clasper-governance" }));
