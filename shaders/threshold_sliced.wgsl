// Weighted threshold banks by bit-sliced counters: the 32 lanes of a word are added in
// parallel, one u32 per bit plane of the sum, instead of one lane at a time.
//
// The host rewrites each form as C = sum_j |w_j| * l_j over literals l_j (x_j for w_j > 0,
// NOT x_j for w_j < 0), so that S = C - sum_{w<0} |w| and [S >= t] == [C >= t + sum_{w<0} |w|];
// thresholds arrive as T' in [0, sum |w| + 1]. Adding |w| * l is one ripple-carry increment
// of the plane counter at every set bit position of |w| (amortised O(1) planes each). The
// comparison [C >= T'] runs over the planes from the most significant down, 32 lanes at once.
// C < 2^63 (builder bound), so planes 0..62 suffice.

@group(1) @binding(0) var<storage, read> forms: array<vec4<u32>>; // term start/end, thr start/end
@group(1) @binding(1) var<storage, read> terms: array<vec4<u32>>; // (slot literal, |w| lo, |w| hi, 0)
@group(1) @binding(2) var<storage, read> thrs: array<vec4<u32>>;  // (T' lo, T' hi, out slot, 0)

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_id(gid, nwg);
    if (t >= P.total) {
        return;
    }
    let f = forms[P.first + t / P.words];
    let word = t % P.words;
    var c: array<u32, 64>;
    var top = 0u; // planes top.. are zero (and not yet initialised)
    for (var j = f.x; j < f.y; j++) {
        let term = terms[j];
        let x = load_lit(term.x, word);
        if (x == 0u) {
            continue;
        }
        var wl = term.y;
        var wh = term.z;
        loop {
            var pos = 0u;
            if (wl != 0u) {
                pos = countTrailingZeros(wl);
                wl &= wl - 1u;
            } else if (wh != 0u) {
                pos = 32u + countTrailingZeros(wh);
                wh &= wh - 1u;
            } else {
                break;
            }
            var carry = x;
            var i = pos;
            loop {
                if (carry == 0u || i >= 64u) {
                    break;
                }
                if (i >= top) {
                    for (var k = top; k <= i; k++) {
                        c[k] = 0u;
                    }
                    top = i + 1u;
                }
                let nc = c[i] & carry;
                c[i] ^= carry;
                carry = nc;
                i++;
            }
        }
    }
    for (var k = f.z; k < f.w; k++) {
        let th = thrs[k];
        // A bit of T' at or above `top` makes T' larger than any count.
        var high = false;
        if (top < 32u) {
            high = (th.x >> top) != 0u || th.y != 0u;
        } else if (top < 64u) {
            high = (th.y >> (top - 32u)) != 0u;
        }
        var out = 0u;
        if (!high) {
            var gt = 0u;
            var eq = 0xffffffffu;
            for (var i = top; i > 0u; i--) {
                let b = i - 1u;
                var bit = 0u;
                if (b < 32u) {
                    bit = (th.x >> b) & 1u;
                } else {
                    bit = (th.y >> (b - 32u)) & 1u;
                }
                let p = c[b];
                if (bit == 1u) {
                    eq &= p;
                } else {
                    gt |= eq & p;
                    eq &= ~p;
                }
            }
            out = gt | eq;
        }
        store(th.z, word, out);
    }
}
