//! Integer gadget words: masks and two's complement encodings.

/// The low `w` bits set (all 128 for `w >= 128`).
pub fn mask(w: usize) -> u128 {
    if w >= 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    }
}

/// Low `w` bits of the two's complement of `v`.
pub fn tc(v: i128, w: usize) -> u128 {
    (v as u128) & mask(w)
}
