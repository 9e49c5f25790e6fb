/**
 * Structured pay from free text such as "$25–$45/hr", "$64k-$110k annually"
 * or "Up to $50/hour". The text is always kept as-is; the numbers are filled
 * only when the text starts with an amount, so prose that merely mentions a
 * number ("Free basic, $9.99/month Pro version", "80-90% of fare") and
 * values the export truncated ("$25 to...") give nulls, not guesses. An
 * amount followed by words that are not a pay unit ("$3-5 per vehicle per
 * month", "$97-497 for courses") is a price the company charges, not pay,
 * so it gives nulls too; a lone amount ("$20", "15") keeps its numbers.
 */
import type { PayCurrency, PayUnit } from "../schema";

export interface StructuredPay {
  readonly payMin: number | null;
  readonly payMax: number | null;
  readonly payUnit: PayUnit | null;
  readonly payCurrency: PayCurrency | null;
}

const NO_STRUCTURE: StructuredPay = { payMin: null, payMax: null, payUnit: null, payCurrency: null };

const UNIT_BY_WORD: Readonly<Record<string, PayUnit>> = {
  hr: "hour",
  hrs: "hour",
  hour: "hour",
  hours: "hour",
  hourly: "hour",
  trip: "trip",
  trips: "trip",
  delivery: "delivery",
  deliveries: "delivery",
  mi: "mile",
  mile: "mile",
  miles: "mile",
  lb: "pound",
  lbs: "pound",
  day: "day",
  daily: "day",
  wk: "week",
  week: "week",
  weekly: "week",
  mo: "month",
  month: "month",
  monthly: "month",
  yr: "year",
  year: "year",
  annually: "year",
  annual: "year",
  load: "load",
  task: "task",
  run: "run",
  move: "move",
  bag: "bag",
  pet: "pet",
};

const CURRENCY_BY_SYMBOL: Readonly<Record<string, PayCurrency>> = { $: "USD", "€": "EUR", chf: "CHF" };

const NUMBER = String.raw`(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?:\s?([kK])\b)?`;
const CURRENCY = String.raw`(\$|€|CHF\s*)`;
// An optional qualifier, a currency, an amount, an optional "+", then an
// optional second amount after "-" or "to".
const LEADING_AMOUNT = new RegExp(String.raw`^(~|up to\s+|starts at\s+|starting at\s+)?${CURRENCY}${NUMBER}(\+)?(?:\s*(?:-|to)\s*\$?${NUMBER}(\+)?)?`, "i");
// A value that is nothing but an amount or a range: "15", "14.50", "22 to 25", "15€".
const BARE_AMOUNT = new RegExp(String.raw`^${NUMBER}(?:\s*(?:-|to)\s*${NUMBER})?\s*(€)?$`, "i");

function toNumber(digits: string | undefined, decimals: string | undefined, thousands: string | undefined): number | null {
  if (digits === undefined) return null;
  const value = Number(`${digits.replace(/,/g, "")}${decimals === undefined ? "" : `.${decimals}`}`);
  return thousands === undefined ? value : value * 1000;
}

/**
 * The unit named right after the amount: "/hr", "per hour", "per rush
 * delivery", "annually". A "per" naming something that is not a pay unit
 * ("per vehicle per month": a price the company charges) gives null.
 */
function unitAfterAmount(rest: string): PayUnit | null {
  const words = rest.toLowerCase().match(/^\s*(?:\/\s*([a-z]+)|per\s+([a-z]+)(?:\s+([a-z]+))?|([a-z]+))/);
  if (!words) return null;
  const [, afterSlash, afterPer, secondAfterPer, bareWord] = words;
  if (afterSlash !== undefined) return UNIT_BY_WORD[afterSlash] ?? null;
  if (afterPer !== undefined) {
    return UNIT_BY_WORD[afterPer] ?? (secondAfterPer === undefined ? null : (UNIT_BY_WORD[secondAfterPer] ?? null));
  }
  // Only adverbs stand alone after an amount ("$64k-$110k annually").
  if (bareWord !== undefined && /ly$/.test(bareWord)) return UNIT_BY_WORD[bareWord] ?? null;
  return null;
}

export function parsePay(pay: string | null): StructuredPay {
  if (pay === null) return NO_STRUCTURE;
  // The export cut some values short ("$25 to...", "CHF 2..."); their numbers cannot be trusted.
  if (pay.includes("...")) return NO_STRUCTURE;
  const text = pay.trim().replace(/[–—]/g, "-");

  const bare = BARE_AMOUNT.exec(text);
  if (bare) {
    const [, minDigits, minDecimals, minThousands, maxDigits, maxDecimals, maxThousands, euro] = bare;
    const payMin = toNumber(minDigits, minDecimals, minThousands);
    return {
      payMin,
      payMax: toNumber(maxDigits, maxDecimals, maxThousands) ?? payMin,
      payUnit: null,
      payCurrency: euro === undefined ? null : "EUR",
    };
  }

  const leading = LEADING_AMOUNT.exec(text);
  if (!leading) return NO_STRUCTURE;
  const [matched, qualifier, symbol, minDigits, minDecimals, minThousands, openEnded, maxDigits, maxDecimals, maxThousands] = leading;
  const rest = text.slice(matched.length);
  // "$200-500 per camera" is fine, but "$50%" or "$6pm" is not an amount.
  if (/^[a-z%]/i.test(rest)) return NO_STRUCTURE;

  const first = toNumber(minDigits, minDecimals, minThousands);
  const second = toNumber(maxDigits, maxDecimals, maxThousands);
  const qualifierWord = qualifier?.trim().toLowerCase();
  let payMin = first;
  let payMax = second ?? first;
  if (qualifierWord === "up to") payMin = null;
  else if (second === null && (openEnded !== undefined || qualifierWord?.startsWith("start"))) payMax = null;

  const afterAmount = rest.replace(/^\+/, "");
  const payUnit = unitAfterAmount(afterAmount);
  if (payUnit === null && afterAmount.trim() !== "") return NO_STRUCTURE;
  return {
    payMin,
    payMax,
    payUnit,
    payCurrency: CURRENCY_BY_SYMBOL[(symbol ?? "").trim().toLowerCase()] ?? null,
  };
}
