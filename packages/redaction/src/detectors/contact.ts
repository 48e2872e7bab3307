import { parsePhoneNumberFromString } from "libphonenumber-js/max";
import { type Detector, longestValidPrefix, whole } from "./detector.js";

const LOCAL = "[A-Za-z0-9._%+\\-]";
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9\\-]{0,61}[A-Za-z0-9])?";

// No top-level domain is a file extension, but asset names look like addresses: "icon@2x.png".
const FILE_EXTENSIONS = new Set(["png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "js", "mjs", "ts", "css", "json", "map", "pdf"]);

export const email: Detector = {
  name: "email",
  priority: 5,
  anchor: /@/,
  pattern: new RegExp(
    `(?<!${LOCAL})${LOCAL}{1,64}@(?:${LABEL}\\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9\\-])`,
    "g",
  ),
  accept: whole((candidate) => !FILE_EXTENSIONS.has(candidate.slice(candidate.lastIndexOf(".") + 1).toLowerCase())),
};

// International: "+" country code, then tokens that each start with a separator or a
// parenthesised group, so the split into tokens is unambiguous. National: NANP layouts only;
// bare digit runs are never phones (they are order ids, timestamps and amounts far more often).
const SEP = "[ .\\-]";
const INTERNATIONAL = `\\+[1-9]\\d{0,14}(?:(?:${SEP}|${SEP}?\\(\\d{1,4}\\)${SEP}?)\\d{1,10}){0,7}`;
const NANP = `(?:1${SEP})?(?:\\(\\d{3}\\)${SEP}?|\\d{3}${SEP})\\d{3}${SEP}\\d{4}`;

/** No numbering plan has fewer digits, including the country code; spares the parser most runs. */
const MIN_DIGITS = 7;

function isValidPhone(text: string): boolean {
  if (text.replace(/\D/g, "").length < MIN_DIGITS) return false;
  const international = text.startsWith("+");
  const parsed = parsePhoneNumberFromString(text, international ? undefined : { defaultCountry: "US" });
  return parsed?.isValid() === true;
}

export const phone: Detector = {
  name: "phone",
  priority: 4,
  // International numbers open with "+" and a digit; every national layout ends "ddd-dddd".
  anchor: /\+[1-9]|\d{3}[ .\-]\d{4}/,
  pattern: new RegExp(`(?<![\\w+.\\-/])(?:${INTERNATIONAL}|${NANP})(?!\\w|[.\\-]\\d)`, "g"),
  // National layouts are exact; only international ones can run on into a following number.
  accept: (candidate) =>
    candidate.startsWith("+") ? longestValidPrefix(candidate, " .-(", isValidPhone) : isValidPhone(candidate) ? candidate.length : 0,
};
