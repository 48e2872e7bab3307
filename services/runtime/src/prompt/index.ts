// Prompt assembly for the runtime: the system prompt from a resolved workspace, the tools its
// skills allow, and the context-usage warning (docs/RUNTIME.md).
export { assembleSystemPrompt, truncateForPrompt, DEFAULT_MAX_CHARS_PER_FILE, TRUNCATION_MARKER, type AssembleOptions, type AssembledPrompt, type PromptSection } from "./assemble.js";
export { contextWarning, estimateTokens, DEFAULT_CONTEXT_WARNING_THRESHOLD } from "./context.js";
export { allowedTools, enabledSkills, type EnabledSkill } from "./skills.js";
export { isValidTimeZone, systemTimeZone, timeContextSection } from "./time.js";
