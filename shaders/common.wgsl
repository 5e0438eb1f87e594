// Shared prelude of the evaluator kernels (prepended to logic.wgsl, threshold_narrow.wgsl,
// threshold_wide.wgsl and gather.wgsl by the host).
//
// Wire values live in *slots*. Slot s is row (s & (2^shift - 1)) of value buffer s >> shift;
// a row holds `words` u32 words, 32 instances per word (instance i in bit i % 32 of word i / 32).
// Up to four value buffers let the slot storage exceed one binding's size limit.

struct Params {
    first: u32,  // first item (gate or form), local to the bound segment
    count: u32,  // items in this dispatch
    words: u32,  // u32 words per row in this column chunk
    shift: u32,  // log2(slots per value buffer)
    kind: u32,   // logic kernel: 0 = AND, 1 = OR
    total: u32,  // count * words: invocations doing work
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> v0: array<u32>;
@group(0) @binding(2) var<storage, read_write> v1: array<u32>;
@group(0) @binding(3) var<storage, read_write> v2: array<u32>;
@group(0) @binding(4) var<storage, read_write> v3: array<u32>;

fn val_index(slot: u32, word: u32) -> u32 {
    return (slot & ((1u << P.shift) - 1u)) * P.words + word;
}

fn load(slot: u32, word: u32) -> u32 {
    let i = val_index(slot, word);
    switch (slot >> P.shift) {
        case 0u: { return v0[i]; }
        case 1u: { return v1[i]; }
        case 2u: { return v2[i]; }
        default: { return v3[i]; }
    }
}

fn store(slot: u32, word: u32, x: u32) {
    let i = val_index(slot, word);
    switch (slot >> P.shift) {
        case 0u: { v0[i] = x; }
        case 1u: { v1[i] = x; }
        case 2u: { v2[i] = x; }
        default: { v3[i] = x; }
    }
}

// Value of a slot literal (slot << 1 | complement).
fn load_lit(l: u32, word: u32) -> u32 {
    return load(l >> 1u, word) ^ (0u - (l & 1u));
}

// Linear invocation index of a (possibly 2D) dispatch of 64-wide workgroups.
fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}
