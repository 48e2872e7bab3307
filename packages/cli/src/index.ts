export * from "./serve-all.js";
export * from "./modules.js";
export * from "./init.js";
export * from "./api-doc.js";
