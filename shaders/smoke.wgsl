// Smoke kernel: a per-element integer hash, checked against the same formula on the CPU.
// dst[i] = ((x * 2654435761) ^ (x >> 7)) + countOneBits(x) + i, with x = src[i] (wrapping u32).

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= arrayLength(&dst)) {
        return;
    }
    let x = src[i];
    dst[i] = ((x * 2654435761u) ^ (x >> 7u)) + countOneBits(x) + i;
}
