// Unit-weight threshold banks (every |w| = 1, at most 254 terms) by an 8-plane bit-sliced
// counter: all 32 lanes of a word are counted together with constant-index planes, which the
// shader compiler keeps in registers.
//
// As in threshold_sliced.wgsl the host rewrites the form as a count C of literals
// (NOT x_j for w_j = -1) with thresholds T' = t + #{w_j = -1} clamped to [0, n + 1] <= 255.

@group(1) @binding(0) var<storage, read> forms: array<vec4<u32>>; // term start/end, thr start/end
@group(1) @binding(1) var<storage, read> terms: array<vec2<u32>>; // (slot literal, 0)
@group(1) @binding(2) var<storage, read> thrs: array<vec2<u32>>;  // (T', out slot)

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_id(gid, nwg);
    if (t >= P.total) {
        return;
    }
    let f = forms[P.first + t / P.words];
    let word = t % P.words;
    var c0 = 0u; var c1 = 0u; var c2 = 0u; var c3 = 0u;
    var c4 = 0u; var c5 = 0u; var c6 = 0u; var c7 = 0u;
    for (var j = f.x; j < f.y; j++) {
        var x = load_lit(terms[j].x, word);
        var k = c0 & x; c0 ^= x; x = k;
        k = c1 & x; c1 ^= x; x = k;
        k = c2 & x; c2 ^= x; x = k;
        k = c3 & x; c3 ^= x; x = k;
        k = c4 & x; c4 ^= x; x = k;
        k = c5 & x; c5 ^= x; x = k;
        k = c6 & x; c6 ^= x; x = k;
        c7 ^= x;
    }
    let planes = array<u32, 8>(c0, c1, c2, c3, c4, c5, c6, c7);
    for (var k = f.z; k < f.w; k++) {
        let th = thrs[k];
        var gt = 0u;
        var eq = 0xffffffffu;
        for (var i = 8u; i > 0u; i--) {
            let p = planes[i - 1u];
            // Branch-free: m = all-ones when bit i-1 of T' is set.
            let m = 0u - ((th.x >> (i - 1u)) & 1u);
            gt |= eq & p & ~m;
            eq &= ~(p ^ m);
        }
        store(th.y, word, gt | eq);
    }
}
