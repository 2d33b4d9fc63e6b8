// Manifest readers: every format becomes CaptionRecord[]. Rows are mapped leniently (a row without a
// url still becomes a record) so that the loader counts them as `bad_record` rather than losing them.
import { parseTable } from "./csv.ts";
import { readParquetRows } from "./parquet.ts";
import type { CaptionRecord } from "./types.ts";

export interface RecordOptions {
  /** Column holding the caption. Default: the first present of cogvlm_caption, llava_caption,
   * caption, text, TEXT (RELAION-POP has cogvlm_caption and llava_caption). */
  captionColumn?: string;
  /** Folder holding the images, for Flickr / COCO annotations that name files rather than URLs. */
  imageRoot?: string;
  /** Keep only this split of a Karpathy-split JSON ("train" also takes "restval"). */
  split?: "train" | "val" | "test";
}

const URL_COLUMNS = ["url", "URL", "image_url", "img_url"];
const KEY_COLUMNS = ["key", "id", "image_id", "uid"];
const CAPTION_COLUMNS = ["cogvlm_caption", "llava_caption", "caption", "text", "TEXT", "captions"];

function firstPresent(row: Record<string, unknown>, names: string[]): unknown {
  for (const name of names) if (row[name] !== undefined && row[name] !== null) return row[name];
  return undefined;
}

/** Map one row with url / key / caption columns to a record. */
export function rowToRecord(
  row: Record<string, unknown>,
  index: number,
  opts: RecordOptions = {},
): CaptionRecord {
  const caption = opts.captionColumn ? row[opts.captionColumn] : firstPresent(row, CAPTION_COLUMNS);
  const captions = (Array.isArray(caption) ? caption : [caption])
    .filter((c) => typeof c === "string" && c.trim() !== "") as string[];
  const key = firstPresent(row, KEY_COLUMNS);
  const num = (v: unknown) => (v === undefined || v === null || v === "" ? undefined : Number(v));
  return {
    key: key === undefined ? String(index).padStart(9, "0") : String(key),
    url: String(firstPresent(row, URL_COLUMNS) ?? "").trim(),
    captions,
    width: num(row.width),
    height: num(row.height),
  };
}

export async function readText(source: string): Promise<string> {
  if (!/^https?:/.test(source)) return await Deno.readTextFile(source);
  const response = await fetch(source, { signal: AbortSignal.timeout(60_000) });
  if (!response.ok) throw new Error(`${source}: HTTP ${response.status}`);
  return await response.text();
}

export function parseJsonl(text: string, source: string, opts: RecordOptions = {}): CaptionRecord[] {
  const records: CaptionRecord[] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new Error(`${source}:${i + 1}: invalid JSON: ${(e as Error).message}`);
    }
    if (typeof row !== "object" || row === null) throw new Error(`${source}:${i + 1}: not a JSON object`);
    records.push(rowToRecord(row as Record<string, unknown>, records.length, opts));
  });
  return records;
}

function fileUrl(root: string | undefined, name: string, source: string): string {
  if (!root) throw new Error(`${source}: names image files, so imageRoot is required`);
  const base = new URL(root.endsWith("/") ? root : root + "/", `file://${Deno.cwd()}/`);
  return new URL(name, base).href;
}

/** Karpathy split JSON (dataset_flickr30k.json, dataset_flickr8k.json, dataset_coco.json). */
export function parseKarpathy(json: unknown, source: string, opts: RecordOptions = {}): CaptionRecord[] {
  const images = (json as { images?: unknown }).images;
  if (!Array.isArray(images)) throw new Error(`${source}: no "images" array (not a Karpathy split file)`);
  const splitOk = (s: string) =>
    !opts.split || s === opts.split || (opts.split === "train" && s === "restval");
  return images.filter((im) => splitOk(im.split)).map((im) => ({
    key: String(im.imgid ?? im.filename),
    url: fileUrl(opts.imageRoot, im.filepath ? `${im.filepath}/${im.filename}` : im.filename, source),
    captions: (im.sentences ?? []).map((s: { raw: string }) => s.raw),
  }));
}

/** COCO captions_*.json: images plus annotations joined on image_id; URLs are coco_url unless imageRoot. */
export function parseCoco(json: unknown, source: string, opts: RecordOptions = {}): CaptionRecord[] {
  const { images, annotations } = json as { images?: unknown[]; annotations?: unknown[] };
  if (!Array.isArray(images) || !Array.isArray(annotations)) {
    throw new Error(`${source}: needs "images" and "annotations" arrays (not a COCO captions file)`);
  }
  const captions = new Map<unknown, string[]>();
  for (const a of annotations as { image_id: unknown; caption: string }[]) {
    captions.set(a.image_id, [...captions.get(a.image_id) ?? [], a.caption]);
  }
  return (images as { id: unknown; file_name: string; coco_url?: string; width?: number; height?: number }[])
    .map((im) => ({
      key: String(im.id),
      url: opts.imageRoot ? fileUrl(opts.imageRoot, im.file_name, source) : im.coco_url ?? "",
      captions: captions.get(im.id) ?? [],
      width: im.width,
      height: im.height,
    }));
}

/** Flickr token file: "1000268201_693b08cb0e.jpg#0<TAB>A child in a pink dress ..." per line. */
export function parseFlickrTokens(text: string, source: string, opts: RecordOptions = {}): CaptionRecord[] {
  const byImage = new Map<string, string[]>();
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const m = /^([^#\t]+)#\d+\t(.*)$/.exec(line.trimEnd());
    if (!m) throw new Error(`${source}:${i + 1}: expected "<image>#<n><TAB><caption>"`);
    byImage.set(m[1], [...byImage.get(m[1]) ?? [], m[2]]);
  });
  return [...byImage].map(([name, captions]) => ({
    key: name.replace(/\.[^.]+$/, ""),
    url: fileUrl(opts.imageRoot, name, source),
    captions,
  }));
}

/** Read any supported manifest, chosen by extension: .parquet, .jsonl/.ndjson, .csv, .tsv, .json
 * (Karpathy split, COCO captions, or an array of rows), .token / .txt (Flickr token file). */
export async function readRecords(source: string, opts: RecordOptions = {}): Promise<CaptionRecord[]> {
  const ext = new URL(source, `file://${Deno.cwd()}/`).pathname.toLowerCase().split(".").pop();
  if (ext === "parquet") {
    const columns = [...URL_COLUMNS, ...KEY_COLUMNS, "width", "height", opts.captionColumn ?? CAPTION_COLUMNS]
      .flat();
    return (await readParquetRows(source, columns)).map((row, i) => rowToRecord(row, i, opts));
  }
  const text = await readText(source);
  if (ext === "jsonl" || ext === "ndjson") return parseJsonl(text, source, opts);
  if (ext === "csv" || ext === "tsv") {
    return parseTable(text, ext === "csv" ? "," : "\t", source).map((row, i) => rowToRecord(row, i, opts));
  }
  if (ext === "token" || ext === "txt") return parseFlickrTokens(text, source, opts);
  if (ext === "json") {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`${source}: invalid JSON: ${(e as Error).message}`);
    }
    if (Array.isArray(json)) return json.map((row, i) => rowToRecord(row, i, opts));
    if ((json as { annotations?: unknown }).annotations) return parseCoco(json, source, opts);
    return parseKarpathy(json, source, opts);
  }
  throw new Error(`${source}: unknown manifest format ".${ext}" (parquet, jsonl, csv, tsv, json, token)`);
}
