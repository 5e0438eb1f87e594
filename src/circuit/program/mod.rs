//! Uniform circuits: a *program* of circuit templates applied over index spaces (docs/program.md).
//!
//! A circuit too large to hold as one netlist is described by a small machine, as the paper's
//! notion of a uniform family has it: a few explicit circuits ([`Template`]s, each built and
//! levelized once) and the list of their *applications* ([`Step::Apply`]): a template evaluated
//! once per point of an index space (its *instances*), each instance's input words gathered
//! from tensor values through an index map ([`IndexMap`]), its output words written to new
//! tensors. The whole circuit is the composition of all template instances; it is never
//! stored, yet it is exactly countable ([`Program::counts`], [`Program::depth`]) and can be
//! evaluated template by template ([`crate::eval::program`]) or, when small, instantiated into
//! one explicit [`Circuit`] ([`Program::flatten`]).
//!
//! This module knows nothing about floats: tensors are arrays of words of `width` bits, and a
//! template is any levelized circuit whose inputs are grouped into *ports* of equal-width words.
//!
//! Conventions:
//! - a tensor element is a word of `width` bits, least significant first; elements are indexed
//!   `0..len` (the model decides what multi-dimensional layout that flat index encodes);
//! - a template's circuit inputs are its ports in order, each port's words in order, each word's
//!   bits least significant first; its outputs are its output words in order;
//! - instance `i` of an application (row-major over `inst_shape`) writes element `i` of each of
//!   the application's output tensors (one tensor per template output word);
//! - word `w` of port `p` of instance `i` is element [`IndexMap::element`]`(i, w)` of the port's
//!   tensor, or the all-zero word when the map says so (padding).

mod count;
mod flatten;

pub use count::{Counts, RegionCounts};
pub(crate) use flatten::next_index;

use std::collections::HashMap;
use std::sync::Arc;

use thiserror::Error;

use super::ids::RegionId;
use super::levelize::Levelized;
use super::netlist::{Circuit, Region};

/// Index of a tensor in [`Program::tensors`].
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct TensorId(pub u32);

impl TensorId {
    /// The index as `usize`.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a template in [`Program::templates`].
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct TemplateId(pub u32);

impl TemplateId {
    /// The index as `usize`.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An error in building, checking or flattening a program.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum ProgramError {
    /// A structural inconsistency (names the step or tensor and what is wrong).
    #[error("malformed program: {0}")]
    Malformed(String),
    /// An index map reads outside its tensor.
    #[error("index map of step {step}, port {port} reads element {element} of tensor {tensor:?} with {len} elements")]
    OutOfRange {
        /// The step.
        step: usize,
        /// The port.
        port: usize,
        /// The tensor's name.
        tensor: String,
        /// The element read.
        element: i64,
        /// The tensor's length.
        len: u64,
    },
    /// A size limit (flattening, counts) would be exceeded.
    #[error("limit exceeded: {what} needs {needed}, the limit is {limit}")]
    LimitExceeded {
        /// What.
        what: String,
        /// How much it needs.
        needed: u128,
        /// The limit.
        limit: u128,
    },
    /// A region push/pop mismatch or an invalid region name.
    #[error("region error: {0}")]
    Region(String),
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, ProgramError>;

/// Where a tensor's values come from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TensorKind {
    /// Fed by the caller for every batch instance (e.g. a class label, sampling noise).
    Input,
    /// The same for every batch instance: one encoding per element (`width` low bits used).
    Const(Vec<u64>),
    /// The same for every batch instance, values supplied by the caller at evaluation under
    /// the tensor's name (model weights: too large to store in the program); the caller's
    /// logical shape (its product is `len`).
    Weight(Vec<u64>),
    /// Written by exactly one step.
    Computed,
}

/// Widest element of a computed tensor (input, constant and weight tensors hold at most 64
/// bits per element: their values are `u64` encodings).
pub const MAX_WIDTH: u32 = 4096;

/// A tensor value of the program.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TensorDecl {
    /// A name for reports and errors.
    pub name: String,
    /// Bits per element (1..=64 for inputs, constants and weights, 1..=[`MAX_WIDTH`] for
    /// computed tensors).
    pub width: u32,
    /// Number of elements.
    pub len: u64,
    /// Input, constant or computed.
    pub kind: TensorKind,
}

/// A group of equal-width input words of a template.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Port {
    /// Number of words.
    pub words: u32,
    /// Bits per word.
    pub width: u32,
}

/// Size of a circuit as the paper and the evaluators count it.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct Cost {
    /// Threshold gates (every threshold of a bank is one gate).
    pub gates: u64,
    /// Terms: the total size of the linear forms (an AND/OR gate's literals, a bank's shared
    /// form once): the work every lane of an evaluator adds up (docs/float.md).
    pub terms: u64,
    /// Fan-in: the sum of every gate's fan-in (a bank's form counts once per threshold).
    pub fan_in: u64,
}

impl Cost {
    /// The cost of a levelized circuit (only its live gates, which is all a template holds).
    pub fn of(lv: &Levelized) -> Cost {
        let mut fan_in = lv.gate_lits.len() as u64;
        for f in 0..lv.num_forms() as usize {
            let terms = (lv.form_offsets[f + 1] - lv.form_offsets[f]) as u64;
            let thr = (lv.bank_offsets[f + 1] - lv.bank_offsets[f]) as u64;
            fan_in += terms * thr;
        }
        Cost {
            gates: lv.num_gates(),
            terms: lv.num_terms(),
            fan_in,
        }
    }
}

/// One explicit, levelized threshold circuit, built once and applied over many instances.
///
/// Invariants: `circuit.num_inputs == sum(words * width)` over `ports`;
/// `circuit.num_outputs() == sum(outputs)`; `io_depth[p]` has `ports[p].width * out_bits`
/// entries, `io_depth[p][k * out_bits + o]` being the longest path (in gates) from bit `k` of
/// any word of port `p` to output bit `o` (output bits numbered across the output words), or
/// `-1` when there is none.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Template {
    /// The key it was built for (unique in the program).
    pub key: String,
    /// The circuit.
    pub circuit: Levelized,
    /// Input ports, in circuit input order.
    pub ports: Vec<Port>,
    /// Widths of the output words, in circuit output order.
    pub outputs: Vec<u32>,
    /// Gates, terms, fan-in of one instance.
    pub cost: Cost,
    /// Input-to-output depths (see the type's invariants).
    pub io_depth: Vec<Vec<i32>>,
}

impl Template {
    /// A template from a finished circuit whose inputs are `ports` (in order) and whose
    /// outputs are words of the widths `outputs`. Levelizes the circuit and measures it.
    pub fn new(key: &str, circuit: &Circuit, ports: Vec<Port>, outputs: Vec<u32>) -> Result<Self> {
        let lv = circuit.levelize();
        Self::from_levelized(key, lv, ports, outputs)
    }

    /// [`Template::new`] from an already levelized circuit.
    pub fn from_levelized(
        key: &str,
        lv: Levelized,
        ports: Vec<Port>,
        outputs: Vec<u32>,
    ) -> Result<Self> {
        lv.check()
            .map_err(|e| ProgramError::Malformed(format!("template {key}: {e}")))?;
        let need_in: u64 = ports.iter().map(|p| p.words as u64 * p.width as u64).sum();
        if need_in != lv.num_inputs as u64 {
            return Err(ProgramError::Malformed(format!(
                "template {key}: ports need {need_in} input bits, the circuit has {}",
                lv.num_inputs
            )));
        }
        let out_bits: u64 = outputs.iter().map(|&w| w as u64).sum();
        if out_bits != lv.outputs.len() as u64 {
            return Err(ProgramError::Malformed(format!(
                "template {key}: outputs need {out_bits} bits, the circuit has {}",
                lv.outputs.len()
            )));
        }
        if let Some(p) = ports.iter().find(|p| p.width == 0 || p.width > MAX_WIDTH) {
            return Err(ProgramError::Malformed(format!(
                "template {key}: port width {} (1..={MAX_WIDTH} allowed)",
                p.width
            )));
        }
        let io_depth = io_depths(&lv, &ports);
        Ok(Template {
            key: key.to_string(),
            cost: Cost::of(&lv),
            circuit: lv,
            ports,
            outputs,
            io_depth,
        })
    }

    /// Depth of the template circuit.
    pub fn depth(&self) -> u32 {
        self.circuit.depth()
    }

    /// Total number of output bits.
    pub fn out_bits(&self) -> usize {
        self.outputs.iter().map(|&w| w as usize).sum()
    }

    /// First circuit input row (0-based input index) of each port.
    pub fn port_offsets(&self) -> Vec<u64> {
        let mut off = 0u64;
        self.ports
            .iter()
            .map(|p| {
                let o = off;
                off += p.words as u64 * p.width as u64;
                o
            })
            .collect()
    }
}

/// The longest path from every (port, bit position) to every output bit: one pass over the
/// levels per output bit (backwards) or per (port, bit position) class (forwards), whichever
/// needs fewer passes (a table lookup has few input classes and many outputs, a dot product
/// the reverse).
fn io_depths(lv: &Levelized, ports: &[Port]) -> Vec<Vec<i32>> {
    let nout = lv.outputs.len();
    let classes: usize = ports.iter().map(|p| p.width as usize).sum();
    let mut res: Vec<Vec<i32>> = ports
        .iter()
        .map(|p| vec![-1; p.width as usize * nout])
        .collect();
    let mut dist = vec![-1i32; lv.num_rows as usize];
    // Input row -> (port, bit) class.
    let mut in_class: Vec<(u32, u32)> = Vec::with_capacity(lv.num_inputs as usize);
    for (pi, p) in ports.iter().enumerate() {
        for _ in 0..p.words {
            for k in 0..p.width {
                in_class.push((pi as u32, k));
            }
        }
    }
    let range = |offs: &[u32], i: u32| offs[i as usize] as usize..offs[i as usize + 1] as usize;
    if classes < nout {
        for (pi, p) in ports.iter().enumerate() {
            for k in 0..p.width {
                dist.iter_mut().for_each(|d| *d = -1);
                for (i, &c) in in_class.iter().enumerate() {
                    if c == (pi as u32, k) {
                        dist[1 + i] = 0;
                    }
                }
                for level in &lv.levels {
                    let mut row = level.row_start as usize;
                    for g in level.and_start..level.or_end {
                        let d = lv.gate_lits[range(&lv.gate_offsets, g)]
                            .iter()
                            .map(|&l| dist[l.row().index()])
                            .max()
                            .unwrap_or(-1);
                        dist[row] = if d >= 0 { d + 1 } else { -1 };
                        row += 1;
                    }
                    for f in level.form_start..level.form_end {
                        let d = lv.form_rows[range(&lv.form_offsets, f)]
                            .iter()
                            .map(|&r| dist[r.index()])
                            .max()
                            .unwrap_or(-1);
                        for _ in range(&lv.bank_offsets, f) {
                            dist[row] = if d >= 0 { d + 1 } else { -1 };
                            row += 1;
                        }
                    }
                }
                for (o, &lit) in lv.outputs.iter().enumerate() {
                    res[pi][k as usize * nout + o] = dist[lit.row().index()];
                }
            }
        }
        return res;
    }
    for (o, &lit) in lv.outputs.iter().enumerate() {
        dist.iter_mut().for_each(|d| *d = -1);
        dist[lit.row().index()] = 0;
        for level in lv.levels.iter().rev() {
            let mut row = level.row_start as usize;
            for g in level.and_start..level.or_end {
                let d = dist[row];
                if d >= 0 {
                    for &l in &lv.gate_lits[range(&lv.gate_offsets, g)] {
                        let r = l.row().index();
                        dist[r] = dist[r].max(d + 1);
                    }
                }
                row += 1;
            }
            for f in level.form_start..level.form_end {
                let mut d = -1;
                for _ in range(&lv.bank_offsets, f) {
                    d = d.max(dist[row]);
                    row += 1;
                }
                if d >= 0 {
                    for &r in &lv.form_rows[range(&lv.form_offsets, f)] {
                        let r = r.index();
                        dist[r] = dist[r].max(d + 1);
                    }
                }
            }
        }
        for (i, &(p, k)) in in_class.iter().enumerate() {
            let d = dist[1 + i];
            if d >= 0 {
                let e = &mut res[p as usize][k as usize * nout + o];
                *e = (*e).max(d);
            }
        }
    }
    res
}

/// An affine expression over an instance multi-index and a word multi-index:
/// `base + sum_k inst[k] * i_k + sum_w word[w] * j_w`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Affine {
    /// The constant.
    pub base: i64,
    /// One coefficient per instance axis.
    pub inst: Vec<i64>,
    /// One coefficient per word axis.
    pub word: Vec<i64>,
}

impl Affine {
    /// The value at instance index `i` and word index `j`.
    #[inline]
    pub fn eval(&self, i: &[u64], j: &[u64]) -> i64 {
        let mut v = self.base;
        for (c, &x) in self.inst.iter().zip(i) {
            v += c * x as i64;
        }
        for (c, &x) in self.word.iter().zip(j) {
            v += c * x as i64;
        }
        v
    }

    /// The least and largest value over the boxes `0 <= i < inst_shape`, `0 <= j < word_shape`
    /// (`None` for an empty box).
    pub fn range(&self, inst_shape: &[u64], word_shape: &[u32]) -> Option<(i64, i64)> {
        if inst_shape.contains(&0) || word_shape.contains(&0) {
            return None;
        }
        let mut lo = self.base;
        let mut hi = self.base;
        let ext = inst_shape
            .iter()
            .map(|&n| n as i64 - 1)
            .chain(word_shape.iter().map(|&n| n as i64 - 1));
        for (c, m) in self.inst.iter().chain(&self.word).zip(ext) {
            let v = c * m;
            if v < 0 {
                lo += v;
            } else {
                hi += v;
            }
        }
        Some((lo, hi))
    }
}

/// A validity condition of an index map: the word is read only when `0 <= expr < bound`,
/// otherwise it is the all-zero word.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Guard {
    /// The expression.
    pub expr: Affine,
    /// The exclusive upper bound.
    pub bound: i64,
}

/// Largest number of word axes of an affine index map.
pub const MAX_WORD_AXES: usize = 8;

/// Which tensor element each word of each instance reads.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum IndexMap {
    /// Element `elem(i, j)` where `j` is the word's multi-index in `word_shape` (row-major), or
    /// the zero word when a guard fails.
    Affine {
        /// The element expression.
        elem: Affine,
        /// The port's words as a multi-index space (product = the port's word count).
        word_shape: Vec<u32>,
        /// Padding conditions.
        guards: Vec<Guard>,
    },
    /// An explicit element per (instance, word), instance-major; [`IndexMap::NONE`] reads the
    /// zero word. Only for small irregular maps.
    Table(Vec<u32>),
}

impl IndexMap {
    /// The table entry that reads the zero word.
    pub const NONE: u32 = u32::MAX;

    /// Number of word axes (1 for a table).
    pub fn word_rank(&self) -> usize {
        match self {
            IndexMap::Affine { word_shape, .. } => word_shape.len(),
            IndexMap::Table(_) => 1,
        }
    }
}

/// One input port's source: a tensor and an index map.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Gather {
    /// The tensor read.
    pub tensor: TensorId,
    /// How instances and words map to its elements.
    pub map: IndexMap,
}

/// One step of a program.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Step {
    /// A template over an index space.
    Apply {
        /// The template.
        template: TemplateId,
        /// The instance index space (row-major).
        inst_shape: Vec<u64>,
        /// One gather per template port.
        gathers: Vec<Gather>,
        /// One new tensor per template output word (element `i` = instance `i`).
        outputs: Vec<TensorId>,
        /// The region the step belongs to.
        region: RegionId,
    },
    /// Copies (no gates): `out` is the concatenation of `parts` (flat element order).
    Concat {
        /// The parts, all of `out`'s width.
        parts: Vec<TensorId>,
        /// The new tensor.
        out: TensorId,
        /// The region the step belongs to.
        region: RegionId,
    },
}

impl Step {
    /// The tensors this step reads.
    pub fn reads(&self) -> Vec<TensorId> {
        match self {
            Step::Apply { gathers, .. } => gathers.iter().map(|g| g.tensor).collect(),
            Step::Concat { parts, .. } => parts.clone(),
        }
    }

    /// The tensors this step writes.
    pub fn writes(&self) -> Vec<TensorId> {
        match self {
            Step::Apply { outputs, .. } => outputs.clone(),
            Step::Concat { out, .. } => vec![*out],
        }
    }

    /// The step's region.
    pub fn region(&self) -> RegionId {
        match self {
            Step::Apply { region, .. } | Step::Concat { region, .. } => *region,
        }
    }
}

/// Number of instances of an index space (saturating).
pub fn num_instances(inst_shape: &[u64]) -> u64 {
    inst_shape.iter().fold(1u64, |a, &n| a.saturating_mul(n))
}

/// A uniform circuit: tensors, templates and the steps that apply them (see the module docs).
///
/// Invariants (checked by [`Program::validate`], established by [`ProgramBuilder`]): every step
/// reads only input, constant or earlier computed tensors and writes computed tensors no other
/// step writes; gathers match their template's ports in count and width; index maps stay
/// inside their tensors; outputs are computed, input or constant tensors.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Program {
    /// Every tensor.
    pub tensors: Vec<TensorDecl>,
    /// Every distinct template (shared: recorders reuse one template across programs).
    pub templates: Vec<Arc<Template>>,
    /// The steps, in evaluation order.
    pub steps: Vec<Step>,
    /// The input tensors, in the order the caller feeds them.
    pub inputs: Vec<TensorId>,
    /// The named output tensors.
    pub outputs: Vec<(String, TensorId)>,
    /// Regions; `regions[0]` is the root.
    pub regions: Vec<Region>,
}

impl Program {
    /// Number of [`Step::Apply`] steps.
    pub fn num_applications(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::Apply { .. }))
            .count()
    }

    /// The full dotted path of a region ("" for the root).
    pub fn region_path(&self, r: RegionId) -> String {
        let mut parts = Vec::new();
        let mut cur = Some(r);
        while let Some(id) = cur {
            let reg = &self.regions[id.index()];
            if !reg.name.is_empty() {
                parts.push(reg.name.as_str());
            }
            cur = reg.parent;
        }
        parts.reverse();
        parts.join(".")
    }

    /// For every tensor, the index of the last step that reads it (`None`: never read by a
    /// step). Output tensors are kept to the end by evaluators regardless.
    pub fn last_reads(&self) -> Vec<Option<usize>> {
        let mut last = vec![None; self.tensors.len()];
        for (s, step) in self.steps.iter().enumerate() {
            for t in step.reads() {
                last[t.index()] = Some(s);
            }
        }
        last
    }

    /// Every template's circuit matches its ports and outputs (a declared but undefined
    /// template does not).
    fn check_templates(&self) -> Result<()> {
        for tp in &self.templates {
            let need_in: u64 = tp
                .ports
                .iter()
                .map(|p| p.words as u64 * p.width as u64)
                .sum();
            if need_in != tp.circuit.num_inputs as u64
                || tp.out_bits() != tp.circuit.outputs.len()
                || tp.io_depth.len() != tp.ports.len()
            {
                return Err(ProgramError::Malformed(format!(
                    "template {:?}: its circuit does not match its ports and outputs",
                    tp.key
                )));
            }
        }
        Ok(())
    }

    /// Check every invariant (see the type's docs); errors name the step and what is wrong.
    pub fn validate(&self) -> Result<()> {
        self.check_templates()?;
        let mut written = self.check_tensors()?;
        for (s, step) in self.steps.iter().enumerate() {
            self.check_step(s, step, &mut written)?;
        }
        for (name, t) in &self.outputs {
            if !*written.get(t.index()).unwrap_or(&false) {
                return Err(ProgramError::Malformed(format!(
                    "output {name:?} is never written"
                )));
            }
        }
        Ok(())
    }

    /// Check the tensor declarations (widths, constant and weight sizes) and the program
    /// inputs (exactly the input tensors). Returns which tensors hold values before the first
    /// step: constants, weights and inputs.
    fn check_tensors(&self) -> Result<Vec<bool>> {
        let nt = self.tensors.len();
        let mut written = vec![false; nt];
        for (i, t) in self.tensors.iter().enumerate() {
            let max = if t.kind == TensorKind::Computed {
                MAX_WIDTH
            } else {
                64
            };
            if t.width == 0 || t.width > max {
                return Err(ProgramError::Malformed(format!(
                    "tensor {:?}: width {} (1..={max} allowed)",
                    t.name, t.width
                )));
            }
            match &t.kind {
                TensorKind::Const(v) => {
                    if v.len() as u64 != t.len {
                        return Err(ProgramError::Malformed(format!(
                            "constant tensor {:?}: {} values for {} elements",
                            t.name,
                            v.len(),
                            t.len
                        )));
                    }
                    written[i] = true;
                }
                TensorKind::Weight(shape) => {
                    if shape.iter().product::<u64>() != t.len {
                        return Err(ProgramError::Malformed(format!(
                            "weight tensor {:?}: shape {shape:?} for {} elements",
                            t.name, t.len
                        )));
                    }
                    written[i] = true;
                }
                TensorKind::Input => written[i] = true,
                TensorKind::Computed => {}
            }
        }
        for &t in &self.inputs {
            let d = self.tensor(t)?;
            if d.kind != TensorKind::Input {
                return Err(ProgramError::Malformed(format!(
                    "program input {:?} is not an input tensor",
                    d.name
                )));
            }
        }
        let n_in = self
            .tensors
            .iter()
            .filter(|t| t.kind == TensorKind::Input)
            .count();
        if n_in != self.inputs.len() {
            return Err(ProgramError::Malformed(format!(
                "{n_in} input tensors, {} listed as program inputs",
                self.inputs.len()
            )));
        }
        Ok(written)
    }

    /// Check step `s`: its region exists, it reads only tensors already `written`, its gathers
    /// and outputs match its template (or a concat matches its parts), and it writes only
    /// computed tensors not yet written (marking them in `written`).
    fn check_step(&self, s: usize, step: &Step, written: &mut [bool]) -> Result<()> {
        if step.region().index() >= self.regions.len() {
            return Err(ProgramError::Malformed(format!("step {s}: unknown region")));
        }
        for t in step.reads() {
            if !*written
                .get(t.index())
                .ok_or_else(|| ProgramError::Malformed(format!("step {s}: unknown tensor")))?
            {
                return Err(ProgramError::Malformed(format!(
                    "step {s} reads tensor {:?} before it is written",
                    self.tensors[t.index()].name
                )));
            }
        }
        match step {
            Step::Apply {
                template,
                inst_shape,
                gathers,
                outputs,
                ..
            } => {
                let tp = self.templates.get(template.index()).ok_or_else(|| {
                    ProgramError::Malformed(format!("step {s}: unknown template"))
                })?;
                if gathers.len() != tp.ports.len() || outputs.len() != tp.outputs.len() {
                    return Err(ProgramError::Malformed(format!(
                        "step {s}: {} gathers and {} outputs for template {} with {} ports and {} outputs",
                        gathers.len(),
                        outputs.len(),
                        tp.key,
                        tp.ports.len(),
                        tp.outputs.len()
                    )));
                }
                let ninst = num_instances(inst_shape);
                for (p, (g, port)) in gathers.iter().zip(&tp.ports).enumerate() {
                    let src = self.tensor(g.tensor)?;
                    if src.width != port.width {
                        return Err(ProgramError::Malformed(format!(
                            "step {s}, port {p}: tensor {:?} has width {}, the template port {}",
                            src.name, src.width, port.width
                        )));
                    }
                    self.check_map(s, p, g, inst_shape, port.words)?;
                }
                for (o, &t) in outputs.iter().enumerate() {
                    let d = self.tensor(t)?;
                    if d.kind != TensorKind::Computed
                        || written[t.index()]
                        || d.width != tp.outputs[o]
                        || d.len != ninst
                    {
                        return Err(ProgramError::Malformed(format!(
                            "step {s}: output {o} tensor {:?} (width {}, {} elements) for {} instances of width {}",
                            d.name, d.width, d.len, ninst, tp.outputs[o]
                        )));
                    }
                    written[t.index()] = true;
                }
            }
            Step::Concat { parts, out, .. } => {
                let d = self.tensor(*out)?;
                let total: u64 = parts.iter().map(|&p| self.tensors[p.index()].len).sum();
                if d.kind != TensorKind::Computed
                    || written[out.index()]
                    || total != d.len
                    || parts
                        .iter()
                        .any(|&p| self.tensors[p.index()].width != d.width)
                {
                    return Err(ProgramError::Malformed(format!(
                        "step {s}: concat into {:?} does not match its parts",
                        d.name
                    )));
                }
                written[out.index()] = true;
            }
        }
        Ok(())
    }

    fn tensor(&self, t: TensorId) -> Result<&TensorDecl> {
        self.tensors
            .get(t.index())
            .ok_or_else(|| ProgramError::Malformed(format!("unknown tensor {}", t.0)))
    }

    fn check_map(
        &self,
        s: usize,
        p: usize,
        g: &Gather,
        inst_shape: &[u64],
        words: u32,
    ) -> Result<()> {
        let src = &self.tensors[g.tensor.index()];
        let ninst = num_instances(inst_shape);
        match &g.map {
            IndexMap::Affine {
                elem,
                word_shape,
                guards,
            } => {
                let nw: u64 = word_shape.iter().map(|&w| w as u64).product();
                if nw != words as u64
                    || word_shape.len() > MAX_WORD_AXES
                    || elem.inst.len() != inst_shape.len()
                    || elem.word.len() != word_shape.len()
                    || guards.iter().any(|gd| {
                        gd.expr.inst.len() != inst_shape.len()
                            || gd.expr.word.len() != word_shape.len()
                    })
                {
                    return Err(ProgramError::Malformed(format!(
                        "step {s}, port {p}: index map shape does not match {} instance axes and {words} words",
                        inst_shape.len()
                    )));
                }
                // Without guards every word is read: the whole range must be inside.
                if guards.is_empty() {
                    if let Some((lo, hi)) = elem.range(inst_shape, word_shape) {
                        for e in [lo, hi] {
                            if e < 0 || e as u64 >= src.len {
                                return Err(ProgramError::OutOfRange {
                                    step: s,
                                    port: p,
                                    tensor: src.name.clone(),
                                    element: e,
                                    len: src.len,
                                });
                            }
                        }
                    }
                }
            }
            IndexMap::Table(t) => {
                if t.len() as u64 != ninst.saturating_mul(words as u64) {
                    return Err(ProgramError::Malformed(format!(
                        "step {s}, port {p}: table of {} entries for {ninst} instances x {words} words",
                        t.len()
                    )));
                }
                if let Some(&e) = t
                    .iter()
                    .find(|&&e| e != IndexMap::NONE && e as u64 >= src.len)
                {
                    return Err(ProgramError::OutOfRange {
                        step: s,
                        port: p,
                        tensor: src.name.clone(),
                        element: e as i64,
                        len: src.len,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Builds a [`Program`]: tensors, interned templates, steps, regions.
#[derive(Debug, Default)]
pub struct ProgramBuilder {
    prog: Program,
    template_index: HashMap<String, TemplateId>,
    region_index: HashMap<(u32, String), RegionId>,
    region_stack: Vec<RegionId>,
    /// Templates declared by their interface and not yet defined.
    pending: std::collections::HashSet<TemplateId>,
}

impl ProgramBuilder {
    /// An empty program (only the root region).
    pub fn new() -> Self {
        ProgramBuilder {
            prog: Program {
                regions: vec![Region {
                    name: String::new(),
                    parent: None,
                }],
                ..Default::default()
            },
            template_index: HashMap::new(),
            region_index: HashMap::new(),
            region_stack: vec![RegionId::ROOT],
            pending: Default::default(),
        }
    }

    /// The program built so far.
    pub fn program(&self) -> &Program {
        &self.prog
    }

    fn push_tensor(
        &mut self,
        name: &str,
        width: u32,
        len: u64,
        kind: TensorKind,
    ) -> Result<TensorId> {
        let max = if kind == TensorKind::Computed {
            MAX_WIDTH
        } else {
            64
        };
        if width == 0 || width > max {
            return Err(ProgramError::Malformed(format!(
                "tensor {name:?}: width {width} (1..={max} allowed)"
            )));
        }
        let id = TensorId(u32::try_from(self.prog.tensors.len()).map_err(|_| {
            ProgramError::LimitExceeded {
                what: "tensors".into(),
                needed: self.prog.tensors.len() as u128 + 1,
                limit: u32::MAX as u128,
            }
        })?);
        self.prog.tensors.push(TensorDecl {
            name: name.to_string(),
            width,
            len,
            kind,
        });
        Ok(id)
    }

    /// A new input tensor (fed per batch instance), appended to the program's inputs.
    pub fn input(&mut self, name: &str, width: u32, len: u64) -> Result<TensorId> {
        let t = self.push_tensor(name, width, len, TensorKind::Input)?;
        self.prog.inputs.push(t);
        Ok(t)
    }

    /// A new constant tensor with one encoding per element.
    pub fn constant(&mut self, name: &str, width: u32, values: Vec<u64>) -> Result<TensorId> {
        let len = values.len() as u64;
        self.push_tensor(name, width, len, TensorKind::Const(values))
    }

    /// A new weight tensor: a constant supplied by the caller at evaluation under `name`
    /// (see [`TensorKind::Weight`]), of logical `shape`.
    pub fn weight(&mut self, name: &str, width: u32, shape: Vec<u64>) -> Result<TensorId> {
        let len = shape.iter().product();
        self.push_tensor(name, width, len, TensorKind::Weight(shape))
    }

    /// The template interned under `key`, if any.
    pub fn find_template(&self, key: &str) -> Option<TemplateId> {
        self.template_index.get(key).copied()
    }

    /// Intern a template under its key (an error when the key is taken).
    pub fn add_template(&mut self, tp: Arc<Template>) -> Result<TemplateId> {
        if self.template_index.contains_key(&tp.key) {
            return Err(ProgramError::Malformed(format!(
                "template key {:?} added twice",
                tp.key
            )));
        }
        let id = TemplateId(u32::try_from(self.prog.templates.len()).map_err(|_| {
            ProgramError::LimitExceeded {
                what: "templates".into(),
                needed: self.prog.templates.len() as u128 + 1,
                limit: u32::MAX as u128,
            }
        })?);
        self.template_index.insert(tp.key.clone(), id);
        self.prog.templates.push(tp);
        Ok(id)
    }

    /// Declare a template by its interface only (ports and output widths), so that steps can
    /// apply it before its circuit exists; [`ProgramBuilder::define_template`] must supply the
    /// circuit before [`ProgramBuilder::finish`]. Lets a recorder build the circuits of many
    /// templates at once, in parallel, after recording.
    pub fn declare_template(
        &mut self,
        key: &str,
        ports: Vec<Port>,
        outputs: Vec<u32>,
    ) -> Result<TemplateId> {
        let id = self.add_template(Arc::new(Template {
            key: key.to_string(),
            circuit: Levelized::default(),
            ports,
            outputs,
            cost: Cost::default(),
            io_depth: Vec::new(),
        }))?;
        self.pending.insert(id);
        Ok(id)
    }

    /// Supply the circuit of a declared template; its key, ports and output widths must be the
    /// declared ones.
    pub fn define_template(&mut self, id: TemplateId, tp: Arc<Template>) -> Result<()> {
        if !self.pending.contains(&id) {
            return Err(ProgramError::Malformed(format!(
                "template {:?} was not declared, or is already defined",
                tp.key
            )));
        }
        let old = &self.prog.templates[id.index()];
        if old.key != tp.key || old.ports != tp.ports || old.outputs != tp.outputs {
            return Err(ProgramError::Malformed(format!(
                "template {:?}: the definition's interface ({:?} -> {:?}) differs from the declaration's ({:?} -> {:?})",
                tp.key, tp.ports, tp.outputs, old.ports, old.outputs
            )));
        }
        self.prog.templates[id.index()] = tp;
        self.pending.remove(&id);
        Ok(())
    }

    /// The template `t`.
    pub fn get_template(&self, t: TemplateId) -> &Template {
        &self.prog.templates[t.index()]
    }

    /// The tensor `t`.
    pub fn tensor(&self, t: TensorId) -> &TensorDecl {
        &self.prog.tensors[t.index()]
    }

    /// Apply template `template` over `inst_shape` with one gather per port; returns the new
    /// output tensors (named `{name}` for one output, `{name}.{k}` for several). The step is
    /// checked as [`Program::validate`] would.
    pub fn apply(
        &mut self,
        name: &str,
        template: TemplateId,
        inst_shape: Vec<u64>,
        gathers: Vec<Gather>,
    ) -> Result<Vec<TensorId>> {
        let tp = self
            .prog
            .templates
            .get(template.index())
            .ok_or_else(|| ProgramError::Malformed("unknown template".into()))?;
        let widths = tp.outputs.clone();
        let ninst = num_instances(&inst_shape);
        let mut outputs = Vec::with_capacity(widths.len());
        for (k, &w) in widths.iter().enumerate() {
            let nm = if widths.len() == 1 {
                name.to_string()
            } else {
                format!("{name}.{k}")
            };
            outputs.push(self.push_tensor(&nm, w, ninst, TensorKind::Computed)?);
        }
        let step = Step::Apply {
            template,
            inst_shape,
            gathers,
            outputs: outputs.clone(),
            region: *self.region_stack.last().unwrap_or(&RegionId::ROOT),
        };
        self.check_step(&step)?;
        self.prog.steps.push(step);
        Ok(outputs)
    }

    /// The concatenation of `parts` (flat element order) as a new tensor.
    pub fn concat(&mut self, name: &str, parts: Vec<TensorId>) -> Result<TensorId> {
        let first = parts
            .first()
            .ok_or_else(|| ProgramError::Malformed("concat of no parts".into()))?;
        let width = self.tensor(*first).width;
        let len: u64 = parts.iter().map(|&p| self.tensor(p).len).sum();
        let out = self.push_tensor(name, width, len, TensorKind::Computed)?;
        let step = Step::Concat {
            parts,
            out,
            region: *self.region_stack.last().unwrap_or(&RegionId::ROOT),
        };
        self.check_step(&step)?;
        self.prog.steps.push(step);
        Ok(out)
    }

    fn check_step(&self, step: &Step) -> Result<()> {
        // The new step against the program so far (the checks of `Program::validate`).
        let s = self.prog.steps.len();
        match step {
            Step::Apply {
                template,
                inst_shape,
                gathers,
                outputs,
                ..
            } => {
                let tp = &self.prog.templates[template.index()];
                if gathers.len() != tp.ports.len() {
                    return Err(ProgramError::Malformed(format!(
                        "step {s} ({}): {} gathers for {} ports",
                        tp.key,
                        gathers.len(),
                        tp.ports.len()
                    )));
                }
                for (p, (g, port)) in gathers.iter().zip(&tp.ports).enumerate() {
                    let src = self.prog.tensors.get(g.tensor.index()).ok_or_else(|| {
                        ProgramError::Malformed(format!("step {s}: unknown tensor"))
                    })?;
                    if outputs.contains(&g.tensor) {
                        return Err(ProgramError::Malformed(format!(
                            "step {s} reads its own output"
                        )));
                    }
                    if src.width != port.width {
                        return Err(ProgramError::Malformed(format!(
                            "step {s} ({}), port {p}: tensor {:?} has width {}, the port {}",
                            tp.key, src.name, src.width, port.width
                        )));
                    }
                    self.prog.check_map(s, p, g, inst_shape, port.words)?;
                }
            }
            Step::Concat { parts, out, .. } => {
                let w = self.tensor(*out).width;
                if parts
                    .iter()
                    .any(|&p| p.index() >= out.index() || self.tensor(p).width != w)
                {
                    return Err(ProgramError::Malformed(format!(
                        "step {s}: concat parts of different widths"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Declare a named output tensor.
    pub fn output(&mut self, name: &str, t: TensorId) -> Result<()> {
        if self.prog.outputs.iter().any(|(n, _)| n == name) {
            return Err(ProgramError::Malformed(format!(
                "duplicate output {name:?}"
            )));
        }
        self.prog.outputs.push((name.to_string(), t));
        Ok(())
    }

    /// Open a nested region; steps recorded until the matching [`ProgramBuilder::pop_region`]
    /// belong to it. The same name under the same parent reopens the same region.
    pub fn push_region(&mut self, name: &str) -> Result<()> {
        if name.is_empty() || name.contains('.') {
            return Err(ProgramError::Region(format!(
                "invalid region name {name:?}: non-empty, no '.'"
            )));
        }
        let parent = *self.region_stack.last().unwrap_or(&RegionId::ROOT);
        let key = (parent.0, name.to_string());
        let id = match self.region_index.get(&key) {
            Some(&id) => id,
            None => {
                let id = RegionId(self.prog.regions.len() as u32);
                self.prog.regions.push(Region {
                    name: name.to_string(),
                    parent: Some(parent),
                });
                self.region_index.insert(key, id);
                id
            }
        };
        self.region_stack.push(id);
        Ok(())
    }

    /// Close the innermost region.
    pub fn pop_region(&mut self) -> Result<()> {
        if self.region_stack.len() <= 1 {
            return Err(ProgramError::Region(
                "pop_region with no open region".into(),
            ));
        }
        self.region_stack.pop();
        Ok(())
    }

    /// Finish: validate and return the program. Errors while a declared template is undefined.
    pub fn finish(self) -> Result<Program> {
        if let Some(id) = self.pending.iter().next() {
            return Err(ProgramError::Malformed(format!(
                "template {:?} was declared but never defined",
                self.prog.templates[id.index()].key
            )));
        }
        if self.region_stack.len() != 1 {
            return Err(ProgramError::Region(format!(
                "{} regions still open",
                self.region_stack.len() - 1
            )));
        }
        self.prog.validate()?;
        Ok(self.prog)
    }
}
