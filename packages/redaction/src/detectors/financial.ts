import luhn from "fast-luhn";
import { getCountrySpecifications, isValidIBAN } from "ibantools";
import { type Detector, longestValidPrefix } from "./detector.js";

/** Issuer ranges: the first `digits` digits lie in [from, to] and the length is one of `lengths`. */
interface IssuerRange {
  digits: number;
  from: number;
  to: number;
  lengths: readonly number[];
}

const range = (from: number, to: number, lengths: readonly number[]): IssuerRange => ({
  digits: String(from).length,
  from,
  to,
  lengths,
});
const LONG = [16, 17, 18, 19] as const;

const ISSUERS: readonly IssuerRange[] = [
  range(4, 4, [13, 16, 19]), // Visa
  range(51, 55, [16]), // Mastercard
  range(2221, 2720, [16]), // Mastercard 2-series
  range(34, 34, [15]), // American Express
  range(37, 37, [15]),
  range(6011, 6011, LONG), // Discover
  range(644, 649, LONG),
  range(65, 65, LONG),
  range(62, 62, LONG), // UnionPay (includes Discover's 622126-622925)
  range(3528, 3589, LONG), // JCB
  range(300, 305, [14, ...LONG]), // Diners Club
  range(3095, 3095, [14, ...LONG]),
  range(36, 36, [14, ...LONG]),
  range(38, 39, [14, ...LONG]),
  range(2200, 2204, LONG), // Mir
  range(5018, 5018, [13, 15, ...LONG]), // Maestro
  range(5020, 5020, [13, 15, ...LONG]),
  range(5038, 5038, [13, 15, ...LONG]),
  range(5893, 5893, [13, 15, ...LONG]),
  range(6304, 6304, [13, 15, ...LONG]),
  range(6759, 6759, [13, 15, ...LONG]),
  range(6761, 6763, [13, 15, ...LONG]),
];

function hasKnownIssuer(digits: string): boolean {
  return ISSUERS.some((r) => {
    const prefix = Number(digits.slice(0, r.digits));
    return prefix >= r.from && prefix <= r.to && r.lengths.includes(digits.length);
  });
}

/**
 * Printed cards group digits in blocks of 4–6; only the last block may be shorter (a 13-digit
 * number grouped in fours ends in one digit: "4964 3174 4884 6").
 */
function hasCardLayout(candidate: string): boolean {
  const groups = candidate.split(/[ \-]/);
  return groups.slice(0, -1).every((g) => g.length >= 4);
}

function isCard(candidate: string): boolean {
  const digits = candidate.replace(/[ \-]/g, "");
  // Cheapest rejections first: the adversarial case is a long run of near-miss candidates.
  return digits.length >= 13 && luhn(digits) && hasKnownIssuer(digits) && hasCardLayout(candidate);
}

export const creditCard: Detector = {
  name: "credit_card",
  priority: 6,
  anchor: /\d{13}|\d{4}[ \-]\d{3}/,
  // Contiguous, or blocks with one kind of separator (the backreference keeps it consistent).
  pattern: /(?<![\w\-])(?:\d{13,19}|\d{4}([ \-])\d{3,6}(?:\1\d{1,6}){1,3})(?!\w)/g,
  accept: (candidate) => longestValidPrefix(candidate, " -", isCard),
};

const IBAN_LENGTH = new Map(
  Object.entries(getCountrySpecifications()).flatMap(([country, spec]) =>
    spec.chars ? [[country, spec.chars] as const] : [],
  ),
);

/**
 * The candidate may run on into following words ("… 0130 00 EUR"), so take exactly as many
 * characters as the country's IBAN has, then require that the IBAN is not glued to more text.
 */
function acceptIban(candidate: string): number {
  const length = IBAN_LENGTH.get(candidate.slice(0, 2));
  if (length === undefined) return 0;
  let electronic = "";
  let i = 0;
  for (; i < candidate.length && electronic.length < length; i++) {
    if (candidate[i] !== " ") electronic += candidate[i];
  }
  if (electronic.length < length || (i < candidate.length && candidate[i] !== " ")) return 0;
  return isValidIBAN(electronic) ? i : 0;
}

export const iban: Detector = {
  name: "iban",
  priority: 6,
  anchor: /[A-Z]{2}\d{2}/,
  pattern: /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}/g,
  accept: acceptIban,
};

// Never-issued ranges: area 000, 666 and 900–999, group 00, serial 0000.
export const usSsn: Detector = {
  name: "us_ssn",
  priority: 5,
  anchor: /\d{3}-\d{2}-\d{4}/,
  pattern: /(?<![\w\-])(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\w|-\d)/g,
};
