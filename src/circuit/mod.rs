//! The threshold-gate IR (docs/circuit_format.md).
//!
//! A circuit is a DAG of *threshold gates* `out = [sum_i w_i * x_i >= theta]` over wires held in
//! flat arrays indexed by `u32` ([`Wire`]); literals ([`Lit`]) carry a complement bit so that NOT
//! is free. Gates comparing the same weighted sum against different thresholds share one *linear
//! form* (a *bank*), which is evaluated once. AND, OR, NOT and MAJORITY are special cases.
//!
//! - [`Builder`] creates circuits with structural hashing, constant and negation folding, and
//!   levels known at creation;
//! - [`Circuit`] is the finished netlist; [`Circuit::levelize`] turns it into [`Levelized`], the
//!   per-level, per-kind arrays the evaluators consume.

pub mod batch;
pub mod builder;
pub mod checked;
pub mod error;
pub mod ids;
pub mod levelize;
pub mod netlist;

pub use batch::{Batch, BatchError};
pub use builder::Builder;
pub use checked::CheckedLevelized;
pub use error::CircuitError;
pub use ids::{FormId, Lit, RegionId, Row, RowLit, Wire};
pub use levelize::{Level, Levelized};
pub use netlist::{Circuit, Forms, Node, Region, Word};

pub mod program;
pub mod random;
pub mod serial;
pub mod stats;
pub mod verilog;
