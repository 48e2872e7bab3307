#!/usr/bin/env node
import { INGEST_SEMI_SPACE_MIB, relaunchWithSemiSpace, servesIngest } from "./young-generation.js";

// V8 sizes the young generation when the process starts, so `serve --service trace` relaunches
// itself with its size (young-generation.ts) before the rest of the command line is loaded: the
// process that only stands in for the child loads nothing else.
if (!(servesIngest(process.argv.slice(2)) && relaunchWithSemiSpace(INGEST_SEMI_SPACE_MIB))) await import("./program.js");
