#!/usr/bin/env node
import { followParent, INGEST_SEMI_SPACE_MIB, relaunchWithSemiSpace, servesIngest } from "./young-generation.js";

// V8 sizes the young generation when the process starts, so the trace service may have to run in a
// relaunched child (young-generation.ts). That is decided here, before the CLI and every service
// are loaded: a relaunching parent then costs one bare Node start, not a second full one.
if (servesIngest(process.argv.slice(2))) {
  if (!relaunchWithSemiSpace(INGEST_SEMI_SPACE_MIB)) {
    followParent();
    await import("./program.js");
  }
} else {
  await import("./program.js");
}
