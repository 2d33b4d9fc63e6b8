// Chainable methods on Tensor (`x.matmul(w).add(b).relu()`), each a thin alias of a function op,
// attached here so tensor.ts need not import the ops.

import * as F from "./ops/mod.ts";
import { Tensor } from "./tensor.ts";
import type { Shape } from "./shape.ts";

type Axes = number | readonly number[];

declare module "./tensor.ts" {
  interface Tensor {
    add(b: F.Operand): Tensor;
    sub(b: F.Operand): Tensor;
    mul(b: F.Operand): Tensor;
    div(b: F.Operand): Tensor;
    pow(b: F.Operand): Tensor;
    maximum(b: F.Operand): Tensor;
    minimum(b: F.Operand): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    abs(): Tensor;
    relu(): Tensor;
    gelu(approximate?: "tanh" | "none"): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    sum(axes?: Axes, keepdims?: boolean): Tensor;
    mean(axes?: Axes, keepdims?: boolean): Tensor;
    max(axes?: Axes, keepdims?: boolean): Tensor;
    min(axes?: Axes, keepdims?: boolean): Tensor;
    var(axes?: Axes, keepdims?: boolean, correction?: number): Tensor;
    logsumexp(axes?: Axes, keepdims?: boolean): Tensor;
    matmul(b: Tensor): Tensor;
    reshape(shape: Shape): Tensor;
    permute(dims: readonly number[]): Tensor;
    transpose(a?: number, b?: number): Tensor;
    expand(shape: Shape): Tensor;
    slice(axis: number, start: number, end?: number): Tensor;
    contiguous(): Tensor;
    unsqueeze(axis: number): Tensor;
    squeeze(axis?: number): Tensor;
    flatten(start?: number, end?: number): Tensor;
    softmax(axis?: number): Tensor;
    logSoftmax(axis?: number): Tensor;
  }
}

const P = Tensor.prototype;
P.add = function (b) {
  return F.add(this, b);
};
P.sub = function (b) {
  return F.sub(this, b);
};
P.mul = function (b) {
  return F.mul(this, b);
};
P.div = function (b) {
  return F.div(this, b);
};
P.pow = function (b) {
  return F.pow(this, b);
};
P.maximum = function (b) {
  return F.maximum(this, b);
};
P.minimum = function (b) {
  return F.minimum(this, b);
};
P.neg = function () {
  return F.neg(this);
};
P.exp = function () {
  return F.exp(this);
};
P.log = function () {
  return F.log(this);
};
P.sqrt = function () {
  return F.sqrt(this);
};
P.rsqrt = function () {
  return F.rsqrt(this);
};
P.abs = function () {
  return F.abs(this);
};
P.relu = function () {
  return F.relu(this);
};
P.gelu = function (approximate) {
  return F.gelu(this, approximate);
};
P.tanh = function () {
  return F.tanh(this);
};
P.sigmoid = function () {
  return F.sigmoid(this);
};
P.sum = function (axes, keepdims) {
  return F.sum(this, axes, keepdims);
};
P.mean = function (axes, keepdims) {
  return F.mean(this, axes, keepdims);
};
P.max = function (axes, keepdims) {
  return F.max(this, axes, keepdims);
};
P.min = function (axes, keepdims) {
  return F.min(this, axes, keepdims);
};
P.var = function (axes, keepdims, correction) {
  return F.variance(this, axes, keepdims, correction);
};
P.logsumexp = function (axes, keepdims) {
  return F.logsumexp(this, axes, keepdims);
};
P.matmul = function (b) {
  return F.matmul(this, b);
};
P.reshape = function (shape) {
  return F.reshape(this, shape);
};
P.permute = function (dims) {
  return F.permute(this, dims);
};
P.transpose = function (a, b) {
  return F.transpose(this, a, b);
};
P.expand = function (shape) {
  return F.expand(this, shape);
};
P.slice = function (axis, start, end) {
  return F.slice(this, axis, start, end);
};
P.contiguous = function () {
  return F.contiguous(this);
};
P.unsqueeze = function (axis) {
  return F.unsqueeze(this, axis);
};
P.squeeze = function (axis) {
  return F.squeeze(this, axis);
};
P.flatten = function (start, end) {
  return F.flatten(this, start, end);
};
P.softmax = function (axis) {
  return F.softmax(this, axis);
};
P.logSoftmax = function (axis) {
  return F.logSoftmax(this, axis);
};
