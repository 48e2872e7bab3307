export * from "./serve-all.js";
export * from "./modules.js";
export * from "./init.js";
