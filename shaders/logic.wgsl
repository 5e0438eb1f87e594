// Unit-weight AND / OR gates: one invocation per (gate, word).
// AND(l_j) = NOT OR(NOT l_j): with inv = all-ones for AND, acc = OR(l_j ^ inv), out = acc ^ inv.

@group(1) @binding(0) var<storage, read> gates: array<vec2<u32>>; // (first literal, out slot)
@group(1) @binding(1) var<storage, read> lits: array<u32>;        // slot literals

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_id(gid, nwg);
    if (t >= P.total) {
        return;
    }
    let g = P.first + t / P.words;
    let word = t % P.words;
    let inv = select(0u, 0xffffffffu, P.kind == 0u);
    let s = gates[g].x;
    let e = gates[g + 1u].x;
    var acc = 0u;
    for (var j = s; j < e; j++) {
        acc |= load_lit(lits[j], word) ^ inv;
    }
    store(gates[g].y, word, acc ^ inv);
}
