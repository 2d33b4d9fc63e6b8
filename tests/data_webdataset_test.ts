// WebDataset shards: tar round trips, brace expansion, local and http shards through the loader, and the
// download task end to end against a faulty scenes server.
import assert from "node:assert/strict";
import { download } from "../data/download_task.ts";
import { StreamingLoader } from "../data/loader.ts";
import { FAULT_REASONS, startScenesServer } from "../data/scenes_server.ts";
import { readTar, TAR_END, tarEntry } from "../data/tar.ts";
import { expandBraces, readShard, ShardWriter, webDatasetSource } from "../data/webdataset.ts";

const streamOf = (...parts: Uint8Array[]) => ReadableStream.from(parts);

Deno.test("tar entries round-trip, in odd chunkings, with long names; corruption is reported", async () => {
  const files = [
    { name: "a/000001.jpg", data: new Uint8Array(1000).map((_, i) => i) },
    { name: "a/000001.txt", data: new TextEncoder().encode("a caption") },
    { name: `${"d".repeat(90)}/${"n".repeat(60)}.json`, data: new Uint8Array(512) },
    { name: "empty.txt", data: new Uint8Array() },
  ];
  const archive = new Uint8Array([...files.flatMap((f) => [...tarEntry(f.name, f.data)]), ...TAR_END]);
  const chunks = Array.from(
    { length: Math.ceil(archive.length / 333) },
    (_, i) => archive.slice(i * 333, (i + 1) * 333),
  );
  const read = await Array.fromAsync(readTar(streamOf(...chunks)));
  assert.deepEqual(read, files);
  const corrupt = archive.slice();
  corrupt[1600] ^= 0xff; // inside the second header
  await assert.rejects(
    Array.fromAsync(readTar(streamOf(corrupt), "x.tar")),
    /x\.tar: bad header checksum at byte 1536/,
  );
  await assert.rejects(
    Array.fromAsync(readTar(streamOf(archive.slice(0, 700)), "y.tar")),
    /y\.tar: truncated entry/,
  );
});

Deno.test("brace expansion", () => {
  assert.deepEqual(expandBraces("s/{0008..0011}.tar"), [
    "s/0008.tar",
    "s/0009.tar",
    "s/0010.tar",
    "s/0011.tar",
  ]);
  assert.deepEqual(expandBraces("{a,b}/{1..2}.tar"), ["a/1.tar", "a/2.tar", "b/1.tar", "b/2.tar"]);
  assert.deepEqual(expandBraces("plain.tar"), ["plain.tar"]);
  assert.throws(() => expandBraces("{5..1}"), /bad range/);
});

Deno.test("download task: a faulty manifest becomes shards that the loader reads back, locally and over http", async () => {
  const server = await startScenesServer({
    seed: 11,
    width: 48,
    counts: { train: 40 },
    faults: { notFound: 0.1, notImage: 0.1, truncated: 0.1 },
  });
  const dir = await Deno.makeTempDir({ prefix: "data_wds_" });
  const shardServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    try {
      return new Response(await Deno.readFile(`${dir}/out${new URL(request.url).pathname}`));
    } catch {
      return new Response("missing", { status: 404 });
    }
  });
  try {
    const manifest = `${dir}/manifest.jsonl`;
    const records = server.records("train");
    await Deno.writeTextFile(manifest, records.map((r) => JSON.stringify(r)).join("\n"));
    const summary = await download([
      manifest,
      `${dir}/out`,
      "--shard-size",
      "10",
      "--min-side",
      "16",
      "--json",
    ]);
    const healthy = records.filter((r) =>
      !FAULT_REASONS[server.faultOf(r.key) as keyof typeof FAULT_REASONS]
    );
    assert.equal(summary.recordsRead, 40);
    assert.equal(summary.samplesWritten, healthy.length);
    assert.equal(summary.shards.length, Math.ceil(healthy.length / 10));
    assert.equal(
      summary.failures.http_status + summary.failures.not_image + summary.failures.decode_error,
      40 - healthy.length,
    );
    JSON.parse(JSON.stringify(summary));

    const first = await Array.fromAsync(readShard(summary.shards[0]));
    assert.equal(first.length, 10);
    assert.deepEqual(Object.keys(first[0].files).sort(), ["jpg", "json", "txt"]);

    const pattern = `http://127.0.0.1:${shardServer.addr.port}/{00000..0000${summary.shards.length - 1}}.tar`;
    for (const source of [`${dir}/out/{00000..0000${summary.shards.length - 1}}.tar`, pattern]) {
      const loader = new StreamingLoader(webDatasetSource(source, 8), {
        imageSize: 16,
        minSide: 16,
        batchSize: 8,
        workers: 1,
      });
      const keys = (await Array.fromAsync(loader)).flatMap((b) => b.keys);
      assert.deepEqual(new Set(keys), new Set(healthy.map((r) => r.key)), source);
      assert.equal(keys.length, healthy.length);
    }
    await assert.rejects(download([manifest]), /usage: deno task download/);

    const writer = new ShardWriter(`${dir}/small`, { maxSamples: 2 });
    for (let i = 0; i < 5; i++) {
      await writer.write(`k${i}`, { txt: new TextEncoder().encode(`caption ${i}`) });
    }
    await writer.close();
    assert.equal(writer.shards.length, 3);
  } finally {
    await shardServer.shutdown();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
