//! The VAR generation pass (docs/var.md): configuration, weights, the autoregressive
//! transformer over scales, feature-map reconstruction, the VQ-VAE decoder, and the whole pass
//! compiled into one threshold circuit (the paper's Theorem 5.11).
//!
//! Every phase is written once, generic over [`super::Arith`]: under [`super::RefArith`] it is
//! the F(p, q) oracle, under [`super::CircuitArith`] the compiler, under [`super::F32Arith`]
//! the f32 model used to measure the format's error. See `docs/var.md`.

pub mod checkpoint;
pub mod config;
pub mod decoder;
pub mod infer;
pub mod pass;
pub mod pickle;
pub mod recon;
pub mod transformer;
pub mod weights;
