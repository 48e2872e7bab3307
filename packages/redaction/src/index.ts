export { validateCustomRule } from "./custom.js";
export { DETECTOR_NAMES } from "./detectors/index.js";
export { createRedactor } from "./redactor.js";
export {
  type CustomRule,
  type DetectorName,
  type Finding,
  RedactionConfigError,
  type RedactionStrategy,
  type Redactor,
  type RedactorOptions,
} from "./types.js";
