//! The finished threshold circuit as plain flat arrays: nodes, linear forms, names, regions.

use super::ids::{FormId, Lit, RegionId, Wire};

/// One node of the circuit; `Circuit::nodes[w]` describes wire `w`.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum Node {
    /// The constant `false` (only wire 0).
    False,
    /// Primary input number `i` (inputs are numbered in creation order, across all input words).
    Input(u32),
    /// A threshold gate `[sum_j w_j * x_j >= threshold]` over the terms of `form`.
    Gate {
        /// The shared linear form whose value the gate compares.
        form: FormId,
        /// The threshold theta.
        threshold: i64,
    },
}

/// Integer linear forms `sum_j w_j * x_j` over wires, in struct-of-arrays layout.
///
/// Invariants (established by the builder): the terms of a form are sorted by wire, each wire
/// occurs once, no weight is zero, the weights' gcd is 1, the first weight is positive, no
/// term reads wire 0, and the sum of absolute weights fits in `i64` with a factor 2 to spare.
/// Several gates with different thresholds may share one form: the *bank* of that form.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Forms {
    /// Form `f` has terms `offsets[f]..offsets[f + 1]`; `offsets[0] == 0`.
    pub offsets: Vec<u32>,
    /// The wire of each term.
    pub wires: Vec<Wire>,
    /// The weight of each term.
    pub weights: Vec<i64>,
}

impl Forms {
    /// An empty set of forms.
    pub fn new() -> Self {
        Forms {
            offsets: vec![0],
            wires: Vec::new(),
            weights: Vec::new(),
        }
    }

    /// Number of forms.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether there are no forms.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The term range of form `f`.
    #[inline]
    pub fn range(&self, f: FormId) -> std::ops::Range<usize> {
        self.offsets[f.index()] as usize..self.offsets[f.index() + 1] as usize
    }

    /// The wires and weights of form `f`.
    #[inline]
    pub fn terms(&self, f: FormId) -> (&[Wire], &[i64]) {
        let r = self.range(f);
        (&self.wires[r.clone()], &self.weights[r])
    }
}

/// A named group of consecutive inputs or outputs, e.g. the bits of one number.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Word<T> {
    /// The word's name, unique among the circuit's input (or output) words.
    pub name: String,
    /// The bits, least significant first.
    pub bits: Vec<T>,
}

/// A named region of the circuit ("transformer.block1", "decoder.mid.attn").
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Region {
    /// The region's own name (one path component).
    pub name: String,
    /// The enclosing region; `None` only for the root.
    pub parent: Option<RegionId>,
}

/// A finished threshold circuit.
///
/// Invariants: `nodes[0] == Node::False`; every gate reads only wires with smaller indices
/// (node order is a topological order); `levels[w]` is 0 for constants and inputs and
/// `1 + max(levels of the form's wires)` for a gate; every input wire appears in exactly one
/// input word, in input-number order; `node_region` has one entry per node.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Circuit {
    /// Node of each wire.
    pub nodes: Vec<Node>,
    /// Level of each wire (its depth: the longest path from an input, in gates).
    pub levels: Vec<u32>,
    /// The linear forms read by gates.
    pub forms: Forms,
    /// Input words; concatenated in order they list the inputs `0..num_inputs`.
    pub inputs: Vec<Word<Wire>>,
    /// Output words; their literals may be complemented or constant.
    pub outputs: Vec<Word<Lit>>,
    /// Regions; `regions[0]` is the root (empty name).
    pub regions: Vec<Region>,
    /// The region each node was created in.
    pub node_region: Vec<RegionId>,
}

impl Circuit {
    /// Number of primary inputs.
    pub fn num_inputs(&self) -> usize {
        self.inputs.iter().map(|w| w.bits.len()).sum()
    }

    /// Number of primary output bits.
    pub fn num_outputs(&self) -> usize {
        self.outputs.iter().map(|w| w.bits.len()).sum()
    }

    /// Number of threshold gates.
    pub fn num_gates(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, Node::Gate { .. }))
            .count()
    }

    /// Depth: the largest level of any output (0 for a circuit of inputs and constants only).
    pub fn depth(&self) -> u32 {
        self.outputs
            .iter()
            .flat_map(|w| w.bits.iter())
            .map(|l| self.levels[l.wire().index()])
            .max()
            .unwrap_or(0)
    }

    /// All output literals, word after word.
    pub fn output_lits(&self) -> Vec<Lit> {
        self.outputs
            .iter()
            .flat_map(|w| w.bits.iter().copied())
            .collect()
    }

    /// The input word called `name`.
    pub fn input_word(&self, name: &str) -> Option<&Word<Wire>> {
        self.inputs.iter().find(|w| w.name == name)
    }

    /// The output word called `name`.
    pub fn output_word(&self, name: &str) -> Option<&Word<Lit>> {
        self.outputs.iter().find(|w| w.name == name)
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

    /// Evaluate one instance directly from the netlist (slow; a reference for tests and tools).
    ///
    /// `inputs[i]` is the value of input `i`. Returns the output bits in word order, or `None`
    /// when `inputs` has the wrong length.
    pub fn eval_single(&self, inputs: &[bool]) -> Option<Vec<bool>> {
        if inputs.len() != self.num_inputs() {
            return None;
        }
        let mut val = vec![false; self.nodes.len()];
        for (w, node) in self.nodes.iter().enumerate() {
            val[w] = match *node {
                Node::False => false,
                Node::Input(i) => inputs[i as usize],
                Node::Gate { form, threshold } => {
                    let (wires, weights) = self.forms.terms(form);
                    let s: i64 = wires
                        .iter()
                        .zip(weights)
                        .map(|(x, &wt)| if val[x.index()] { wt } else { 0 })
                        .sum();
                    s >= threshold
                }
            };
        }
        Some(
            self.output_lits()
                .iter()
                .map(|l| val[l.wire().index()] ^ l.is_complemented())
                .collect(),
        )
    }
}
