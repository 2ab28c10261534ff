// A small RFC 4180 CSV reader: quoted fields (with "" escapes, commas and newlines inside), CRLF or LF,
// an optional UTF-8 BOM. Each record keeps the line it starts on, for error messages.

export interface CsvRecord {
  /** 1-based line number where the record starts. */
  line: number;
  cells: string[];
}

export class CsvError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
    this.name = 'CsvError';
  }
}

export function parseCsv(text: string): CsvRecord[] {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  let line = 1;
  let i = 0;
  while (i < src.length) {
    const start = line;
    const cells: string[] = [];
    let cell = '';
    let quoted = false;
    let endOfRecord = false;
    while (i < src.length && !endOfRecord) {
      const c = src[i];
      if (quoted) {
        if (c === '"') {
          if (src[i + 1] === '"') {
            cell += '"';
            i += 2;
          } else {
            quoted = false;
            i++;
            const next = src[i];
            if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') {
              throw new CsvError(line, `line ${line}: unexpected character after a closing quote (quote the whole cell, and write a quote inside it as "")`);
            }
          }
        } else {
          if (c === '\n') line++;
          cell += c;
          i++;
        }
      } else if (c === '"' && cell === '') {
        quoted = true;
        i++;
      } else if (c === ',') {
        cells.push(cell);
        cell = '';
        i++;
      } else if (c === '\n' || c === '\r') {
        i += c === '\r' && src[i + 1] === '\n' ? 2 : 1;
        line++;
        endOfRecord = true;
      } else {
        cell += c;
        i++;
      }
    }
    if (quoted) throw new CsvError(start, `line ${start}: a quoted cell is never closed`);
    cells.push(cell);
    // Blank lines are not records.
    if (!(cells.length === 1 && cells[0].trim() === '')) records.push({ line: start, cells });
  }
  return records;
}
