/**
 * The project's tables for people: plain, borderless terminal tables in the
 * style of `pulumi stack ls` (every CLI, verify, usage, bench, the catalogue
 * build), and GitHub-flavoured Markdown tables (the pull request comment).
 */
import Table from "cli-table3";

const PLAIN = {
  top: "",
  "top-mid": "",
  "top-left": "",
  "top-right": "",
  bottom: "",
  "bottom-mid": "",
  "bottom-left": "",
  "bottom-right": "",
  left: "",
  "left-mid": "",
  mid: "",
  "mid-mid": "",
  right: "",
  "right-mid": "",
  middle: "  ",
};

export interface TableOptions {
  /** The head as given instead of upper case (a titled section rather than column names). */
  readonly headAsGiven?: boolean;
  /** Put before every row but the head, e.g. "  " to indent a section under its title. */
  readonly indentRows?: string;
}

/** Columns as wide as their widest cell, two spaces apart, no trailing blanks. */
export function renderTable(head: readonly string[], rows: readonly string[][], options: TableOptions = {}): string {
  const table = new Table({
    head: head.map((title) => (options.headAsGiven ? title : title.toUpperCase())),
    chars: PLAIN,
    style: { head: [], border: [], "padding-left": 0, "padding-right": 0 },
  });
  table.push(...rows);
  return table
    .toString()
    .split("\n")
    .map((line, index) => (index > 0 && options.indentRows ? options.indentRows + line : line).trimEnd())
    .join("\n");
}

export function printTable(head: readonly string[], rows: readonly string[][], options: TableOptions = {}): void {
  console.log(renderTable(head, rows, options));
}

/** A Markdown table, one line per row; `align` "right" right-aligns a column (counts). */
export function renderMarkdownTable(head: readonly string[], rows: readonly string[][], align: readonly ("left" | "right")[] = []): string[] {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map((_, column) => (align[column] === "right" ? "---:" : "---"))), ...rows.map(line)];
}
