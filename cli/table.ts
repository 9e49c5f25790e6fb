/** Plain, borderless tables for terminals, in the style of `pulumi stack ls`. */
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

export function renderTable(head: string[], rows: string[][]): string {
  const table = new Table({
    head: head.map((title) => title.toUpperCase()),
    chars: PLAIN,
    style: { head: [], border: [], "padding-left": 0, "padding-right": 0 },
  });
  table.push(...rows);
  return table
    .toString()
    .split("\n")
    .map((line) => line.trimEnd())
    .join("\n");
}

export function printTable(head: string[], rows: string[][]): void {
  console.log(renderTable(head, rows));
}
