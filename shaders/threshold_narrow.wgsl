// Weighted threshold banks whose form has sum |w| <= 2^31 - 2: exact i32 sums.
// One invocation per (form, word): for each of the 32 instances (lanes) of the word, the sum of
// the weights of the set inputs; then every threshold of the bank compares against it.

@group(1) @binding(0) var<storage, read> forms: array<vec4<u32>>; // term start/end, thr start/end
@group(1) @binding(1) var<storage, read> terms: array<vec2<u32>>; // (slot, weight as i32 bits)
@group(1) @binding(2) var<storage, read> thrs: array<vec2<u32>>;  // (threshold i32 bits, out slot)

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_id(gid, nwg);
    if (t >= P.total) {
        return;
    }
    let f = forms[P.first + t / P.words];
    let word = t % P.words;
    var sum: array<i32, 32>;
    for (var b = 0u; b < 32u; b++) {
        sum[b] = 0;
    }
    for (var j = f.x; j < f.y; j++) {
        let term = terms[j];
        let x = load(term.x, word);
        if (x != 0u) {
            let w = bitcast<i32>(term.y);
            for (var b = 0u; b < 32u; b++) {
                sum[b] += select(0, w, ((x >> b) & 1u) != 0u);
            }
        }
    }
    for (var k = f.z; k < f.w; k++) {
        let th = thrs[k];
        let theta = bitcast<i32>(th.x);
        var out = 0u;
        for (var b = 0u; b < 32u; b++) {
            out |= select(0u, 1u << b, sum[b] >= theta);
        }
        store(th.y, word, out);
    }
}
