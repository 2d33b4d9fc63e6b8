// A restricted unpickler: the opcodes of protocols 2-5 that a saved state dict uses, and only the
// callables the caller allows (as torch.load(weights_only=True) does). Nothing in the file is ever
// executed: an allowed "global" is a TypeScript function chosen by name, anything else is an error.
//
// Python values map to: int/float -> number (ints beyond 2^53: bigint), str -> string, bytes -> Uint8Array, None -> null,
// bool -> boolean, tuple and list -> array, dict -> Map.

/** A callable the pickle may name, with what REDUCE (and optionally BUILD) do with it. */
export interface Callable {
  readonly qualifiedName: string;
  call(args: unknown[]): unknown;
}

export interface UnpickleOptions {
  /** the callable for GLOBAL module.name, or undefined to reject the file */
  findGlobal(module: string, name: string): Callable | undefined;
  /** resolves a persistent id (torch: a storage reference) */
  persistentLoad(pid: unknown): unknown;
  /** names the file in errors */
  source: string;
}

/** Names of opcodes we refuse, for the error message (the allowed ones are named in the switch). */
const REFUSED: Record<number, string> = {
  0x69: "INST",
  0x6f: "OBJ",
  0x81: "NEWOBJ",
  0x92: "NEWOBJ_EX",
  0x50: "PERSID",
  0x53: "STRING",
  0x49: "INT",
  0x4c: "LONG",
  0x46: "FLOAT",
  0x56: "UNICODE",
  0x64: "DICT",
  0x6c: "LIST",
  0x70: "PUT",
  0x67: "GET",
  0x82: "EXT1",
  0x83: "EXT2",
  0x84: "EXT4",
  0x8b: "LONG4",
  0x8f: "EMPTY_SET",
  0x90: "ADDITEMS",
  0x91: "FROZENSET",
  0x96: "BYTEARRAY8",
  0x97: "NEXT_BUFFER",
  0x98: "READONLY_BUFFER",
};

/** Decodes one pickle; throws, naming `source` and the byte offset, on anything outside the subset. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): unknown {
  return unpickleAt(bytes, 0, opts).value;
}

/** Decodes the pickle starting at byte `start`; `end` is the byte after its STOP. */
export function unpickleAt(
  bytes: Uint8Array,
  start: number,
  opts: UnpickleOptions,
): { value: unknown; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [], marks: number[] = [], memo = new Map<number, unknown>();
  let pos = start, op = 0, opAt = start;
  const fail = (problem: string): never => {
    throw new Error(`${opts.source}: unsafe or corrupt pickle at byte ${opAt}: ${problem}`);
  };
  const need = (n: number) => {
    if (pos + n > bytes.length) fail("truncated");
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => bytes[need(1)];
  const u16 = () => view.getUint16(need(2), true);
  const u32 = () => view.getUint32(need(4), true);
  const u64 = () => {
    const v = view.getBigUint64(need(8), true);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? fail("length too large") : Number(v);
  };
  const text = (n: number) => new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(need(n), pos));
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail("unterminated GLOBAL");
    return text(end - pos + 1).slice(0, -1);
  };
  const pop = () => (stack.length > (marks.at(-1) ?? 0) ? stack.pop() : fail("stack underflow"));
  const top = () => (stack.length ? stack[stack.length - 1] : fail("empty stack"));
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) fail("missing MARK");
    return stack.splice(m!);
  };
  const global = (module: string, name: string) =>
    opts.findGlobal(module, name) ??
      fail(`global ${module}.${name} is not allowed (only tensors and state-dict containers may be loaded)`);
  const asDict = (x: unknown) => (x instanceof Map ? x : fail("SETITEM(S) on a non-dict"));
  const asList = (
    x: unknown,
  ) => (Array.isArray(x) && !Object.isFrozen(x) ? x : fail("APPEND(S) on a non-list"));
  const setItems = (d: Map<unknown, unknown>, kv: unknown[]) => {
    if (kv.length % 2) fail("odd number of items for SETITEMS");
    for (let i = 0; i < kv.length; i += 2) d.set(kv[i], kv[i + 1]);
  };
  const push = (x: unknown) => stack.push(x);
  const get = (i: number) => (memo.has(i) ? memo.get(i) : fail(`memo key ${i} was never stored`));

  while (true) {
    opAt = pos;
    op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("pickle protocol newer than 5");
        break;
      case 0x95: // FRAME: a hint for buffered readers
        u64();
        break;
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length) fail("STOP with a malformed stack");
        return { value: stack[0], end: pos };
      }
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(view.getInt32(need(4), true));
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: { // LONG1: little-endian two's complement of n bytes
        const n = u8(), at = need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]);
        if (n && bytes[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        // Beyond 2^53 stays a bigint (torch's legacy magic number); sizes and offsets never are.
        push(v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER) ? v : Number(v));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        push(view.getFloat64(need(8), false));
        break;
      case 0x58: // BINUNICODE
        push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        push(text(u64()));
        break;
      case 0x42: // BINBYTES
      case 0x43: { // SHORT_BINBYTES
        const n = op === 0x42 ? u32() : u8();
        push(bytes.slice(need(n), pos));
        break;
      }
      case 0x29: // EMPTY_TUPLE
        push(Object.freeze([]));
        break;
      case 0x74: // TUPLE
        push(Object.freeze(popMark()));
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: { // TUPLE3
        const n = op - 0x84;
        if (stack.length - (marks.at(-1) ?? 0) < n) fail("stack underflow");
        push(Object.freeze(stack.splice(stack.length - n)));
        break;
      }
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x61: { // APPEND
        const x = pop();
        asList(top()).push(x);
        break;
      }
      case 0x65: { // APPENDS
        const xs = popMark();
        asList(top()).push(...xs);
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        setItems(asDict(top()), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const kv = popMark();
        setItems(asDict(top()), kv);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        push(get(u8()));
        break;
      case 0x6a: // LONG_BINGET
        push(get(u32()));
        break;
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        push(global(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        push(global(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), fn = pop();
        if (!isCallable(fn)) fail("REDUCE of something that is not an allowed callable");
        if (!Array.isArray(args)) fail("REDUCE arguments are not a tuple");
        try {
          push((fn as Callable).call(args as unknown[]));
        } catch (e) {
          fail(`${(fn as Callable).qualifiedName}: ${(e as Error).message}`);
        }
        break;
      }
      case 0x62: { // BUILD: only an OrderedDict's attributes (torch's `_metadata`), which we drop
        pop();
        if (!(top() instanceof Map)) fail("BUILD (object state) on something other than a dict");
        break;
      }
      case 0x51: // BINPERSID
        push(opts.persistentLoad(pop()));
        break;
      default:
        fail(
          `opcode 0x${op.toString(16).padStart(2, "0")}${
            REFUSED[op] ? ` (${REFUSED[op]})` : ""
          } is not allowed`,
        );
    }
  }
}

function isCallable(x: unknown): x is Callable {
  return typeof x === "object" && x !== null && typeof (x as Callable).call === "function" &&
    typeof (x as Callable).qualifiedName === "string";
}
