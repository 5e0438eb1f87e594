//! Instantiating a program into one explicit circuit (for small programs: tests, export).
//!
//! Every template instance is copied gate for gate, with no structural hashing and no constant
//! folding, so that the flattened circuit has exactly the program's gates, terms and fan-in
//! ([`super::Program::counts`]): an AND/OR gate of the template becomes a gate whose form has
//! one term per literal, a bank keeps one shared form per instance. A literal that the gather
//! makes constant (a constant tensor's bit, a padding zero) or complemented is read as a term on
//! the constant-false wire 0 or with its weight negated (`w (1 - x) = w - w x`, the threshold
//! moved by `w`), which keeps the term without changing the gate's value. The flattened netlist
//! therefore departs from the builder's canonical forms in two documented ways: a form may read
//! wire 0, and it may read one wire in several terms (when two ports of one instance gather the
//! same element, as in `x . x`). Levelization and both evaluators accept both.
//!
//! Inputs: one input word per element of each program input tensor, named `{tensor}` for a
//! tensor of one element and `{tensor}.{k}` otherwise, in program input order. Outputs: one
//! output word per element of each program output, named `{output}.{k}`.

use super::{num_instances, IndexMap, Program, ProgramError, Result, Step, TensorKind};
use crate::circuit::builder::MAX_NODES;
use crate::circuit::{Circuit, FormId, Forms, Lit, Node, RegionId, RowLit, Wire, Word};

/// Row-major successor of a multi-index in `shape`.
pub(crate) fn next_index(idx: &mut [u64], shape: &[u64]) {
    for ax in (0..shape.len()).rev() {
        idx[ax] += 1;
        if idx[ax] < shape[ax] {
            return;
        }
        idx[ax] = 0;
    }
}

struct Flat {
    nodes: Vec<Node>,
    levels: Vec<u32>,
    forms: Forms,
    node_region: Vec<RegionId>,
    terms: Vec<(Wire, i64)>,
}

impl Flat {
    /// Append a term `w * lit` to the scratch list; returns the threshold offset it implies.
    fn term(&mut self, lit: Lit, w: i64) -> i64 {
        if lit.is_complemented() {
            self.terms.push((lit.wire(), -w));
            w
        } else {
            self.terms.push((lit.wire(), w));
            0
        }
    }

    /// Create the form of the scratch terms and one gate per threshold; returns their wires.
    fn gates(&mut self, thresholds: &[i64], region: RegionId) -> Result<Vec<Wire>> {
        let level = 1 + self
            .terms
            .iter()
            .map(|(w, _)| self.levels[w.index()])
            .max()
            .unwrap_or(0);
        let form = FormId(self.forms.len() as u32);
        for &(w, x) in &self.terms {
            self.forms.wires.push(w);
            self.forms.weights.push(x);
        }
        let end =
            u32::try_from(self.forms.wires.len()).map_err(|_| ProgramError::LimitExceeded {
                what: "flattened form terms".into(),
                needed: self.forms.wires.len() as u128,
                limit: u32::MAX as u128,
            })?;
        self.forms.offsets.push(end);
        self.terms.clear();
        let mut out = Vec::with_capacity(thresholds.len());
        for &t in thresholds {
            if self.nodes.len() as u64 >= MAX_NODES {
                return Err(ProgramError::LimitExceeded {
                    what: "flattened wires".into(),
                    needed: self.nodes.len() as u128 + 1,
                    limit: MAX_NODES as u128,
                });
            }
            out.push(Wire(self.nodes.len() as u32));
            self.nodes.push(Node::Gate { form, threshold: t });
            self.levels.push(level);
            self.node_region.push(region);
        }
        Ok(out)
    }
    /// Copy one instance of template `tp` whose input rows `row_lit[1..]` hold the gathered
    /// literals (each gate's row gets its copy's literal); returns the instance's output words.
    fn copy_instance(
        &mut self,
        tp: &super::Template,
        row_lit: &mut [Lit],
        region: RegionId,
    ) -> Result<Vec<Vec<Lit>>> {
        let lv = &tp.circuit;
        // Copy the levels.
        let lit_of =
            |rl: &[Lit], l: RowLit| Lit(rl[l.row().index()].0 ^ l.is_complemented() as u32);
        for level in &lv.levels {
            let mut row = level.row_start as usize;
            for g in level.and_start..level.or_end {
                let (a, b) = (
                    lv.gate_offsets[g as usize] as usize,
                    lv.gate_offsets[g as usize + 1] as usize,
                );
                let mut off = 0i64;
                for &l in &lv.gate_lits[a..b] {
                    off += self.term(lit_of(row_lit, l), 1);
                }
                let t = if g < level.or_start {
                    (b - a) as i64
                } else {
                    1
                };
                let w = self.gates(&[t - off], region)?;
                row_lit[row] = w[0].lit();
                row += 1;
            }
            for fm in level.form_start..level.form_end {
                let (a, b) = (
                    lv.form_offsets[fm as usize] as usize,
                    lv.form_offsets[fm as usize + 1] as usize,
                );
                let weights = lv.form_weights(fm).ok_or_else(|| {
                    ProgramError::Malformed(format!("template {}: malformed form weights", tp.key))
                })?;
                let mut off = 0i64;
                for (&rr, wt) in lv.form_rows[a..b].iter().zip(weights) {
                    off += self.term(row_lit[rr.index()], wt);
                }
                let (t0, t1) = (
                    lv.bank_offsets[fm as usize] as usize,
                    lv.bank_offsets[fm as usize + 1] as usize,
                );
                let th: Vec<i64> = lv.thresholds[t0..t1].iter().map(|&t| t - off).collect();
                for w in self.gates(&th, region)? {
                    row_lit[row] = w.lit();
                    row += 1;
                }
            }
        }
        let mut o = 0usize;
        let mut words = Vec::with_capacity(tp.outputs.len());
        for &w in tp.outputs.iter() {
            let word: Vec<Lit> = lv.outputs[o..o + w as usize]
                .iter()
                .map(|&l| lit_of(row_lit, l))
                .collect();
            words.push(word);
            o += w as usize;
        }
        Ok(words)
    }
}

impl Program {
    /// The explicit circuit of the program (see the module docs), refused up front when it
    /// would have more than `max_gates` gates. `weights` supplies the values of every
    /// [`TensorKind::Weight`] tensor (the flattened circuit holds them as constants).
    pub fn flatten(
        &self,
        max_gates: u64,
        weights: &mut dyn FnMut(&super::TensorDecl) -> std::result::Result<Vec<u64>, String>,
    ) -> Result<Circuit> {
        self.validate()?;
        let c = self.counts();
        if c.gates > max_gates as u128 {
            return Err(ProgramError::LimitExceeded {
                what: "flattened gates".into(),
                needed: c.gates,
                limit: max_gates as u128,
            });
        }
        let mut f = Flat {
            nodes: vec![Node::False],
            levels: vec![0],
            forms: Forms::new(),
            node_region: vec![RegionId::ROOT],
            terms: Vec::new(),
        };
        let mut elems: Vec<Vec<Vec<Lit>>> = vec![Vec::new(); self.tensors.len()];
        let mut inputs = Vec::new();
        let mut n_in = 0u32;
        for &t in &self.inputs {
            let d = &self.tensors[t.index()];
            for k in 0..d.len {
                let mut bits = Vec::with_capacity(d.width as usize);
                for _ in 0..d.width {
                    bits.push(Wire(f.nodes.len() as u32));
                    f.nodes.push(Node::Input(n_in));
                    f.levels.push(0);
                    f.node_region.push(RegionId::ROOT);
                    n_in += 1;
                }
                elems[t.index()].push(bits.iter().map(|w| w.lit()).collect());
                inputs.push(Word {
                    name: if d.len == 1 {
                        d.name.clone()
                    } else {
                        format!("{}.{k}", d.name)
                    },
                    bits,
                });
            }
        }
        for (i, d) in self.tensors.iter().enumerate() {
            if let Some(v) = constant_literals(d, weights)? {
                elems[i] = v;
            }
        }
        for (s, step) in self.steps.iter().enumerate() {
            match step {
                Step::Apply {
                    template,
                    inst_shape,
                    gathers,
                    outputs,
                    region,
                } => {
                    let tp = &self.templates[template.index()];
                    let lv = &tp.circuit;
                    let n = num_instances(inst_shape);
                    let mut outs: Vec<Vec<Vec<Lit>>> = tp
                        .outputs
                        .iter()
                        .map(|_| Vec::with_capacity(n as usize))
                        .collect();
                    let mut idx = vec![0u64; inst_shape.len()];
                    let mut row_lit = vec![Lit::FALSE; lv.num_rows as usize];
                    for inst in 0..n {
                        // Gather the instance's inputs into rows 1..=num_inputs.
                        let mut r = 1usize;
                        for (p, g) in gathers.iter().enumerate() {
                            let port = tp.ports[p];
                            let src = &elems[g.tensor.index()];
                            for w in 0..port.words as u64 {
                                let e = element(&g.map, &idx, inst, w, port.words as u64);
                                let word: Option<&Vec<Lit>> = match e {
                                    Some(e) => Some(src.get(e as usize).ok_or_else(|| {
                                        ProgramError::OutOfRange {
                                            step: s,
                                            port: p,
                                            tensor: self.tensors[g.tensor.index()].name.clone(),
                                            element: e,
                                            len: src.len() as u64,
                                        }
                                    })?),
                                    None => None,
                                };
                                for k in 0..port.width as usize {
                                    row_lit[r] = word.map_or(Lit::FALSE, |wd| wd[k]);
                                    r += 1;
                                }
                            }
                        }
                        for (k, word) in f
                            .copy_instance(tp, &mut row_lit, *region)?
                            .into_iter()
                            .enumerate()
                        {
                            outs[k].push(word);
                        }
                        next_index(&mut idx, inst_shape);
                    }
                    for (k, t) in outputs.iter().enumerate() {
                        elems[t.index()] = std::mem::take(&mut outs[k]);
                    }
                }
                Step::Concat { parts, out, .. } => {
                    let mut v = Vec::new();
                    for p in parts {
                        v.extend(elems[p.index()].iter().cloned());
                    }
                    elems[out.index()] = v;
                }
            }
        }
        let mut outputs = Vec::new();
        for (name, t) in &self.outputs {
            for (k, w) in elems[t.index()].iter().enumerate() {
                outputs.push(Word {
                    name: format!("{name}.{k}"),
                    bits: w.clone(),
                });
            }
        }
        Ok(Circuit {
            nodes: f.nodes,
            levels: f.levels,
            forms: f.forms,
            inputs,
            outputs,
            regions: self.regions.clone(),
            node_region: f.node_region,
        })
    }
}

/// The element read by word `w` of instance `inst` (multi-index `idx`), or `None` for the
/// zero word (a failed guard or a table's [`IndexMap::NONE`]).
pub(crate) fn element(map: &IndexMap, idx: &[u64], inst: u64, w: u64, words: u64) -> Option<i64> {
    match map {
        IndexMap::Affine {
            elem,
            word_shape,
            guards,
        } => {
            // Word multi-index of w (row-major in word_shape).
            let mut j = [0u64; 8];
            let mut rest = w;
            for ax in (0..word_shape.len()).rev() {
                let n = word_shape[ax] as u64;
                j[ax] = rest % n;
                rest /= n;
            }
            let j = &j[..word_shape.len()];
            for g in guards {
                let v = g.expr.eval(idx, j);
                if v < 0 || v >= g.bound {
                    return None;
                }
            }
            Some(elem.eval(idx, j))
        }
        IndexMap::Table(t) => {
            let e = t[(inst * words + w) as usize];
            (e != IndexMap::NONE).then_some(e as i64)
        }
    }
}

/// The literals of a constant or weight tensor (constant wires), `None` for other tensors.
fn constant_literals(
    d: &super::TensorDecl,
    weights: &mut dyn FnMut(&super::TensorDecl) -> std::result::Result<Vec<u64>, String>,
) -> Result<Option<Vec<Vec<Lit>>>> {
    let owned;
    let v = match &d.kind {
        TensorKind::Const(v) => v,
        TensorKind::Weight(_) => {
            owned = weights(d).map_err(ProgramError::Malformed)?;
            if owned.len() as u64 != d.len {
                return Err(ProgramError::Malformed(format!(
                    "weight {:?}: {} values for {} elements",
                    d.name,
                    owned.len(),
                    d.len
                )));
            }
            &owned
        }
        _ => return Ok(None),
    };
    Ok(Some(
        v.iter()
            .map(|&x| {
                (0..d.width)
                    .map(|b| Lit::constant(x >> b & 1 == 1))
                    .collect()
            })
            .collect(),
    ))
}
