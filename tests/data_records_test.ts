// Manifest formats (round trips through each writer we have) and caption cleaning.
import assert from "node:assert/strict";
import { parquetWriteBuffer } from "hyparquet-writer";
import { cleanCaption, cleanCaptions, sentences } from "../data/clean.ts";
import { formatDelimited, parseDelimited } from "../data/csv.ts";
import { readRecords } from "../data/records.ts";

async function tempFile(name: string, contents: string | Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "data_records_" });
  const path = `${dir}/${name}`;
  if (typeof contents === "string") await Deno.writeTextFile(path, contents);
  else await Deno.writeFile(path, contents);
  return path;
}

const TRICKY = [
  ["key", "url", "caption"],
  ["a1", "http://x/1.jpg", 'She said "hi", then left.\nA second line, with a comma.'],
  ["a2", "http://x/2.jpg", "tab\there and a trailing space "],
  ["a3", "", "no url on this row at all"],
];

Deno.test("CSV and TSV: quoted fields, doubled quotes and embedded newlines survive a round trip", async () => {
  for (const [ext, delimiter] of [["csv", ","], ["tsv", "\t"]]) {
    const text = formatDelimited(TRICKY, delimiter);
    assert.deepEqual(parseDelimited(text, delimiter), TRICKY);
    assert.deepEqual(parseDelimited(text.replaceAll("\n", "\r\n"), delimiter).length, 4);
    const records = await readRecords(await tempFile(`m.${ext}`, text));
    assert.equal(records.length, 3);
    assert.equal(records[0].captions[0], TRICKY[1][2]);
    assert.equal(records[2].url, "", "a row without url is kept, for the loader to count");
  }
  await assert.rejects(
    readRecords(await tempFile("bad.csv", 'key,url\n1,"open')),
    /bad\.csv: unclosed quote opened on line 2/,
  );
  await assert.rejects(
    readRecords(await tempFile("ragged.csv", "key,url\n1,2,3\n")),
    /ragged\.csv: row 2 has 3 fields/,
  );
});

Deno.test("JSONL rows, with the caption column selectable; errors name file and line", async () => {
  const rows = [
    { key: "k1", url: "http://x/1.jpg", cogvlm_caption: "cog one two", llava_caption: "llava one two" },
    { key: "k2", url: "http://x/2.jpg", cogvlm_caption: "cog three four", llava_caption: "llava three four" },
  ];
  const path = await tempFile("m.jsonl", rows.map((r) => JSON.stringify(r)).join("\n") + "\n\n");
  assert.deepEqual((await readRecords(path)).map((r) => r.captions[0]), ["cog one two", "cog three four"]);
  const llava = await readRecords(path, { captionColumn: "llava_caption" });
  assert.deepEqual(llava.map((r) => [r.key, r.url, r.captions[0]]), [
    ["k1", "http://x/1.jpg", "llava one two"],
    ["k2", "http://x/2.jpg", "llava three four"],
  ]);
  await assert.rejects(
    readRecords(await tempFile("bad.jsonl", '{"url": 1}\n{oops\n')),
    /bad\.jsonl:2: invalid JSON/,
  );
  await assert.rejects(readRecords(await tempFile("m.xml", "<x/>")), /m\.xml: unknown manifest format/);
});

Deno.test("Parquet in the RELAION-POP schema round-trips, caption column selectable", async () => {
  const n = 50;
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: "key", data: Array.from({ length: n }, (_, i) => `k${i}`), type: "STRING" },
      {
        name: "url",
        data: Array.from({ length: n }, (_, i) => `https://img.example/${i}.jpg`),
        type: "STRING",
      },
      { name: "width", data: Array.from({ length: n }, (_, i) => 640 + i), type: "INT32" },
      { name: "height", data: Array.from({ length: n }, () => 480), type: "INT32" },
      {
        name: "cogvlm_caption",
        data: Array.from({ length: n }, (_, i) => `a cogvlm caption number ${i}`),
        type: "STRING",
      },
      {
        name: "llava_caption",
        data: Array.from({ length: n }, (_, i) => `a llava caption number ${i}`),
        type: "STRING",
      },
    ],
  });
  const path = await tempFile("pop.parquet", new Uint8Array(buffer));
  const records = await readRecords(path);
  assert.equal(records.length, n);
  assert.deepEqual(records[7], {
    key: "k7",
    url: "https://img.example/7.jpg",
    captions: ["a cogvlm caption number 7"],
    width: 647,
    height: 480,
  });
  const llava = await readRecords(path, { captionColumn: "llava_caption" });
  assert.equal(llava[49].captions[0], "a llava caption number 49");
  await assert.rejects(
    readRecords(await tempFile("junk.parquet", "not parquet at all")),
    /junk\.parquet: cannot read Parquet/,
  );
});

Deno.test("Flickr (Karpathy JSON and token file) and COCO captions", async () => {
  const karpathy = {
    dataset: "flickr8k",
    images: [
      {
        imgid: 0,
        filename: "a.jpg",
        split: "train",
        sentences: [{ raw: "A dog runs." }, { raw: "A brown dog." }],
      },
      { imgid: 1, filename: "b.jpg", split: "restval", sentences: [{ raw: "Two cats sleep." }] },
      { imgid: 2, filename: "c.jpg", split: "test", sentences: [{ raw: "A red car." }] },
    ],
  };
  const kpath = await tempFile("dataset_flickr8k.json", JSON.stringify(karpathy));
  const train = await readRecords(kpath, { imageRoot: "/data/flickr/", split: "train" });
  assert.deepEqual(train.map((r) => [r.key, r.url, r.captions.length]), [
    ["0", "file:///data/flickr/a.jpg", 2],
    ["1", "file:///data/flickr/b.jpg", 1],
  ]);
  await assert.rejects(
    readRecords(kpath),
    /dataset_flickr8k\.json: names image files, so imageRoot is required/,
  );

  const tokens = "a.jpg#0\tA dog runs .\na.jpg#1\tA brown dog .\nb.jpg#0\tTwo cats sleep .\n";
  const flickr = await readRecords(await tempFile("Flickr8k.token.txt", tokens), { imageRoot: "/imgs" });
  assert.deepEqual(flickr.map((r) => [r.key, r.url, r.captions]), [
    ["a", "file:///imgs/a.jpg", ["A dog runs .", "A brown dog ."]],
    ["b", "file:///imgs/b.jpg", ["Two cats sleep ."]],
  ]);
  await assert.rejects(
    readRecords(await tempFile("bad.token", "no tab here\n"), { imageRoot: "/" }),
    /bad\.token:1/,
  );

  const coco = {
    images: [{ id: 9, file_name: "9.jpg", coco_url: "http://coco/9.jpg" }, { id: 10, file_name: "10.jpg" }],
    annotations: [{ image_id: 9, caption: "A plate of food." }, { image_id: 9, caption: "Food on a plate." }],
  };
  const cocoRecords = await readRecords(await tempFile("captions_val2017.json", JSON.stringify(coco)));
  assert.deepEqual(cocoRecords.map((r) => [r.key, r.url, r.captions.length]), [
    ["9", "http://coco/9.jpg", 2],
    ["10", "", 0],
  ]);
});

Deno.test("caption cleaning keeps two sentences without breaking on decimals, initials or abbreviations", () => {
  const cases: [string, string][] = [
    ["A boat 3.5 m long. It is red. The sea is calm.", "A boat 3.5 m long. It is red."],
    [
      "Dr. Smith walks down St. Mary's road. He waves. Then rain.",
      "Dr. Smith walks down St. Mary's road. He waves.",
    ],
    [
      "A book by J. R. R. Tolkien lies open. A cup stands e.g. near it. More.",
      "A book by J. R. R. Tolkien lies open. A cup stands e.g. near it.",
    ],
    ["Is it a cat? Yes! It is.", "Is it a cat? Yes!"],
    ["  A dog\n\nin   the snow.  ", "A dog in the snow."],
    ["A flag of the U.S. flies high. It shines. Third.", "A flag of the U.S. flies high. It shines."],
    ["Tools, paint etc. are on the bench. A lamp. A chair.", "Tools, paint etc. are on the bench. A lamp."],
    ["The price is $4.99 today. Buy now. Later.", "The price is $4.99 today. Buy now."],
  ];
  for (const [input, want] of cases) assert.equal(cleanCaption(input), want, input);
  assert.equal(sentences("One. Two. Three.").length, 3);
  assert.deepEqual(cleanCaptions(["a dog", "a big dog", "  two\n words ", "3.5 m"]), ["a big dog"]);
});
