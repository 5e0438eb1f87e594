// Gather the output literals into a dense block: dst[k * words + word] = value of output k.

@group(1) @binding(0) var<storage, read> outs: array<u32>;            // slot literals
@group(1) @binding(1) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_id(gid, nwg);
    if (t >= P.total) {
        return;
    }
    let k = P.first + t / P.words;
    let word = t % P.words;
    dst[k * P.words + word] = load_lit(outs[k], word);
}
