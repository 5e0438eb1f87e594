//! Errors of the circuit builder.

use thiserror::Error;

/// An error from building a circuit. Building never panics on user input.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum CircuitError {
    /// A gate's weights are too large for exact `i64` evaluation.
    #[error("threshold gate weights too large: sum of |weights| is {sum_abs}, the limit is {limit} (2^62)")]
    WeightOverflow {
        /// The sum of absolute weights after normalisation (saturated at `i128::MAX`).
        sum_abs: i128,
        /// The largest permitted sum.
        limit: i128,
    },
    /// A threshold lies outside the range the builder accepts.
    #[error("threshold {threshold} out of range: |threshold| must be below 2^62")]
    ThresholdOverflow {
        /// The offending threshold.
        threshold: i128,
    },
    /// The circuit would exceed 2^31 - 1 nodes (literals carry one complement bit in a `u32`).
    #[error("circuit too large: more than {limit} nodes")]
    TooManyNodes {
        /// The node limit.
        limit: u64,
    },
    /// The circuit would exceed the builder's byte limit ([`super::Builder::set_byte_limit`]).
    #[error("circuit too large: {needed} bytes of nodes and forms needed, the limit is {limit}")]
    OverBudget {
        /// Bytes the builder would hold.
        needed: u64,
        /// The limit.
        limit: u64,
    },
    /// Two input words or two output words share a name.
    #[error("duplicate {kind} word name {name:?}")]
    DuplicateName {
        /// "input" or "output".
        kind: &'static str,
        /// The repeated name.
        name: String,
    },
    /// A literal names a wire that does not exist in this builder.
    #[error("literal refers to wire {wire}, but the circuit has only {nodes} nodes")]
    UnknownWire {
        /// The wire index.
        wire: u32,
        /// The number of nodes.
        nodes: u32,
    },
    /// A [`super::Levelized`] circuit that breaks one of its invariants (the message names it);
    /// see [`super::Levelized::check`].
    #[error("malformed levelized circuit: {0}")]
    Malformed(String),
    /// `pop_region` without a matching `push_region`.
    #[error("pop_region called with no open region")]
    RegionUnderflow,
    /// A region name contains a '.' or is empty.
    #[error("invalid region name {0:?}: it must be non-empty and contain no '.'")]
    InvalidRegionName(String),
}

/// Result alias for circuit building.
pub type Result<T> = std::result::Result<T, CircuitError>;
