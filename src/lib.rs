//! # tcvar
//!
//! Compile forward passes of Visual AutoRegressive (VAR) image models into constant-depth
//! threshold circuits (the uniform TC^0 families of "Circuit Complexity Bounds for Visual
//! Autoregressive Model") and evaluate them in large bit-sliced batches on the CPU and the GPU.
//!
//! Data flows one way (see docs/float.md):
//! - [`float`]: the F(p, q) reference arithmetic, the single source of truth for numerics;
//! - [`circuit`]: the threshold-gate IR, its builder, levelizer, statistics, file format and export;
//! - [`gadgets`]: constant-depth integer and float arithmetic built into a circuit;
//! - [`model`]: VAR configurations, weights, the reference pass and the compiler;
//! - [`eval`]: the CPU and GPU batch evaluators, which only know [`circuit`].

pub mod circuit;
pub mod eval;
pub mod float;
pub mod gadgets;
pub mod model;

/// The README's examples, compiled and run as doc-tests so that they cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
