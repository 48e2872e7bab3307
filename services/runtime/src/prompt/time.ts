import { invalidField } from "@clasper/core";

interface ZoneFormatters {
  date: Intl.DateTimeFormat;
  time: Intl.DateTimeFormat;
  offset: Intl.DateTimeFormat;
}

// Building an Intl.DateTimeFormat costs far more than using one; there are only a few hundred zones.
const formatters = new Map<string, ZoneFormatters>();

function formattersFor(timeZone: string): ZoneFormatters {
  let f = formatters.get(timeZone);
  if (!f) {
    f = {
      date: new Intl.DateTimeFormat("en-US", { timeZone, weekday: "long", year: "numeric", month: "long", day: "numeric" }),
      time: new Intl.DateTimeFormat("en-US", { timeZone, hour: "numeric", minute: "2-digit", hour12: true }),
      offset: new Intl.DateTimeFormat("en-US", { timeZone, timeZoneName: "longOffset" }),
    };
    formatters.set(timeZone, f);
  }
  return f;
}

let processZone: string | undefined;

/** The zone of this process (TZ, else the system's), resolved once: building the formatter costs more than the prompt. */
export function systemTimeZone(): string {
  processZone ??= new Intl.DateTimeFormat().resolvedOptions().timeZone;
  return processZone;
}

/** Whether `timeZone` is an IANA zone name (or "UTC") this Node knows. For validating configuration. */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    formattersFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/**
 * "## Current Time" for `now` in `timeZone`: date, 12-hour time and the zone with its UTC offset.
 * An unknown zone is the caller's input (metadata.timezone), so it is a 400 naming that field.
 */
export function timeContextSection(now: Date, timeZone: string): string {
  // The text changes once a minute; formatting costs more than the rest of the prompt together.
  const minute = Math.floor(now.getTime() / 60_000);
  const last = lastSection.get(timeZone);
  if (last && last.minute === minute) return last.text;
  const text = formatSection(now, timeZone);
  lastSection.set(timeZone, { minute, text });
  return text;
}

const lastSection = new Map<string, { minute: number; text: string }>();

function formatSection(now: Date, timeZone: string): string {
  let f: ZoneFormatters;
  try {
    f = formattersFor(timeZone);
  } catch {
    throw invalidField("metadata.timezone", `unknown time zone "${timeZone}" (use an IANA name such as "Europe/Paris" or "UTC")`);
  }
  const gmt = f.offset.formatToParts(now).find((p) => p.type === "timeZoneName")?.value ?? "GMT";
  // ICU writes a zero offset as "GMT" or "GMT+00:00" depending on version; always show the number.
  const offset = gmt === "GMT" ? "UTC+00:00" : gmt.replace(/^GMT/, "UTC");
  return ["## Current Time", "", `- Date: ${f.date.format(now)}`, `- Time: ${f.time.format(now)}`, `- Timezone: ${timeZone} (${offset})`].join("\n");
}
