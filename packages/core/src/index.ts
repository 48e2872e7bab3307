export * from "./errors.js";
export * from "./config.js";
export * from "./ids.js";
export * from "./enum-names.js";
