// RFC 4180 CSV / TSV: quoted fields may hold the delimiter, doubled quotes and newlines, which is
// exactly what LLM captions contain. A line-by-line split would tear such a row in two.

/** Parse delimited text into rows of fields. Throws, naming `source` and the line, on an unclosed quote. */
export function parseDelimited(text: string, delimiter = ",", source = "<text>"): string[][] {
  const rows: string[][] = [];
  let row: string[] = [], field = "", i = 0, line = 1, quoted = false, quoteLine = 0;
  if (text.charCodeAt(0) === 0xfeff) i = 1; // byte-order mark
  const endField = () => (row.push(field), field = "");
  const endRow = () => {
    endField();
    if (row.length > 1 || row[0] !== "") rows.push(row); // skip blank lines
    row = [];
  };
  for (; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') field += '"', i++;
      else if (c === '"') quoted = false;
      else {
        if (c === "\n") line++;
        field += c;
      }
    } else if (c === '"' && field === "") quoted = true, quoteLine = line;
    else if (c === delimiter) endField();
    else if (c === "\n") endRow(), line++;
    else if (c !== "\r") field += c;
  }
  if (quoted) throw new Error(`${source}: unclosed quote opened on line ${quoteLine}`);
  if (field !== "" || row.length) endRow();
  return rows;
}

/** Rows as objects keyed by the header row. Throws when a row's field count differs from the header's. */
export function parseTable(text: string, delimiter = ",", source = "<text>"): Record<string, string>[] {
  const [header, ...rows] = parseDelimited(text, delimiter, source);
  if (!header) return [];
  return rows.map((row, r) => {
    if (row.length !== header.length) {
      throw new Error(`${source}: row ${r + 2} has ${row.length} fields, the header has ${header.length}`);
    }
    return Object.fromEntries(header.map((name, i) => [name.trim(), row[i]]));
  });
}

/** Quote a field when it needs it. */
export function formatField(value: string, delimiter = ","): string {
  return /["\r\n]/.test(value) || value.includes(delimiter) ? `"${value.replaceAll('"', '""')}"` : value;
}

export function formatDelimited(rows: string[][], delimiter = ","): string {
  return rows.map((row) => row.map((f) => formatField(f, delimiter)).join(delimiter)).join("\n") + "\n";
}
