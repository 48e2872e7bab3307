export * from "./gateway.js";
export * from "./config.js";
export * from "./auth-setup.js";
export * from "./main.js";
export { restRoutes, type RestRoute } from "./route-table.js";
export { buildOpenApi } from "./openapi.js";
