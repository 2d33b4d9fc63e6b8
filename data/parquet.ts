// Parquet manifests (RELAION-POP, LAION) through hyparquet, a pure-JS reader: no native build, works in
// Deno and in the browser. Only the columns we need are read, so wide manifests stay cheap.
import {
  type AsyncBuffer,
  asyncBufferFromUrl,
  parquetMetadataAsync,
  parquetReadObjects,
  parquetSchema,
} from "hyparquet";
import { compressors } from "hyparquet-compressors";

/** Random access into a local file, so that a 10 GB manifest is never read whole. */
async function fileBuffer(path: string): Promise<AsyncBuffer> {
  const { size } = await Deno.stat(path);
  return {
    byteLength: size,
    async slice(start, end = size) {
      using file = await Deno.open(path);
      await file.seek(start, Deno.SeekMode.Start);
      const out = new Uint8Array(end - start);
      for (let off = 0; off < out.length;) {
        const n = await file.read(out.subarray(off));
        if (n === null) throw new Error(`${path}: unexpected end of file at byte ${start + off}`);
        off += n;
      }
      return out.buffer;
    },
  };
}

/** Column names of a Parquet file. */
export async function parquetColumns(source: string): Promise<string[]> {
  const file = await open(source);
  const metadata = await parquetMetadataAsync(file);
  return parquetSchema(metadata).children.map((c) => c.element.name);
}

function open(source: string): Promise<AsyncBuffer> {
  return /^https?:/.test(source) ? asyncBufferFromUrl({ url: source }) : fileBuffer(source);
}

/** Rows of the named columns (those present) as plain objects. Errors name the file. */
export async function readParquetRows(source: string, columns: string[]): Promise<Record<string, unknown>[]> {
  try {
    const file = await open(source);
    const metadata = await parquetMetadataAsync(file);
    const present = new Set(parquetSchema(metadata).children.map((c) => c.element.name));
    const wanted = columns.filter((c) => present.has(c));
    return await parquetReadObjects({ file, metadata, columns: wanted, compressors });
  } catch (e) {
    throw new Error(`${source}: cannot read Parquet: ${e instanceof Error ? e.message : e}`);
  }
}
