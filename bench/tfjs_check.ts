// `deno run -A bench/tfjs_check.ts`: checks that the tfjs harness computes on the GPU what it claims and
// leaks no tensors: a small matmul against a CPU product, conv2dGrads as the adjoint of tf.conv2d, and
// attentionGrads against f64 central differences of a CPU attention. Not a test: tests must not depend on tfjs.

import * as tf from "@tensorflow/tfjs-core";
import {
  attentionGrads,
  causalBias,
  conv2dGrads,
  initTfjs,
  tfjsAttentionBackward,
  tfjsConv2dBackward,
  tfjsMatmul,
} from "./tfjs.ts";

console.log(`tfjs ${tf.version_core} on ${await initTfjs()}`);

const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
function expect(what: string, got: number, want: number, tol: number) {
  const rel = Math.abs(got - want) / Math.max(1, Math.abs(want));
  console.log(
    `${what}: ${got.toPrecision(6)} vs ${want.toPrecision(6)} (rel. error ${rel.toExponential(1)})`,
  );
  if (!(rel < tol)) throw new Error(`${what} is off`);
}

{
  const [m, k, n] = [37, 53, 29];
  const [av, bv] = [rand(m * k), rand(k * n)];
  const got = tf.tidy(() => tf.matMul(tf.tensor2d(av, [m, k]), tf.tensor2d(bv, [k, n])));
  const out = await got.data();
  got.dispose();
  let err = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += av[i * k + p] * bv[p * n + j];
      err = Math.max(err, Math.abs(out[i * n + j] - s));
    }
  }
  console.log(`matmul ${m}x${k}x${n} vs CPU: max |diff| ${err.toExponential(2)}`);
  if (!(err < 1e-4)) throw new Error("tfjs matmul disagrees with the CPU product");
}

// conv2d is linear in each argument, so <dx, u> = <conv2d(u, w), dy> and <dw, u> = <conv2d(x, u), dy>.
{
  const shapes: [number, number, number, number][] = [[2, 9, 9, 3], [3, 3, 3, 4], [2, 5, 5, 4]];
  const [x, w, dy, ux, uw] = [...shapes, shapes[0], shapes[1]].map((s) => tf.randomNormal<tf.Rank.R4>(s));
  const [dx, dw] = conv2dGrads(x, w, dy, 2, 1);
  const inner = async (a: tf.Tensor, b: tf.Tensor) => dot(await a.data(), await b.data());
  const [cu, cw] = [tf.conv2d(ux, w, 2, 1), tf.conv2d(x, uw, 2, 1)];
  expect("conv2d <dx, u> vs <conv2d(u, w), dy>", await inner(dx, ux), await inner(cu, dy), 1e-4);
  expect("conv2d <dw, u> vs <conv2d(x, u), dy>", await inner(dw, uw), await inner(cw, dy), 1e-4);
  tf.dispose([x, w, dy, ux, uw, dx, dw, cu, cw]);
}

// d/de of L(q + e uq, k + e uk, v + e uv) = <attention(...), dout> at e = 0, in f64 on the CPU.
{
  const [tq, tk, d] = [3, 5, 4];
  const [q, k, v, dout, uq, uk, uv] = [tq, tk, tk, tq, tq, tk, tk].map((t) => rand(t * d));
  const loss = (e: number) => {
    let l = 0;
    for (let i = 0; i < tq; i++) {
      const s = Array.from({ length: tk }, (_, j) => {
        if (j > tk - tq + i) return -1e9;
        let a = 0;
        for (let c = 0; c < d; c++) {
          a += (q[i * d + c] + e * uq[i * d + c]) * (k[j * d + c] + e * uk[j * d + c]);
        }
        return a / Math.sqrt(d);
      });
      const mx = Math.max(...s), p = s.map((x) => Math.exp(x - mx)), z = p.reduce((a, b) => a + b);
      for (let c = 0; c < d; c++) {
        let o = 0;
        for (let j = 0; j < tk; j++) o += p[j] / z * (v[j * d + c] + e * uv[j * d + c]);
        l += o * dout[i * d + c];
      }
    }
    return l;
  };
  const t = (a: Float32Array, rows: number) => tf.tensor4d(a, [1, 1, rows, d]);
  const grads = tf.tidy(() => attentionGrads(t(q, tq), t(k, tk), t(v, tk), causalBias(tq, tk), t(dout, tq)));
  const g = [...await grads[1].data()].map((x, i) => x * uk[i]).reduce((a, b) => a + b) +
    dot(await grads[0].data(), uq) + dot(await grads[2].data(), uv);
  tf.dispose(grads);
  expect("attention <grads, u> vs central difference", g, (loss(1e-5) - loss(-1e-5)) / 2e-5, 1e-4);
}

const before = tf.memory().numTensors;
await tfjsMatmul(64, 64, 64, 2, 2);
await tfjsConv2dBackward(1, 4, 8, 8, 4, 3, 1, 1, 2);
await tfjsAttentionBackward(1, 2, 8, 8, 4, true, 2);
const after = tf.memory().numTensors;
console.log(`live tensors before ${before}, after the timed helpers ${after}`);
if (after !== before) throw new Error("the timed helpers leaked tensors");
console.log("ok");
