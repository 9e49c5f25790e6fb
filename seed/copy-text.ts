/**
 * Encoding for `COPY ... FROM STDIN` in PostgreSQL's text format. Values are
 * escaped, never interpolated into SQL, so quotes, backslashes, tabs,
 * newlines and any Unicode arrive exactly as written.
 */

export type CopyValue = string | number | null | readonly string[];

/** A text-format field: `\N` for NULL, and backslash, tab, newline, CR escaped. */
function copyTextField(value: string | null): string {
  if (value === null) return "\\N";
  return value.replace(/[\\\t\n\r]/g, (character) => {
    switch (character) {
      case "\\":
        return "\\\\";
      case "\t":
        return "\\t";
      case "\n":
        return "\\n";
      default:
        return "\\r";
    }
  });
}

/**
 * A PostgreSQL array literal. Every element is double-quoted so that commas,
 * braces, spaces and the word NULL stay plain text.
 */
function arrayLiteral(values: readonly string[]): string {
  return `{${values.map((value) => `"${value.replace(/["\\]/g, "\\$&")}"`).join(",")}}`;
}

function toText(value: CopyValue): string | null {
  if (value === null) return null;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`cannot copy the number ${value}`);
    return String(value);
  }
  if (typeof value === "string") return value;
  return arrayLiteral(value);
}

/** One line of COPY text input, newline included. */
export function copyTextRow(values: readonly CopyValue[]): string {
  return `${values.map((value) => copyTextField(toText(value))).join("\t")}\n`;
}
