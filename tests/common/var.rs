//! Inputs for the VAR pass.

use tcvar::model::var::config::{Sampling, VarConfig};
use tcvar::model::var::pass::VarInput;

/// `n` inputs for `cfg`: class `i mod num_classes` for input `i`, and for top-k or top-p
/// sampling one uniform in `[0, 1)` per token drawn from a 64-bit linear congruential generator
/// started at `seed` (none for argmax).
pub fn inputs(cfg: &VarConfig, n: usize, seed: u64) -> Vec<VarInput> {
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| VarInput {
            class: i % cfg.num_classes,
            uniforms: match cfg.sampling {
                Sampling::Argmax => Vec::new(),
                Sampling::TopK { .. } | Sampling::TopP { .. } => {
                    (0..cfg.total_tokens()).map(|_| next()).collect()
                }
            },
        })
        .collect()
}
