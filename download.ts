/**
 * Turn a url-caption manifest into WebDataset shards:
 *
 *   deno task download manifest.parquet out/ [--json] [--caption-column llava_caption] ...
 *
 * Run with no arguments for the options.
 */
import { download, formatSummary } from "./data/download_task.ts";

if (import.meta.main) {
  try {
    const summary = await download(Deno.args);
    console.log(Deno.args.includes("--json") ? JSON.stringify(summary) : formatSummary(summary));
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    Deno.exit(2);
  }
}
