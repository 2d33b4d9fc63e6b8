// Optimizers: AdamW against PyTorch (committed fixture from tools/make_fixtures.py), AdamW and
// SGD against their closed forms on a quadratic, and the LR schedules.

import assert from "node:assert";
import { device, F, optim, type Tensor, tensor, tidy } from "../tensor/mod.ts";
import { relError } from "./helpers/check.ts";

interface Arr {
  shape: number[];
  data: number[];
}
const fixture = JSON.parse(await Deno.readTextFile(new URL("./fixtures/adamw_parity.json", import.meta.url)));

for (const dev of ["cpu", "webgpu"] as const) {
  if (dev === "webgpu" && device() !== "webgpu") continue;
  const tol = dev === "cpu" ? 1e-12 : 1e-4;
  Deno.test(`AdamW + warmup/inverse-sqrt + clipping matches PyTorch for 10 steps (${dev})`, async () => {
    const dtype = dev === "cpu" ? "f64" : "f32";
    const t = (a: Arr, requiresGrad = false) => tensor(a.data, a.shape, { device: dev, dtype, requiresGrad });
    const { x: xa, y: ya, W0, b0 } = fixture.problem;
    const [x, y, W, b] = [t(xa), t(ya), t(W0, true), t(b0, true)];
    const [gW, gb] = fixture.optimizer.groups;
    const opt = new optim.AdamW([
      { params: [W], lr: gW.lr, weightDecay: gW.weight_decay },
      { params: [b], lr: gb.lr, weightDecay: gb.weight_decay },
    ], { betas: fixture.optimizer.betas, eps: fixture.optimizer.eps });
    const sched = new optim.LRScheduler(opt, optim.warmupInverseSqrt(fixture.schedule.warmup));
    for (const s of fixture.steps) {
      const { loss, norm } = tidy(() => {
        const d = F.sub(F.add(F.matmul(x, W), b), y);
        const loss = F.sum(F.mul(d, d));
        loss.backward();
        return { loss, norm: optim.clipGradNorm([W, b], fixture.clip.max_norm) };
      });
      assert.deepEqual(opt.groups.map((g) => g.lr).map((v, i) => Math.abs(v - s.lr[i]) < 1e-15), [
        true,
        true,
      ]);
      opt.step();
      sched.step();
      opt.zeroGrad();
      const step = `step ${s.step}`;
      assert(Math.abs((await loss.item()) - s.loss) <= tol * Math.abs(s.loss), `${step}: loss`);
      assert(Math.abs((await norm.item()) - s.grad_norm) <= tol * s.grad_norm, `${step}: grad norm`);
      assert(
        relError(await W.toArray(), s.W.data) <= tol,
        `${step}: W differs by ${relError(await W.toArray(), s.W.data)}`,
      );
      assert(relError(await b.toArray(), s.b.data) <= tol, `${step}: b`);
      loss.dispose();
      norm.dispose();
    }
    opt.dispose();
    for (const v of [x, y, W, b]) v.dispose();
  });
}

/** Minimises f(p) = sum(c * (p - t)^2) / 2, whose gradient c * (p - t) is known in closed form. */
function quadratic(dev: "cpu" | "webgpu", make: (p: Tensor) => optim.Optimizer, steps: number) {
  const dtype = dev === "cpu" ? "f64" : "f32";
  const p = tensor([1, -2, 3], [3], { device: dev, dtype, requiresGrad: true });
  const c = tensor([1, 2, 0.5], [3], { device: dev, dtype }),
    target = tensor([0.5, 0.5, -1], [3], { device: dev, dtype });
  const opt = make(p);
  for (let i = 0; i < steps; i++) {
    tidy(() => F.div(F.sum(F.mul(c, F.pow(F.sub(p, target), 2))), 2).backward());
    opt.step();
    opt.zeroGrad();
  }
  return { p, c: [1, 2, 0.5], target: [0.5, 0.5, -1], init: [1, -2, 3] };
}

for (const dev of ["cpu", "webgpu"] as const) {
  if (dev === "webgpu" && device() !== "webgpu") continue;
  const tol = dev === "cpu" ? 1e-12 : 1e-5;

  Deno.test(`AdamW on a quadratic follows the closed-form update (${dev})`, async () => {
    const [lr, b1, b2, eps, wd] = [0.1, 0.9, 0.99, 1e-8, 0.1];
    const { p, c, target, init } = quadratic(
      dev,
      (q) => new optim.AdamW([q], { lr, betas: [b1, b2], eps, weightDecay: wd }),
      5,
    );
    const want = init.map((p0, i) => {
      let q = p0, m = 0, v = 0;
      for (let t = 1; t <= 5; t++) {
        const g = c[i] * (q - target[i]);
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g * g;
        q = q * (1 - lr * wd) - lr * (m / (1 - b1 ** t)) / (Math.sqrt(v / (1 - b2 ** t)) + eps);
      }
      return q;
    });
    assert(relError(await p.toArray(), want) <= tol, `got ${await p.toArray()}, want ${want}`);
  });

  Deno.test(`SGD with Nesterov momentum on a quadratic follows the closed-form update (${dev})`, async () => {
    const [lr, mu, wd] = [0.1, 0.9, 0.01];
    const { p, c, target, init } = quadratic(
      dev,
      (q) => new optim.SGD([q], { lr, momentum: mu, nesterov: true, weightDecay: wd }),
      4,
    );
    const want = init.map((p0, i) => {
      let q = p0, buf = 0;
      for (let t = 1; t <= 4; t++) {
        const g = c[i] * (q - target[i]) + wd * q;
        buf = t === 1 ? g : mu * buf + g;
        q -= lr * (g + mu * buf);
      }
      return q;
    });
    assert(relError(await p.toArray(), want) <= tol, `got ${await p.toArray()}, want ${want}`);
  });
}

Deno.test("schedules: warmup then inverse square root or constant; cosine; cooldown", () => {
  const f = optim.warmupInverseSqrt(500);
  assert.equal(f(1), 1 / 500);
  assert.equal(f(500), 1);
  assert.equal(f(2000), 0.5);
  const k = optim.warmupConstant(50);
  assert.equal(k(25), 0.5);
  assert.equal(k(50), 1);
  assert.equal(k(5000), 1);
  const c = optim.cosine(110, { warmup: 10, minFactor: 0.1 });
  assert.equal(c(5), 0.5);
  assert(Math.abs(c(60) - 0.55) < 1e-12);
  assert(Math.abs(c(110) - 0.1) < 1e-12);
  assert.equal(optim.cooldown(0.5, 0.25), 1);
  assert.equal(optim.cooldown(0.875, 0.25), 0.5);
  assert.equal(optim.cooldown(1.2, 0.25), 0);
  assert.equal(optim.cooldown(0.99, 0), 1);
});

Deno.test("optimizers reject tensors that do not require grad and duplicated parameters", () => {
  const p = tensor([1, 2], [2], { device: "cpu", requiresGrad: true });
  assert.throws(() => new optim.Adam([tensor([1], [1], { device: "cpu" })]), /does not require grad/);
  assert.throws(() => new optim.AdamW([{ params: [p] }, { params: [p] }]), /more than one group/);
  // AdamW moves its parameters into its own buffers: a second one would update a stale copy
  const first = new optim.AdamW([p]);
  assert.throws(() => new optim.AdamW([p]), /already belongs to another optimizer/);
  first.dispose();
  new optim.AdamW([p]).dispose();
});

Deno.test("optimizer state round-trips: a resumed AdamW takes the same next step", async () => {
  const make = () => tensor([1, -2, 3], [3], { device: "cpu", dtype: "f64", requiresGrad: true });
  const step = (p: Tensor, opt: optim.Optimizer) => {
    tidy(() => F.sum(F.mul(p, p)).backward());
    opt.step();
    opt.zeroGrad();
  };
  const [a, b] = [make(), make()];
  const [oa, ob] = [new optim.AdamW([a], { lr: 0.1 }), new optim.AdamW([b], { lr: 0.1 })];
  for (let i = 0; i < 3; i++) step(a, oa);
  for (let i = 0; i < 3; i++) step(b, ob);
  const resumed = make();
  F.copyInto(resumed, b);
  const or = new optim.AdamW([resumed], { lr: 0.1 });
  or.loadStateDict(ob.stateDict());
  step(a, oa);
  step(resumed, or);
  assert.deepEqual(await resumed.toArray(), await a.toArray());
  assert.equal(or.stepCount, 4);
});

for (const dev of ["cpu", "webgpu"] as const) {
  if (dev === "webgpu" && device() !== "webgpu") continue;
  Deno.test(`clipping inside the update (step({ gradScale })) equals clipping the gradients (${dev})`, async () => {
    const dtype = dev === "cpu" ? "f64" : "f32";
    const run = async (fused: boolean) => {
      const p = tensor([3, -4, 12, 0.5], [2, 2], { device: dev, dtype, requiresGrad: true });
      const q = tensor([1, 2], [2], { device: dev, dtype, requiresGrad: true });
      const opt = new optim.AdamW([p, q], { lr: 0.1 });
      for (let i = 0; i < 3; i++) {
        tidy(() => F.add(F.sum(F.mul(p, p)), F.sum(F.mul(q, 3))).backward());
        if (fused) {
          const { norm, scale } = optim.gradNorm([p, q], 1);
          opt.step({ gradScale: scale });
          norm.dispose(), scale.dispose();
        } else {
          optim.clipGradNorm([p, q], 1).dispose();
          opt.step();
        }
        opt.zeroGrad();
      }
      return [...await p.toArray(), ...await q.toArray()];
    };
    const [a, b] = [await run(true), await run(false)];
    assert(relError(a, b) <= (dev === "cpu" ? 1e-12 : 1e-6), `${a} vs ${b}`);
  });
}

for (const dev of ["cpu", "webgpu"] as const) {
  if (dev === "webgpu" && device() !== "webgpu") continue;
  Deno.test(`AdamW reads a gradient and a scale that are slices of larger buffers in place (${dev})`, async () => {
    const dtype = dev === "cpu" ? "f64" : "f32", o = { device: dev, dtype } as const;
    const run = async (sliced: boolean) => {
      const p = tensor([0.5, -1, 2, 3], [4], { ...o, requiresGrad: true });
      const opt = new optim.AdamW([p], { lr: 0.1 });
      // batchnorm hands out its weight and bias gradients as views into one buffer like this
      p.grad = sliced ? F.slice(tensor([9, 9, 1, -2, 3, 4], [6], o), 0, 2, 6) : tensor([1, -2, 3, 4], [4], o);
      const scale = sliced ? F.slice(tensor([7, 0.5], [2], o), 0, 1, 2) : tensor([0.5], [1], o);
      opt.step({ gradScale: scale });
      scale.dispose();
      return await p.toArray();
    };
    assert.deepEqual(await run(true), await run(false));
  });
}

for (const dev of ["cpu", "webgpu"] as const) {
  if (dev === "webgpu" && device() !== "webgpu") continue;
  Deno.test(`AdamW's flat update: groups, buckets, strided gradients, parameters without one (${dev})`, async () => {
    const dtype = dev === "cpu" ? "f64" : "f32", o = { device: dev, dtype } as const;
    const sizes = [[3, 5], [70], [1], [4, 4], [130], [2, 3], [9], [5, 2], [64]];
    const init = sizes.map((s, k) =>
      Array.from({ length: s.reduce((a, b) => a * b) }, (_, i) => Math.sin(k + i))
    );
    const grad = (k: number) => init[k].map((_, i) => Math.cos(3 * k + i));
    const ps = sizes.map((s, k) => tensor(init[k], s, { ...o, requiresGrad: true }));
    const groups = [
      { params: ps.slice(0, 4), lr: 0.1, weightDecay: 0.5 },
      { params: ps.slice(4), lr: 0.02, weightDecay: 0 },
    ];
    // buckets of at most 256 elements, each parameter aligned to 64: four buckets, the second
    // holding parameters of both groups
    const opt = new optim.AdamW(groups, { bucketElements: 256 });
    for (let t = 1; t <= 2; t++) {
      ps.forEach((p, k) => {
        if (k === 6) return; // no gradient: must not move
        const g = tensor(grad(k), p.shape, o);
        // a transposed view, as matmul hands out weight gradients
        p.grad = p.ndim === 2
          ? F.transpose(tensor(grad(k), [p.shape[1], p.shape[0]], o).view([p.shape[1], p.shape[0]]), 0, 1)
          : g;
        if (p.grad !== g) g.dispose();
      });
      const scale = tensor([0.5], [1], o);
      opt.step({ gradScale: scale });
      scale.dispose();
      opt.zeroGrad();
    }
    for (const [k, p] of ps.entries()) {
      const { lr, weightDecay: wd } = k < 4 ? groups[0] : groups[1];
      const got = await p.toArray();
      // the closed form of two AdamW steps with the same gradient g (scaled by 0.5)
      const gt = p.ndim === 2
        ? init[k].map((_, i) => grad(k)[(i % p.shape[1]) * p.shape[0] + Math.floor(i / p.shape[1])])
        : grad(k);
      const want = init[k].map((x, i) => {
        if (k === 6) return x;
        let m = 0, v = 0;
        for (let t = 1; t <= 2; t++) {
          const g = gt[i] * 0.5;
          m = 0.9 * m + 0.1 * g, v = 0.999 * v + 0.001 * g * g;
          x = x * (1 - lr * wd) -
            (lr / (1 - 0.9 ** t)) * m / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** t) + 1e-8);
        }
        return x;
      });
      assert(relError(got, want) <= (dev === "cpu" ? 1e-12 : 1e-5), `parameter ${k}: ${got} vs ${want}`);
    }
    opt.dispose();
  });

  Deno.test(`AdamW's gradNorm over its packed gradients equals optim.gradNorm (${dev})`, async () => {
    const dtype = dev === "cpu" ? "f64" : "f32", o = { device: dev, dtype } as const;
    const ps = [[3, 7], [100], [5]].map((s, k) =>
      tensor(Array.from({ length: s.reduce((a, b) => a * b) }, (_, i) => Math.sin(k * 7 + i)), s, {
        ...o,
        requiresGrad: true,
      })
    );
    const opt = new optim.AdamW(ps, { bucketElements: 128 });
    tidy(() => F.sum(ps.map((p) => F.sum(F.mul(F.mul(p, p), p))).reduce((a, b) => F.add(a, b))).backward());
    const a = opt.gradNorm(2), b = optim.gradNorm(ps, 2);
    const [na, nb, sa, sb] = await Promise.all([a.norm, b.norm, a.scale, b.scale].map((t) => t.item()));
    assert(Math.abs(na - nb) <= 1e-6 * nb && Math.abs(sa - sb) <= 1e-6, `${na} ${nb} ${sa} ${sb}`);
    assert(nb > 2, "the case should clip");
    for (const t of [a.norm, a.scale, b.norm, b.scale]) t.dispose();
    opt.dispose();
  });
}
