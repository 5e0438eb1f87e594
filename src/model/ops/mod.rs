//! Tensor-granular arithmetic: the model written once, recorded as a uniform program or run
//! element by element (docs/program.md).
//!
//! Every tensor operation of the model is an *application*: a scalar [`Kernel`] (a function
//! generic over the scalar [`Arith`] interface, e.g. "the dot product of n pairs plus a bias")
//! evaluated once per point of an index space, each instance's operands gathered from tensors
//! by [`Map`]s written in the tensors' logical coordinates. The kernel and the maps are the one
//! definition of the operation; two kinds of backend ([`TensorArith`]) interpret it:
//! - [`scalar::Scalar`] wraps any scalar backend ([`super::RefArith`] for the F(p, q)
//!   reference, [`super::F32Arith`] for the f32 model, [`super::CircuitArith`] for the explicit
//!   compiler) and runs the kernel for every instance on gathered scalar values;
//! - [`record::Recorder`] builds the kernel once into a circuit template (the kernel run on
//!   [`super::CircuitArith`] over fresh input words) and records one application of it into a
//!   [`crate::circuit::program::Program`]: recording costs one step per tensor operation,
//!   whatever the tensor sizes.
//!
//! The recorded program therefore computes exactly what the reference computes: each template
//! instance is the circuit of the same kernel the reference runs, and the maps are the same.

pub mod kernels;
pub mod nn;
pub mod record;
pub mod scalar;
pub mod weights;

pub use weights::{SeededWeights, WeightProvider};

use crate::float::{Float, Format};

use super::arith::Arith;
use super::error::{ModelError, Result};
use super::tensor::Tensor;

/// What the elements of a tensor are.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum Kind {
    /// F(p, q) values.
    Float,
    /// Truth values.
    Bit,
    /// A choice among `n` alternatives (a token, a class): in programs the binary index
    /// (`bits_for(n)` bits), in the scalar backends the backend's `Choice`.
    Choice(u32),
    /// An exact partial sum ([`Arith::acc_sum`]): in programs a two's complement integer of
    /// this many bits, in the scalar backends the backend's `Acc`.
    Acc(u32),
}

impl Kind {
    /// A short tag for template keys.
    pub fn tag(self) -> String {
        match self {
            Kind::Float => "f".into(),
            Kind::Bit => "b".into(),
            Kind::Choice(n) => format!("c{n}"),
            Kind::Acc(w) => format!("a{w}"),
        }
    }
}

/// Bits of the binary index of a choice among `n` alternatives (at least 1).
pub fn choice_bits(n: u32) -> u32 {
    (32 - n.saturating_sub(1).leading_zeros()).max(1)
}

/// A scalar of backend `A`: a value, a bit or a choice.
pub enum Val<A: Arith> {
    /// A float value.
    F(A::V),
    /// A truth value.
    B(A::Bit),
    /// A choice.
    C(A::Choice),
    /// An exact partial sum.
    A(A::Acc),
}

impl<A: Arith> Clone for Val<A> {
    fn clone(&self) -> Self {
        match self {
            Val::F(v) => Val::F(v.clone()),
            Val::B(v) => Val::B(v.clone()),
            Val::C(v) => Val::C(v.clone()),
            Val::A(v) => Val::A(v.clone()),
        }
    }
}

impl<A: Arith> Val<A> {
    /// The float value (an error for another kind).
    pub fn f(&self) -> Result<&A::V> {
        match self {
            Val::F(v) => Ok(v),
            _ => Err(kind_err("a float")),
        }
    }
    /// The bit (an error for another kind).
    pub fn b(&self) -> Result<&A::Bit> {
        match self {
            Val::B(v) => Ok(v),
            _ => Err(kind_err("a bit")),
        }
    }
    /// The choice (an error for another kind).
    pub fn c(&self) -> Result<&A::Choice> {
        match self {
            Val::C(v) => Ok(v),
            _ => Err(kind_err("a choice")),
        }
    }
    /// The partial sum (an error for another kind).
    pub fn a(&self) -> Result<&A::Acc> {
        match self {
            Val::A(v) => Ok(v),
            _ => Err(kind_err("a partial sum")),
        }
    }
}

fn kind_err(what: &str) -> ModelError {
    ModelError::Shape {
        op: "kernel",
        detail: format!("operand is not {what}"),
    }
}

/// The floats of a port.
pub fn floats<A: Arith>(vs: &[Val<A>]) -> Result<Vec<A::V>> {
    vs.iter().map(|v| v.f().cloned()).collect()
}

/// The partial sums of a port.
pub fn accs<A: Arith>(vs: &[Val<A>]) -> Result<Vec<A::Acc>> {
    vs.iter().map(|v| v.a().cloned()).collect()
}

/// The bits of a port.
pub fn bits<A: Arith>(vs: &[Val<A>]) -> Result<Vec<A::Bit>> {
    vs.iter().map(|v| v.b().cloned()).collect()
}

/// A scalar computation applied per instance: the one definition of an operation's arithmetic.
pub trait Kernel: Clone + Send + Sync + 'static {
    /// A name unique to the computation and its parameters (folded constants included); the
    /// template key adds the format and the ports' kinds and word counts.
    fn key(&self) -> String;
    /// The kinds of the output words.
    fn outputs(&self) -> Vec<Kind>;
    /// The outputs of one instance from the words of each port (in the backend's values).
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>>;
}

/// One coordinate of a source tensor as an affine function of the instance and word indices.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Coord {
    /// The constant.
    pub base: i64,
    /// One coefficient per instance axis.
    pub inst: Vec<i64>,
    /// One coefficient per word axis.
    pub word: Vec<i64>,
}

impl Coord {
    /// `base + inst . i + word . j`.
    #[inline]
    pub fn eval(&self, i: &[usize], j: &[usize]) -> i64 {
        let mut v = self.base;
        for (c, &x) in self.inst.iter().zip(i) {
            v += c * x as i64;
        }
        for (c, &x) in self.word.iter().zip(j) {
            v += c * x as i64;
        }
        v
    }
}

/// A validity condition: the word is read when `0 <= expr < bound`, else it is zero.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Cond {
    /// The expression.
    pub expr: Coord,
    /// The exclusive bound.
    pub bound: i64,
}

/// How the words of one port are gathered from its source tensor, in the source's logical
/// (row-major) coordinates.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Map {
    /// Word `j` (a multi-index in `words`) of instance `i` reads the element whose coordinate
    /// along source axis `a` is `coords[a].eval(i, j)`. With `pad`, a coordinate outside
    /// `[0, shape_a)` reads the zero word (zero padding); without, it is an error. A failed
    /// condition of `conds` also reads the zero word.
    Affine {
        /// The port's word index space (row-major; the port has `product(words)` words).
        words: Vec<usize>,
        /// One coordinate per source axis.
        coords: Vec<Coord>,
        /// Out-of-range coordinates read zero.
        pad: bool,
        /// Extra conditions.
        conds: Vec<Cond>,
    },
    /// An explicit row-major source element per (instance, word), instance-major; `None` reads
    /// the zero word. For small irregular maps only.
    Table {
        /// Words per instance.
        words: usize,
        /// The elements.
        elems: Vec<Option<usize>>,
    },
}

impl Map {
    /// Number of words of the port.
    pub fn num_words(&self) -> usize {
        match self {
            Map::Affine { words, .. } => words.iter().product(),
            Map::Table { words, .. } => *words,
        }
    }

    /// An affine map without padding or conditions.
    pub fn affine(words: Vec<usize>, coords: Vec<Coord>) -> Map {
        Map::Affine {
            words,
            coords,
            pad: false,
            conds: Vec::new(),
        }
    }
}

/// One operand port of an application: its source tensor and map.
pub struct PortSpec<'t, T> {
    /// The source.
    pub src: &'t T,
    /// The map.
    pub map: Map,
}

/// A tensor-granular backend (see the module docs).
pub trait TensorArith {
    /// A tensor value.
    type T: Clone;

    /// The float format.
    fn format(&self) -> Format;
    /// The shape of a tensor.
    fn shape<'a>(&self, t: &'a Self::T) -> &'a [usize];
    /// The element kind of a tensor.
    fn kind(&self, t: &Self::T) -> Kind;
    /// The model weight `name` of `shape` (from the backend's weight provider).
    fn weight(&mut self, name: &str, shape: &[usize]) -> Result<Self::T>;
    /// The values of weight `name` (for constants folded into a template, e.g. a lookup table).
    fn weight_values(&self, name: &str, shape: &[usize]) -> Result<Tensor<Float>>;
    /// A constant float tensor of `shape` computed by `values` from the backend's weights (for
    /// constants derived from weights: a halved kernel, a per-column scale). Only small
    /// tensors: recorders store the values in the program.
    fn constant(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        values: &mut dyn FnMut(&dyn WeightProvider) -> Result<Tensor<Float>>,
    ) -> Result<Self::T>;
    /// A constant tensor of bits.
    fn constant_bits(&mut self, name: &str, shape: Vec<usize>, bits: &[bool]) -> Result<Self::T>;
    /// A constant tensor of choices among `n` (indices `< n`).
    fn constant_choices(
        &mut self,
        name: &str,
        n: u32,
        shape: Vec<usize>,
        idx: &[u32],
    ) -> Result<Self::T>;
    /// Apply kernel `k` over the index space `inst`, port `p` gathered by `ports[p]`; returns
    /// one tensor of shape `inst` per kernel output.
    fn apply<K: Kernel>(
        &mut self,
        name: &str,
        k: &K,
        inst: &[usize],
        ports: &[PortSpec<'_, Self::T>],
    ) -> Result<Vec<Self::T>>;
    /// The concatenation of `parts` along axis 0 (equal trailing shapes and kinds).
    fn concat(&mut self, name: &str, parts: &[&Self::T]) -> Result<Self::T>;
    /// The same elements under another shape of equal size.
    fn reshape(&mut self, t: &Self::T, shape: Vec<usize>) -> Result<Self::T>;
    /// Open a named region (phase, scale, block).
    fn push_region(&mut self, name: &str) -> Result<()>;
    /// Close the innermost region.
    fn pop_region(&mut self) -> Result<()>;
}

/// The shape of the concatenation along axis 0 of tensors with the shapes and kinds `parts`:
/// every part has the first one's trailing shape and kind, and axis 0 is their sum. Errors
/// ([`ModelError::Shape`]): no parts, a scalar part, parts that differ.
pub(crate) fn concat_shape(name: &str, parts: &[(&[usize], Kind)]) -> Result<Vec<usize>> {
    let &(first, kind) = parts.first().ok_or_else(|| ModelError::Shape {
        op: "concat",
        detail: format!("{name}: no parts"),
    })?;
    if first.is_empty()
        || parts
            .iter()
            .any(|&(s, k)| s.len() != first.len() || s[1..] != first[1..] || k != kind)
    {
        return Err(ModelError::Shape {
            op: "concat",
            detail: format!("{name}: parts of different trailing shapes or kinds"),
        });
    }
    let mut shape = first.to_vec();
    shape[0] = parts.iter().map(|p| p.0[0]).sum();
    Ok(shape)
}

/// Shape checks shared by the backends: every port's map fits the instance space and its
/// source, returns the number of instances.
pub(crate) fn check_ports<T>(
    op: &str,
    inst: &[usize],
    ports: &[PortSpec<'_, T>],
    shape_of: impl Fn(&T) -> Vec<usize>,
) -> Result<usize> {
    let n = inst
        .iter()
        .try_fold(1usize, |a, &x| a.checked_mul(x))
        .ok_or_else(|| ModelError::Shape {
            op: "apply",
            detail: format!("{op}: instance space {inst:?} overflows"),
        })?;
    for (p, port) in ports.iter().enumerate() {
        let shape = shape_of(port.src);
        let bad = |d: String| ModelError::Shape {
            op: "apply",
            detail: format!("{op}, port {p}: {d}"),
        };
        match &port.map {
            Map::Affine {
                words,
                coords,
                pad,
                conds,
            } => {
                if coords.len() != shape.len() {
                    return Err(bad(format!(
                        "{} coordinates for a source of shape {shape:?}",
                        coords.len()
                    )));
                }
                let all = coords.iter().chain(conds.iter().map(|c| &c.expr));
                for c in all {
                    if c.inst.len() != inst.len() || c.word.len() != words.len() {
                        return Err(bad(format!(
                            "coordinate arity ({}, {}) for {} instance axes and {} word axes",
                            c.inst.len(),
                            c.word.len(),
                            inst.len(),
                            words.len()
                        )));
                    }
                }
                if words.len() > crate::circuit::program::MAX_WORD_AXES {
                    return Err(bad(format!("{} word axes", words.len())));
                }
                if !*pad && n > 0 && words.iter().all(|&w| w > 0) {
                    // Every coordinate's range over the boxes must stay inside the source.
                    for (a, c) in coords.iter().enumerate() {
                        let (lo, hi) = coord_range(c, inst, words);
                        if lo < 0 || hi >= shape[a] as i64 {
                            return Err(bad(format!(
                                "axis {a} reads [{lo}, {hi}] of a source of shape {shape:?} without padding"
                            )));
                        }
                    }
                }
            }
            Map::Table { words, elems } => {
                let total: usize = shape.iter().product();
                if elems.len() != n * words {
                    return Err(bad(format!(
                        "table of {} entries for {n} instances x {words} words",
                        elems.len()
                    )));
                }
                if let Some(e) = elems.iter().flatten().find(|&&e| e >= total) {
                    return Err(bad(format!("element {e} of a source of {total}")));
                }
            }
        }
    }
    Ok(n)
}

/// The least and largest value of a coordinate over the instance and word boxes.
pub(crate) fn coord_range(c: &Coord, inst: &[usize], words: &[usize]) -> (i64, i64) {
    let mut lo = c.base;
    let mut hi = c.base;
    let ext = inst.iter().chain(words.iter()).map(|&n| n as i64 - 1);
    for (k, m) in c.inst.iter().chain(&c.word).zip(ext) {
        let v = k * m;
        if v < 0 {
            lo += v;
        } else {
            hi += v;
        }
    }
    (lo, hi)
}
