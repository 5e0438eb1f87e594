// Weighted threshold banks on forms with sum |w| up to 2^63 - 1: exact 64-bit two's-complement
// sums held as (lo, hi) u32 pairs with carry, since WGSL has no 64-bit integers.
// One invocation per (form, word), 32 lanes each, as in threshold_narrow.wgsl.

@group(1) @binding(0) var<storage, read> forms: array<vec4<u32>>; // term start/end, thr start/end
@group(1) @binding(1) var<storage, read> terms: array<vec4<u32>>; // (slot, w lo, w hi, 0)
@group(1) @binding(2) var<storage, read> thrs: array<vec4<u32>>;  // (t lo, t hi, out slot, 0)

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_id(gid, nwg);
    if (t >= P.total) {
        return;
    }
    let f = forms[P.first + t / P.words];
    let word = t % P.words;
    var lo: array<u32, 32>;
    var hi: array<u32, 32>;
    for (var b = 0u; b < 32u; b++) {
        lo[b] = 0u;
        hi[b] = 0u;
    }
    for (var j = f.x; j < f.y; j++) {
        let term = terms[j];
        let x = load(term.x, word);
        if (x != 0u) {
            for (var b = 0u; b < 32u; b++) {
                let m = 0u - ((x >> b) & 1u);
                let wlo = term.y & m;
                let whi = term.z & m;
                let nlo = lo[b] + wlo;
                hi[b] = hi[b] + whi + select(0u, 1u, nlo < wlo);
                lo[b] = nlo;
            }
        }
    }
    for (var k = f.z; k < f.w; k++) {
        let th = thrs[k];
        let thi = bitcast<i32>(th.y);
        var out = 0u;
        for (var b = 0u; b < 32u; b++) {
            let shi = bitcast<i32>(hi[b]);
            let ge = (shi > thi) || (shi == thi && lo[b] >= th.x);
            out |= select(0u, 1u << b, ge);
        }
        store(th.z, word, out);
    }
}
