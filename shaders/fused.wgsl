// Fused levels: one dispatch evaluates a group of consecutive levels. Workgroup w owns word
// column w (32 instances) of every slot; its 64 invocations share the items of each *step*
// (one per-level dispatch the group replaces: AND, OR, narrow form or unit-weight counter
// items), and a storage barrier after every step makes the step's outputs visible to the
// whole workgroup before the next one reads them. Columns never read each other's words, so
// workgroups need no synchronisation between them.
//
// P.first / P.count: the group's steps; P.words: words per row. The item code is that of
// logic.wgsl, threshold_narrow.wgsl and threshold_count.wgsl.

@group(1) @binding(0) var<storage, read> gates: array<vec2<u32>>; // (first literal, out slot)
@group(1) @binding(1) var<storage, read> lits: array<u32>;        // slot literals
@group(1) @binding(2) var<storage, read> forms: array<vec4<u32>>; // term start/end, thr start/end
@group(1) @binding(3) var<storage, read> terms: array<vec2<u32>>; // narrow: (slot, i32 weight); count: (literal, 0)
@group(1) @binding(4) var<storage, read> thrs: array<vec2<u32>>;  // (threshold, out slot)
@group(1) @binding(5) var<storage, read> steps: array<vec4<u32>>; // (kind, first, count, 0)

fn logic_item(g: u32, word: u32, inv: u32) {
    let s = gates[g].x;
    let e = gates[g + 1u].x;
    var acc = 0u;
    for (var j = s; j < e; j++) {
        acc |= load_lit(lits[j], word) ^ inv;
    }
    store(gates[g].y, word, acc ^ inv);
}

fn narrow_item(fi: u32, word: u32) {
    let f = forms[fi];
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

fn count_item(fi: u32, word: u32) {
    let f = forms[fi];
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
            let m = 0u - ((th.x >> (i - 1u)) & 1u);
            gt |= eq & p & ~m;
            eq &= ~(p ^ m);
        }
        store(th.y, word, gt | eq);
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let word = wid.x + wid.y * nwg.x;
    let in_batch = word < P.words;
    for (var s = P.first; s < P.first + P.count; s++) {
        if (in_batch) {
            let st = steps[s];
            let end = st.y + st.z;
            for (var i = st.y + lid; i < end; i += 64u) {
                switch st.x {
                    case 0u: { logic_item(i, word, 0xffffffffu); }
                    case 1u: { logic_item(i, word, 0u); }
                    case 2u: { narrow_item(i, word); }
                    default: { count_item(i, word); }
                }
            }
        }
        storageBarrier();
    }
}
