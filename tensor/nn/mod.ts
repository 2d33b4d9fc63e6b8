export { Module, type StateDict } from "./module.ts";
export * from "./layers.ts";
