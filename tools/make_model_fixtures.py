"""PyTorch references for the model's parity tests (tests/model_*_test.ts), written to tests/fixtures/model_*.

- ResNet: torchvision's ResNet classes (BasicBlock / Bottleneck, torchvision's own _make_layer) built
  narrow (stage widths 8..64) so the committed weights stay small, with random weights and randomised
  batchnorm statistics; weights as .pth (torch.save of the state dict) and .safetensors; an input, the
  logits and the layer4 features, computed in float64.
- Decoder: a reference built from nn.TransformerDecoderLayer (the same parameter names as
  model/decoder.ts), two variants (the seed's post-norm with one image projection per layer; pre-norm
  with tied embeddings and a shared projection): logits, the loss with its EOS term, and gradients.
- Search: beam search (both length penalties) and greedy on a fixed random decoder, by full
  recomputation of the prefix at every step (no cache), checked to pick the same tokens in float32
  and float64 so the fixture has no near-ties.
- Preprocessing: torchvision's Resize / CenterCrop / Normalize on a PIL image and on a float tensor.
- .pth reading: every storage dtype, shared and non-contiguous storages, the legacy format.

Run (Debian's python3-torch and python3-torchvision; CI never runs this, the outputs are committed):
    /usr/bin/python3 tools/make_model_fixtures.py
The optional ResNet-101 parity test calls `resnet` mode to build a full-width reference on the fly:
    /usr/bin/python3 tools/make_model_fixtures.py resnet --depth 101 --size 64 --out DIR
"""

import argparse
import json
import math
import pathlib
import struct
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision import transforms
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
DEPTHS = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}
DTYPES = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
}


def save_safetensors(path, tensors, metadata=None):
    """A minimal safetensors writer (the package is not in Debian)."""
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(chunks))


def as_json(t):
    return {"shape": list(t.shape), "data": t.detach().double().flatten().tolist()}


# ---- ResNet --------------------------------------------------------------------------------------


class NarrowResNet(ResNet):
    """torchvision's ResNet with other stage widths (its __init__ hard-codes 64..512)."""

    def __init__(self, block, layers, widths, num_classes):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = widths[0], 1, 1, 64
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)


def randomise_batchnorm(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=gen) + 0.5
            m.bias.data = torch.randn(c, generator=gen) * 0.1
            m.running_mean = torch.randn(c, generator=gen) * 0.1
            m.running_var = torch.rand(c, generator=gen) * 1.5 + 0.5
            m.num_batches_tracked = torch.randint(0, 1000, (), generator=gen)


def features(model, x):
    h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    h = model.layer4(model.layer3(model.layer2(model.layer1(h))))
    return h.flatten(2).transpose(1, 2)  # [N, h*w, C]: the image tokens


def resnet_reference(name, depth, widths, num_classes, size, batch, out_dir, seed):
    """Weights (.pth and .safetensors) and float64 input / logits / features for one ResNet."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    block, layers = DEPTHS[depth]
    model = NarrowResNet(block, layers, widths, num_classes) if widths else ResNet(block, layers, num_classes=num_classes)
    randomise_batchnorm(model, gen)
    model.eval()
    state = model.state_dict()
    torch.save(state, out_dir / f"{name}.pth")
    save_safetensors(out_dir / f"{name}.safetensors", state, {"format": "pt"})
    x = torch.randn(batch, 3, size, size, generator=gen)
    model.double()
    with torch.no_grad():
        logits, feats = model(x.double()), features(model, x.double())
    save_safetensors(out_dir / f"{name}_io.safetensors", {"input": x, "logits": logits, "features": feats})


# ---- Decoder -------------------------------------------------------------------------------------


class ImageProjection(nn.Module):
    def __init__(self, f, d):
        super().__init__()
        self.linear, self.norm = nn.Linear(f, d), nn.LayerNorm(d)

    def forward(self, x):
        return self.norm(self.linear(x))


class RefDecoder(nn.Module):
    """model/decoder.ts in PyTorch, from nn.TransformerDecoderLayer, with the same parameter names."""

    def __init__(self, c):
        super().__init__()
        V, Fd, E, d, L = c["vocabSize"], c["featureDim"], c["embedDim"], c["dModel"], c["layers"]
        self.c, pre = c, c["norm"] == "pre"
        self.embed = nn.Embedding(V, E)
        self.embed_proj = nn.Linear(E, d) if E != d else None
        self.embed_norm = nn.LayerNorm(d)
        self.image_norm = nn.LayerNorm(Fd)
        self.image_proj = nn.ModuleList(ImageProjection(Fd, d) for _ in range(1 if c["imageProjection"] == "shared" else L))
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(d, c["heads"], c["ffnDim"], c["dropout"], batch_first=True, norm_first=pre)
            for _ in range(L)
        )
        self.final_norm = nn.LayerNorm(d) if pre else None
        if c["tiedEmbeddings"]:
            self.out_to_embed = nn.Linear(d, E, bias=False) if E != d else None
            self.out_bias = nn.Parameter(torch.randn(V) * 0.1)
        else:
            self.out = nn.Linear(d, V)

    def memory(self, feats):
        normed = self.image_norm(feats)
        proj = [p(normed) for p in self.image_proj]
        return [proj[0 if len(proj) == 1 else i] for i in range(len(self.layers))]

    def forward(self, tokens, memory, pad=None):
        d, T = self.c["dModel"], tokens.shape[1]
        e = self.embed(tokens)
        if self.embed_proj is not None:
            e = self.embed_proj(e)
        x = self.embed_norm(e * math.sqrt(d) + positions(T, d, e.dtype))
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        for layer, mem in zip(self.layers, memory):
            x = layer(x, mem, tgt_mask=causal, tgt_key_padding_mask=pad)
        if self.final_norm is not None:
            x = self.final_norm(x)
        if not self.c["tiedEmbeddings"]:
            return self.out(x)
        h = self.out_to_embed(x) if self.out_to_embed is not None else x
        return h @ self.embed.weight.T + self.out_bias


def positions(T, d, dtype):
    pe = torch.zeros(T, d, dtype=torch.float64)
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    i = torch.arange(0, d, 2, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos / 10000 ** (i / d))
    pe[:, 1::2] = torch.cos(pos / 10000 ** (i / d))
    return pe.to(dtype)


def caption_loss(logits, target, pad, eos, smoothing, beta, window):
    ce = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=pad, label_smoothing=smoothing)
    p = logits[:, :window].softmax(-1)[..., eos]
    real = (target[:, :window] != pad).to(p.dtype)
    eos_term = (p * real).sum() / real.sum().clamp(min=1)
    return ce + beta * eos_term, ce, eos_term


GRAD_NAMES = [
    "embed.weight",
    "image_norm.weight",
    "image_proj.0.linear.weight",
    "layers.0.self_attn.in_proj_weight",
    "layers.0.multihead_attn.in_proj_bias",
    "layers.1.multihead_attn.out_proj.weight",
    "layers.1.linear2.bias",
    "layers.1.norm3.weight",
]

DECODER_BASE = {
    "vocabSize": 50,
    "featureDim": 24,
    "embedDim": 16,
    "dModel": 32,
    "layers": 2,
    "heads": 4,
    "ffnDim": 64,
    "dropout": 0.1,
}
VARIANTS = {
    "seed": {**DECODER_BASE, "norm": "post", "tiedEmbeddings": False, "imageProjection": "per-layer"},
    "prenorm_tied_shared": {**DECODER_BASE, "norm": "pre", "tiedEmbeddings": True, "imageProjection": "shared"},
}
SPECIAL = {"padId": 0, "bosId": 2, "eosId": 3}
LOSS = {"labelSmoothing": 0.1, "eosBeta": 0.7, "eosWindow": 5}


def decoder_fixtures():
    gen = torch.Generator().manual_seed(7)
    tokens = torch.tensor(
        [
            [2, 11, 12, 13, 14, 15, 16, 17, 18, 3],
            [2, 21, 3, 3, 22, 3, 0, 0, 0, 0],  # EOS inside the window, then padding
            [2, 30, 31, 32, 33, 3, 0, 0, 0, 0],
        ]
    )
    feats = torch.randn(3, 5, DECODER_BASE["featureDim"], generator=gen)
    out = {"tokens": tokens.tolist(), "features": as_json(feats), "special": SPECIAL, "loss": LOSS, "variants": {}}
    weights = {}
    for name, cfg in VARIANTS.items():
        torch.manual_seed(11)
        model = RefDecoder(cfg)
        for p in model.parameters():  # LayerNorm affines away from 1 / 0, so they are tested too
            if p.dim() == 1:
                p.data += torch.randn(p.shape, generator=gen) * 0.1
        model.eval()
        weights.update({f"{name}.{k}": v for k, v in model.state_dict().items()})
        model.double()
        inp, target = tokens[:, :-1], tokens[:, 1:]
        memory = model.memory(feats.double())
        logits = model(inp, memory, inp == SPECIAL["padId"])
        loss, ce, eos = caption_loss(logits, target, SPECIAL["padId"], SPECIAL["eosId"], **loss_args())
        loss.backward()
        params = dict(model.named_parameters())
        grads = {k: as_json(params[k].grad) for k in GRAD_NAMES if k in params}
        grads.update({k: as_json(params[k].grad) for k in ["out.weight", "out_bias", "out_to_embed.weight"] if k in params})
        out["variants"][name] = {
            "config": cfg,
            "logits": as_json(logits),
            "loss": loss.item(),
            "ce": ce.item(),
            "eos": eos.item(),
            "grads": grads,
        }
    save_safetensors(FIXTURES / "model_decoder.safetensors", weights)
    return out


def loss_args():
    return {"smoothing": LOSS["labelSmoothing"], "beta": LOSS["eosBeta"], "window": LOSS["eosWindow"]}


# ---- Search --------------------------------------------------------------------------------------


def next_logp(model, memory, toks):
    with torch.no_grad():
        return model(torch.tensor([[SPECIAL["bosId"]] + toks]), memory)[0, -1].log_softmax(-1).tolist()


def beam_reference(model, memory, k, alpha, kind, max_len, num_return):
    """The issue's beam search, by full recomputation of every prefix."""
    eos = SPECIAL["eosId"]
    lp = (lambda L: ((5 + L) / 6) ** alpha) if kind == "gnmt" else (lambda L: L**alpha)
    live, finished = [([], 0.0)], []
    for t in range(max_len):
        cands = []
        for i, (toks, s) in enumerate(live):
            for v, x in enumerate(next_logp(model, memory, toks)):
                cands.append((s + x, i, v))
        cands.sort(key=lambda c: (-c[0], c[1], c[2]))
        new_live = []
        for s, i, v in cands:
            toks = live[i][0]
            if v == eos:
                finished.append({"tokens": toks, "logProb": s, "score": s / lp(len(toks) + 1), "finished": True})
            else:
                new_live.append((toks + [v], s))
            if len(new_live) == k:
                break
        finished.sort(key=lambda h: -h["score"])
        if t + 1 == max_len:
            for toks, s in new_live:
                finished.append({"tokens": toks, "logProb": s, "score": s / lp(len(toks)), "finished": False})
            break
        bound = lambda toks, s: max(s / lp(min(len(toks) + 1, max_len)), s / lp(max_len))  # noqa: E731
        if len(finished) >= num_return and all(bound(*h) <= finished[num_return - 1]["score"] for h in new_live):
            break
        live = new_live
    finished.sort(key=lambda h: -h["score"])
    return finished[:num_return]


def greedy_reference(model, memory, max_len):
    toks, s = [], 0.0
    for _ in range(max_len):
        logp = next_logp(model, memory, toks)
        v = max(range(len(logp)), key=lambda i: (logp[i], -i))
        s += logp[v]
        if v == SPECIAL["eosId"]:
            return {"tokens": toks, "logProb": s, "finished": True}
        toks.append(v)
    return {"tokens": toks, "logProb": s, "finished": False}


def beam_args(o):
    return o["beamSize"], o["alpha"], o["lengthPenalty"], o["maxLength"], o["numReturn"]


SEARCHES = [
    {"beamSize": 3, "alpha": 0.6, "lengthPenalty": "length", "maxLength": 9, "numReturn": 1},
    {"beamSize": 4, "alpha": 1.0, "lengthPenalty": "gnmt", "maxLength": 9, "numReturn": 3},
]


def search_fixtures():
    """Beam and greedy results on the 'seed' decoder variant with a sharpened output layer."""
    cfg = VARIANTS["seed"]
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(3)
    model = RefDecoder(cfg).eval()
    model.out.weight.data *= 4  # peaked distributions: no near-ties between f32 and f64
    feats = torch.randn(3, 5, cfg["featureDim"], generator=gen)
    results = {}
    for dtype in (torch.float32, torch.float64):
        m = model.to(dtype)
        runs = []
        for b in range(feats.shape[0]):
            with torch.no_grad():
                memory = m.memory(feats[b : b + 1].to(dtype))
            runs.append(
                {
                    "beams": [beam_reference(m, memory, *beam_args(o)) for o in SEARCHES],
                    "greedy": greedy_reference(m, memory, 9),
                }
            )
        results[dtype] = runs
    strip = lambda runs: json.dumps(  # noqa: E731
        [[[h["tokens"] for h in beam] for beam in r["beams"]] + [r["greedy"]["tokens"]] for r in runs]
    )
    assert strip(results[torch.float32]) == strip(results[torch.float64]), "near-tie: pick other seeds"
    state = {k: v.float() for k, v in model.float().state_dict().items()}
    save_safetensors(FIXTURES / "model_search.safetensors", state)
    return {"config": cfg, "special": SPECIAL, "features": as_json(feats), "searches": SEARCHES, "results": results[torch.float64]}


# ---- Preprocessing -------------------------------------------------------------------------------


def preprocess_fixtures():
    gen = torch.Generator().manual_seed(3)
    out = {}
    tensors = {}
    # sizes whose crop offsets exercise Python's round-half-to-even; resize 64 / crop 56 keeps them small
    for i, (w, h) in enumerate([(83, 61), (50, 77), (64, 64)]):
        img = torch.randint(0, 256, (h, w, 3), generator=gen, dtype=torch.uint8)
        norm = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        pil = transforms.Compose([transforms.Resize(64), transforms.CenterCrop(56), transforms.ToTensor(), norm])
        ref_pil = pil(Image.fromarray(img.numpy(), "RGB"))
        chw = img.permute(2, 0, 1).double()
        ref_float = norm(transforms.CenterCrop(56)(transforms.functional.resize(chw, 64, antialias=True)) / 255)
        tensors[f"image{i}"] = img.to(torch.float32)
        tensors[f"pil{i}"] = ref_pil.float()
        tensors[f"float{i}"] = ref_float.float()
        out[f"image{i}"] = [w, h]
    save_safetensors(FIXTURES / "model_preprocess.safetensors", tensors)
    return out


# ---- .pth reading --------------------------------------------------------------------------------


def pth_fixtures():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7 - 0.5
    sd = OrderedDict()
    sd["f32"] = base
    sd["f32_transposed"] = base.t()  # shares the storage, non-contiguous
    sd["f32_slice"] = base[1:, 1:3]  # shares the storage, with an offset
    sd["f16"] = base.half()
    sd["bf16"] = base.bfloat16()
    sd["f64"] = base.double()
    sd["i64"] = torch.tensor([-3, 0, 2**31 - 1])
    sd["i32"] = torch.tensor([7, -8], dtype=torch.int32)
    sd["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False])
    sd["scalar"] = torch.tensor(2.5)
    sd["param"] = nn.Parameter(torch.tensor([1.0, 2.0]))
    sd._metadata = OrderedDict({"": {"version": 1}})  # as in every module state dict (BUILD opcode)
    torch.save(sd, FIXTURES / "model_dtypes.pth")
    torch.save(sd, FIXTURES / "model_dtypes_legacy.pth", _use_new_zipfile_serialization=False)
    torch.save({"state_dict": OrderedDict(w=base[:1])}, FIXTURES / "model_wrapped.pth")
    return {k: as_json(v) for k, v in sd.items()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", nargs="?", default="all", choices=["all", "resnet"])
    p.add_argument("--depth", type=int, default=101)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--out", type=pathlib.Path)
    a = p.parse_args()
    if a.mode == "resnet":
        resnet_reference(f"resnet{a.depth}", a.depth, None, 1000, a.size, 1, a.out, seed=1)
        return
    FIXTURES.mkdir(parents=True, exist_ok=True)
    resnet_reference("model_resnet18", 18, [8, 16, 32, 64], 10, 64, 2, FIXTURES, seed=0)
    resnet_reference("model_resnet50", 50, [4, 8, 16, 32], 10, 64, 2, FIXTURES, seed=1)
    fixtures = {
        "decoder": decoder_fixtures(),
        "search": search_fixtures(),
        "preprocess": preprocess_fixtures(),
        "pth": pth_fixtures(),
    }
    for name, data in fixtures.items():
        (FIXTURES / f"model_{name}.json").write_text(json.dumps(data, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    np.random.seed(0)
    main()
