//! VAR weights: every tensor of the reference implementation's state_dict that the generation
//! pass reads, as F(p, q) constants, keyed by its state_dict name.
//!
//! Two sources:
//! - [`VarWeights::seeded`]: a deterministic function of `(config, seed)`. Each tensor is drawn
//!   from its own stream (SplitMix64 seeded with `seed` mixed with the FNV-1a hash of the
//!   tensor's name), uniformly in `[-s, s]` (plus an offset for norm gains), then rounded to the
//!   format. The scales keep activations in a sensible range: linear and convolution weights
//!   `s = sqrt(3 / fan_in)` (variance `1 / fan_in`), biases `0.1`, embeddings and codebook `1`
//!   (class) / `0.5` (positions, levels) / `1` (codebook), AdaLN weights (and shared AdaLN's
//!   `ada_gss`) `0.5 sqrt(3 / C)`, `scale_mul_1H11 = ln 4 +- 0.5` (VAR initialises it to ln 4),
//!   GroupNorm gains `1 +- 0.2`.
//! - Weight files ([`VarWeights::load`], [`VarWeights::from_raw`], [`VarWeights::from_safetensors`]):
//!   PyTorch checkpoints and safetensors files read by [`checkpoint`] with the reference names
//!   and shapes (see [`expected_tensors`]); dtypes f32, f16 and bf16 are accepted and rounded to
//!   the format with [`Format::from_f32`]. A missing tensor, a wrong shape, an unsupported dtype,
//!   a non-finite value or a tensor the configuration has no place for is
//!   [`ModelError::Weights`] naming the tensor; only the tensors unused by design (the encoder,
//!   `quant_conv`, EMA statistics and training buffers: [`checkpoint::unused_by_design`],
//!   docs/var.md "Checkpoints") may be present besides. Nothing is zero-filled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use safetensors::Dtype;

use crate::circuit::random::SplitMix64;
use crate::float::{Float, Format};

use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;
use super::checkpoint::{self, RawData, RawTensors};
use super::config::{VarConfig, NUM_PHI};
use super::decoder::DecoderWeights;
use super::recon::ReconWeights;

/// How a tensor is initialised by [`VarWeights::seeded`].
#[derive(Copy, Clone, PartialEq, Debug)]
pub enum Init {
    /// Uniform in `[-s, s]`.
    Uniform(f64),
    /// Uniform in `[c - s, c + s]`.
    Around(f64, f64),
}

/// One tensor the pass needs: its state_dict name, shape and seeded initialisation.
#[derive(Clone, PartialEq, Debug)]
pub struct TensorSpec {
    /// The state_dict name.
    pub name: String,
    /// The shape (PyTorch layout).
    pub shape: Vec<usize>,
    /// The seeded initialisation.
    pub init: Init,
}

fn spec(name: impl Into<String>, shape: Vec<usize>, init: Init) -> TensorSpec {
    TensorSpec {
        name: name.into(),
        shape,
        init,
    }
}

fn linear_specs(v: &mut Vec<TensorSpec>, name: &str, dout: usize, din: usize, bias: bool) {
    let s = (3.0 / din as f64).sqrt();
    v.push(spec(
        format!("{name}.weight"),
        vec![dout, din],
        Init::Uniform(s),
    ));
    if bias {
        v.push(spec(format!("{name}.bias"), vec![dout], Init::Uniform(0.1)));
    }
}

fn conv_specs(v: &mut Vec<TensorSpec>, name: &str, cout: usize, cin: usize, k: usize) {
    let s = (3.0 / (cin * k * k) as f64).sqrt();
    v.push(spec(
        format!("{name}.weight"),
        vec![cout, cin, k, k],
        Init::Uniform(s),
    ));
    v.push(spec(format!("{name}.bias"), vec![cout], Init::Uniform(0.1)));
}

fn norm_specs(v: &mut Vec<TensorSpec>, name: &str, c: usize) {
    v.push(spec(
        format!("{name}.weight"),
        vec![c],
        Init::Around(1.0, 0.2),
    ));
    v.push(spec(format!("{name}.bias"), vec![c], Init::Uniform(0.1)));
}

fn resnet_specs(v: &mut Vec<TensorSpec>, name: &str, cin: usize, cout: usize) {
    norm_specs(v, &format!("{name}.norm1"), cin);
    conv_specs(v, &format!("{name}.conv1"), cout, cin, 3);
    norm_specs(v, &format!("{name}.norm2"), cout);
    conv_specs(v, &format!("{name}.conv2"), cout, cout, 3);
    if cin != cout {
        conv_specs(v, &format!("{name}.nin_shortcut"), cout, cin, 1);
    }
}

fn attn_specs(v: &mut Vec<TensorSpec>, name: &str, c: usize) {
    norm_specs(v, &format!("{name}.norm"), c);
    conv_specs(v, &format!("{name}.qkv"), 3 * c, c, 1);
    conv_specs(v, &format!("{name}.proj_out"), c, c, 1);
}

/// Every tensor the generation pass of `cfg` reads, in a fixed order, with the reference
/// implementation's names and shapes (VAR `models/var.py`, `basic_var.py`, `quant.py`,
/// `basic_vae.py`; the decoder levels are `decoder.up.{level}` with level 0 at full resolution,
/// `nin_shortcut` only where the channel count changes, attention tensors only where
/// `vae_mid_attn` / `vae_up_attn` put an attention block).
pub fn expected_tensors(cfg: &VarConfig) -> Result<Vec<TensorSpec>> {
    cfg.validate()?;
    let c = cfg.width;
    let mut v = Vec::with_capacity(64);
    v.push(spec(
        "class_emb.weight",
        vec![cfg.num_classes + 1, c],
        Init::Uniform(1.0),
    ));
    v.push(spec(
        "pos_start",
        vec![1, cfg.scale_tokens(0), c],
        Init::Uniform(0.5),
    ));
    v.push(spec(
        "pos_1LC",
        vec![1, cfg.total_tokens(), c],
        Init::Uniform(0.5),
    ));
    v.push(spec(
        "lvl_embed.weight",
        vec![cfg.num_scales(), c],
        Init::Uniform(0.5),
    ));
    linear_specs(&mut v, "word_embed", c, cfg.cvae, true);
    let ada = 0.5 * (3.0 / c as f64).sqrt();
    for i in 0..cfg.depth {
        let b = format!("blocks.{i}");
        v.push(spec(
            format!("{b}.attn.mat_qkv.weight"),
            vec![3 * c, c],
            Init::Uniform((3.0 / c as f64).sqrt()),
        ));
        v.push(spec(
            format!("{b}.attn.q_bias"),
            vec![c],
            Init::Uniform(0.1),
        ));
        v.push(spec(
            format!("{b}.attn.v_bias"),
            vec![c],
            Init::Uniform(0.1),
        ));
        v.push(spec(
            format!("{b}.attn.scale_mul_1H11"),
            vec![1, cfg.heads, 1, 1],
            Init::Around(4f64.ln(), 0.5),
        ));
        linear_specs(&mut v, &format!("{b}.attn.proj"), c, c, true);
        linear_specs(&mut v, &format!("{b}.ffn.fc1"), cfg.hidden(), c, true);
        linear_specs(&mut v, &format!("{b}.ffn.fc2"), c, cfg.hidden(), true);
        if cfg.shared_aln {
            v.push(spec(
                format!("{b}.ada_gss"),
                vec![1, 1, 6, c],
                Init::Uniform(ada),
            ));
        } else {
            v.push(spec(
                format!("{b}.ada_lin.1.weight"),
                vec![6 * c, c],
                Init::Uniform(ada),
            ));
            v.push(spec(
                format!("{b}.ada_lin.1.bias"),
                vec![6 * c],
                Init::Uniform(0.1),
            ));
        }
    }
    if cfg.shared_aln {
        v.push(spec(
            "shared_ada_lin.1.weight",
            vec![6 * c, c],
            Init::Uniform(ada),
        ));
        v.push(spec(
            "shared_ada_lin.1.bias",
            vec![6 * c],
            Init::Uniform(0.1),
        ));
    }
    v.push(spec(
        "head_nm.ada_lin.1.weight",
        vec![2 * c, c],
        Init::Uniform(ada),
    ));
    v.push(spec(
        "head_nm.ada_lin.1.bias",
        vec![2 * c],
        Init::Uniform(0.1),
    ));
    linear_specs(&mut v, "head", cfg.vocab, c, true);
    // VQ-VAE side.
    let z = cfg.cvae;
    v.push(spec(
        "quantize.embedding.weight",
        vec![cfg.vocab, z],
        Init::Uniform(1.0),
    ));
    for k in 0..NUM_PHI {
        conv_specs(
            &mut v,
            &format!("quantize.quant_resi.qresi_ls.{k}"),
            z,
            z,
            3,
        );
    }
    conv_specs(&mut v, "post_quant_conv", z, z, 3);
    let nl = cfg.vae_ch_mult.len();
    let mut block_in = cfg.vae_ch * cfg.vae_ch_mult[nl - 1];
    conv_specs(&mut v, "decoder.conv_in", block_in, z, 3);
    resnet_specs(&mut v, "decoder.mid.block_1", block_in, block_in);
    if cfg.vae_mid_attn {
        attn_specs(&mut v, "decoder.mid.attn_1", block_in);
    }
    resnet_specs(&mut v, "decoder.mid.block_2", block_in, block_in);
    for level in (0..nl).rev() {
        let block_out = cfg.vae_ch * cfg.vae_ch_mult[level];
        for j in 0..=cfg.vae_num_res_blocks {
            resnet_specs(
                &mut v,
                &format!("decoder.up.{level}.block.{j}"),
                block_in,
                block_out,
            );
            block_in = block_out;
            if level == nl - 1 && cfg.vae_up_attn {
                attn_specs(&mut v, &format!("decoder.up.{level}.attn.{j}"), block_in);
            }
        }
        if level != 0 {
            conv_specs(
                &mut v,
                &format!("decoder.up.{level}.upsample.conv"),
                block_in,
                block_in,
                3,
            );
        }
    }
    norm_specs(&mut v, "decoder.norm_out", block_in);
    conv_specs(&mut v, "decoder.conv_out", cfg.vae_out_ch, block_in, 3);
    Ok(v)
}

/// FNV-1a of a name (per-tensor seed mixing; stable across platforms and versions).
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The seeded tensor of `spec` (the values [`VarWeights::seeded`] holds for it): a function of
/// `(fmt, seed, spec)` only, so one tensor can be generated without the others.
pub fn seeded_values(fmt: Format, seed: u64, spec: &TensorSpec) -> Result<Tensor<Float>> {
    let n: usize = spec.shape.iter().product();
    let mut rng = SplitMix64::new(seed ^ fnv1a(&spec.name).rotate_left(17));
    let xs: Vec<f64> = (0..n)
        .map(|_| {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let r = 2.0 * u - 1.0;
            match spec.init {
                Init::Uniform(sc) => r * sc,
                Init::Around(c, sc) => c + r * sc,
            }
        })
        .collect();
    Tensor::from_f64(fmt, spec.shape.clone(), &xs)
}

/// Weights of one configuration: state_dict name -> F(p, q) tensor.
///
/// Invariant: holds exactly the tensors of [`expected_tensors`] with their shapes (extra
/// tensors of a file are dropped), every value in the format `fmt`; every constructor checks it
/// ([`VarWeights::from_map`]). The decoder and phase-2 tensors are also held as the typed
/// structs of `decoder.rs` and `recon.rs` (same values).
#[derive(Clone, PartialEq, Debug)]
pub struct VarWeights {
    fmt: Format,
    tensors: BTreeMap<String, Tensor<Float>>,
    /// The decoder's weights (typed view of the `post_quant_conv.*` and `decoder.*` tensors).
    pub decoder: DecoderWeights,
    /// Phase 2's weights (typed view of `quantize.*`).
    pub recon: ReconWeights,
}

impl VarWeights {
    /// Deterministic weights for `cfg` from `seed` (see the module docs for the scales).
    pub fn seeded(cfg: &VarConfig, seed: u64) -> Result<VarWeights> {
        let mut tensors = BTreeMap::new();
        for s in expected_tensors(cfg)? {
            tensors.insert(s.name.clone(), seeded_values(cfg.fmt, seed, &s)?);
        }
        Self::from_map(cfg, tensors)
    }

    /// Load from the bytes of a safetensors file ([`VarWeights::from_raw`]).
    pub fn from_safetensors(cfg: &VarConfig, bytes: &[u8]) -> Result<VarWeights> {
        let raw = checkpoint::parse_safetensors(bytes, Arc::new(PathBuf::from("<safetensors>")))
            .map_err(|e| match e {
                ModelError::Io(reason) => ModelError::Weights {
                    name: "<file>".into(),
                    reason,
                },
                e => e,
            })?;
        Self::from_raw(cfg, &raw)
    }

    /// Weights of `cfg` from the tensors of weight files: [`checkpoint::check_tensors`] (every
    /// tensor of [`expected_tensors`] with its shape, nothing else except the tensors unused by
    /// design; errors name the tensor), then every value, which must be a finite float, rounded
    /// to `cfg.fmt` ([`Format::from_f32`]; f32, f16 and bf16 values are exact in f32).
    pub fn from_raw(cfg: &VarConfig, raw: &RawTensors) -> Result<VarWeights> {
        checkpoint::check_tensors(cfg, raw)?;
        let fmt = cfg.fmt;
        let mut tensors = BTreeMap::new();
        for s in expected_tensors(cfg)? {
            let err = |reason: String| ModelError::Weights {
                name: s.name.clone(),
                reason,
            };
            let t = raw
                .get(&s.name)
                .ok_or_else(|| err("missing from the weights".into()))?;
            let vals = match &t.data {
                RawData::Float(v) => v,
                RawData::Int(_) => {
                    return Err(err(format!(
                        "integer dtype {:?} (f32, f16 and bf16 are accepted)",
                        t.dtype
                    )))
                }
                RawData::Unsupported(d) => {
                    return Err(err(format!(
                        "unsupported dtype {d} (f32, f16 and bf16 are accepted)"
                    )))
                }
            };
            let n: usize = s.shape.iter().product();
            if vals.len() != n {
                return Err(err(format!("{} values for {n} elements", vals.len())));
            }
            let mut fl = Vec::with_capacity(n);
            for (k, &x) in vals.iter().enumerate() {
                if !x.is_finite() {
                    return Err(err(format!("element {k} is {x}, not finite")));
                }
                fl.push(fmt.from_f32(x)?);
            }
            tensors.insert(s.name.clone(), Tensor::new(s.shape.clone(), fl)?);
        }
        Self::from_map(cfg, tensors)
    }

    /// Load the weight files `paths` (PyTorch checkpoints, safetensors files, or directories of
    /// them: [`checkpoint::read_tensor_files`]) for `cfg` ([`VarWeights::from_raw`]).
    pub fn load(cfg: &VarConfig, paths: &[PathBuf]) -> Result<VarWeights> {
        Self::from_raw(cfg, &checkpoint::read_tensor_files(paths)?)
    }

    /// Weights from a name -> tensor map: checks that every tensor of [`expected_tensors`] is
    /// present with its shape and every value is in `cfg.fmt` (errors name the tensor); extra
    /// tensors are dropped.
    pub fn from_map(cfg: &VarConfig, mut map: BTreeMap<String, Tensor<Float>>) -> Result<Self> {
        let fmt = cfg.fmt;
        let mut tensors = BTreeMap::new();
        for s in expected_tensors(cfg)? {
            let t = map.remove(&s.name).ok_or_else(|| ModelError::Weights {
                name: s.name.clone(),
                reason: "missing".into(),
            })?;
            if t.shape() != s.shape.as_slice() {
                return Err(ModelError::Weights {
                    name: s.name.clone(),
                    reason: format!("shape {:?}, expected {:?}", t.shape(), s.shape),
                });
            }
            if let Some(x) = t.data().iter().find(|x| x.format() != fmt) {
                return Err(ModelError::Weights {
                    name: s.name.clone(),
                    reason: format!("value in format {}, expected {fmt}", x.format()),
                });
            }
            tensors.insert(s.name, t);
        }
        let mut get = |name: &str, _shape: &[usize]| -> Result<Tensor<Float>> {
            tensors
                .get(name)
                .cloned()
                .ok_or_else(|| ModelError::Weights {
                    name: name.to_string(),
                    reason: "missing".into(),
                })
        };
        let decoder = DecoderWeights::load(cfg, &mut get)?;
        let recon = ReconWeights::load(cfg, &mut get)?;
        Ok(VarWeights {
            fmt,
            tensors,
            decoder,
            recon,
        })
    }

    /// Load one weight file or directory from `path` ([`VarWeights::load`]: a safetensors file
    /// or a PyTorch checkpoint).
    pub fn load_safetensors(cfg: &VarConfig, path: &Path) -> Result<VarWeights> {
        Self::load(cfg, &[path.to_path_buf()])
    }

    /// The tensors as a safetensors file in f32 (every tensor held, in name order).
    ///
    /// Errors ([`ModelError::Weights`] naming the tensor) when a value is not exactly an f32
    /// (possible only for p > 24 or exponents beyond f32's range), so that saving then loading
    /// gives back the same bits.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        tensors_to_safetensors(&self.tensors)
    }

    /// Write [`VarWeights::to_safetensors`] to `path`.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let bytes = self.to_safetensors()?;
        std::fs::write(path, bytes)
            .map_err(|e| ModelError::Io(format!("writing {}: {e}", path.display())))
    }

    /// The format of every value.
    pub fn format(&self) -> Format {
        self.fmt
    }

    /// The tensor `name`; [`ModelError::Weights`] naming it when absent.
    pub fn get(&self, name: &str) -> Result<&Tensor<Float>> {
        self.tensors.get(name).ok_or_else(|| ModelError::Weights {
            name: name.to_string(),
            reason: "missing".into(),
        })
    }

    /// The tensor `name`, checked to have `shape`.
    pub fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<&Tensor<Float>> {
        let t = self.get(name)?;
        if t.shape() != shape {
            return Err(ModelError::Weights {
                name: name.to_string(),
                reason: format!("shape {:?}, expected {shape:?}", t.shape()),
            });
        }
        Ok(t)
    }

    /// The flat data of tensor `name` (row-major).
    pub fn data(&self, name: &str) -> Result<&[Float]> {
        Ok(self.get(name)?.data())
    }

    /// All tensors by name.
    pub fn tensors(&self) -> &BTreeMap<String, Tensor<Float>> {
        &self.tensors
    }

    /// Check that these weights fit `cfg` (format, names and shapes).
    pub fn check(&self, cfg: &VarConfig) -> Result<()> {
        if cfg.fmt != self.fmt {
            return Err(ModelError::Weights {
                name: "<all>".into(),
                reason: format!("weights in {}, configuration in {}", self.fmt, cfg.fmt),
            });
        }
        for s in expected_tensors(cfg)? {
            self.get_shaped(&s.name, &s.shape)?;
        }
        Ok(())
    }

    /// Total number of parameters held.
    pub fn num_params(&self) -> usize {
        self.tensors.values().map(|t| t.len()).sum()
    }
}

/// A name -> tensor map as a safetensors file in f32 (tests use it to write deliberately broken
/// files). Errors ([`ModelError::Weights`] naming the tensor) when a value is not exactly an
/// f32, so that saving then loading gives back the same bits.
pub fn tensors_to_safetensors(tensors: &BTreeMap<String, Tensor<Float>>) -> Result<Vec<u8>> {
    let mut bufs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in tensors {
        let mut bytes = Vec::with_capacity(4 * t.len());
        for &x in t.data() {
            let f = x.to_f32();
            if x.format().from_f32(f)? != x || !f.is_finite() {
                return Err(ModelError::Weights {
                    name: name.clone(),
                    reason: format!("{x} is not exactly representable in f32"),
                });
            }
            bytes.extend_from_slice(&f.to_le_bytes());
        }
        bufs.push((name.clone(), t.shape().to_vec(), bytes));
    }
    let views = bufs
        .iter()
        .map(|(n, s, b)| {
            safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| ModelError::Weights {
                    name: n.clone(),
                    reason: format!("{e}"),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(|e| ModelError::Weights {
        name: "<file>".into(),
        reason: format!("serialising: {e}"),
    })
}
