//! Where the model's weights come from, by state_dict name.
//!
//! A [`WeightProvider`] answers "the tensor `name` of `shape`". [`crate::model::var::weights::
//! VarWeights`] holds every tensor in memory; [`SeededWeights`] generates each seeded tensor
//! when it is asked for (the values of `VarWeights::seeded`, tensor by tensor), so that a pass
//! over a restricted part of a large model (one block of VAR-d16, say) never holds the rest, and
//! a recorder counting a released model's circuit never generates a weight at all.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::float::{Float, Format};

use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;
use super::super::var::config::VarConfig;
use super::super::var::weights::{expected_tensors, seeded_values, TensorSpec, VarWeights};

/// A source of named weight tensors.
pub trait WeightProvider: Sync {
    /// The format of the values.
    fn format(&self) -> Format;
    /// Check that tensor `name` exists with `shape` (without producing its values).
    fn check(&self, name: &str, shape: &[usize]) -> Result<()>;
    /// The tensor `name`, which must have `shape` (an error naming it otherwise).
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Cow<'_, Tensor<Float>>>;
}

fn shape_error(name: &str, got: &[usize], want: &[usize]) -> ModelError {
    ModelError::Weights {
        name: name.to_string(),
        reason: format!("shape {got:?}, expected {want:?}"),
    }
}

impl WeightProvider for VarWeights {
    fn format(&self) -> Format {
        VarWeights::format(self)
    }
    fn check(&self, name: &str, shape: &[usize]) -> Result<()> {
        self.get_shaped(name, shape).map(|_| ())
    }
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Cow<'_, Tensor<Float>>> {
        Ok(Cow::Borrowed(self.get_shaped(name, shape)?))
    }
}

/// The seeded weights of a configuration, generated tensor by tensor on request (equal, tensor
/// for tensor, to [`VarWeights::seeded`] with the same configuration and seed).
#[derive(Clone, Debug)]
pub struct SeededWeights {
    fmt: Format,
    seed: u64,
    specs: HashMap<String, TensorSpec>,
}

impl SeededWeights {
    /// The seeded weights of `cfg` from `seed` (nothing is generated yet).
    pub fn new(cfg: &VarConfig, seed: u64) -> Result<Self> {
        let specs = expected_tensors(cfg)?
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        Ok(SeededWeights {
            fmt: cfg.fmt,
            seed,
            specs,
        })
    }

    fn spec(&self, name: &str, shape: &[usize]) -> Result<&TensorSpec> {
        let s = self.specs.get(name).ok_or_else(|| ModelError::Weights {
            name: name.to_string(),
            reason: "no such tensor in this configuration".into(),
        })?;
        if s.shape != shape {
            return Err(shape_error(name, &s.shape, shape));
        }
        Ok(s)
    }

    /// Number of parameters of the configuration.
    pub fn num_params(&self) -> u64 {
        self.specs
            .values()
            .map(|s| s.shape.iter().product::<usize>() as u64)
            .sum()
    }
}

impl WeightProvider for SeededWeights {
    fn format(&self) -> Format {
        self.fmt
    }
    fn check(&self, name: &str, shape: &[usize]) -> Result<()> {
        self.spec(name, shape).map(|_| ())
    }
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Cow<'_, Tensor<Float>>> {
        let s = self.spec(name, shape)?;
        Ok(Cow::Owned(seeded_values(self.fmt, self.seed, s)?))
    }
}
