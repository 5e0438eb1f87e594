//! Exact size and depth of a program's circuit without materialising it.
//!
//! Size: every instance of an application is one copy of its template, so gates, terms and fan-in
//! are sums over applications of `instances x template cost` (computed in `u128`: the released
//! models' circuits have about 1e15 gates and 1e18 fan-in).
//!
//! Depth: the longest path through the composed circuit, computed per tensor and *per bit
//! position* of its elements: an output bit of an application is as deep as the deepest
//! `(input bit depth + template input-to-output depth)` over the template's ports and bit
//! positions ([`super::Template::io_depth`]). Tracking bit positions, not just words, keeps the
//! composition exact where a consumer reads a bit that its producer computes early (a sign, a
//! zero flag). The result equals the depth of the flattened circuit ([`super::Program::flatten`])
//! whenever the elements of each tensor have equal per-bit depths, which holds for the
//! programs of the model (every element of a tensor is written by the same template output, or
//! by concatenated parts whose deepest part is read wherever the tensor is read); the flattening
//! test checks the equality.

use super::{num_instances, Program, Step};
use crate::circuit::RegionId;

/// Additive counts of (part of) a program.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct Counts {
    /// Threshold gates.
    pub gates: u128,
    /// Terms: total linear-form size (the evaluation work per lane).
    pub terms: u128,
    /// Wires: the sum of the gates' fan-ins.
    pub fan_in: u128,
    /// Template instances (lanes per batch instance).
    pub instances: u128,
    /// Applications ([`Step::Apply`] steps).
    pub applications: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.gates += o.gates;
        self.terms += o.terms;
        self.fan_in += o.fan_in;
        self.instances += o.instances;
        self.applications += o.applications;
    }
}

/// Counts and depth of one region and its subregions.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RegionCounts {
    /// Dotted region path ("" for the root).
    pub path: String,
    /// Sizes.
    pub counts: Counts,
    /// The longest path that passes only through applications of the region's subtree.
    pub depth: u32,
}

impl Program {
    /// The counts of one step (zero for a concatenation).
    pub fn step_counts(&self, step: &Step) -> Counts {
        match step {
            Step::Apply {
                template,
                inst_shape,
                ..
            } => {
                let c = self.templates[template.index()].cost;
                let n = num_instances(inst_shape) as u128;
                Counts {
                    gates: n * c.gates as u128,
                    terms: n * c.terms as u128,
                    fan_in: n * c.fan_in as u128,
                    instances: n,
                    applications: 1,
                }
            }
            Step::Concat { .. } => Counts::default(),
        }
    }

    /// The counts of the whole program.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for s in &self.steps {
            c.add(&self.step_counts(s));
        }
        c
    }

    /// The depth of every bit position of every tensor's elements (inputs and constants are at
    /// depth 0).
    pub fn tensor_depths(&self) -> Vec<Vec<u32>> {
        self.depth_pass(&|_| Some(0)).0
    }

    /// Depth of the circuit: the deepest bit of any output tensor.
    pub fn depth(&self) -> u32 {
        let d = self.tensor_depths();
        self.outputs
            .iter()
            .flat_map(|(_, t)| d[t.index()].iter().copied())
            .max()
            .unwrap_or(0)
    }

    /// One depth pass where step `s` belongs to group `group(s)` (`None`: not counted): a
    /// tensor read by a step contributes its depth only when it was written by a step of the
    /// same group. Returns the per-bit depth of every tensor and the deepest bit written by each
    /// group (indexed by group number).
    fn depth_pass(&self, group: &dyn Fn(usize) -> Option<u32>) -> (Vec<Vec<u32>>, Vec<u32>) {
        let mut depth: Vec<Vec<u32>> = self
            .tensors
            .iter()
            .map(|t| vec![0; t.width as usize])
            .collect();
        let mut owner: Vec<Option<u32>> = vec![None; self.tensors.len()];
        let mut best: Vec<u32> = Vec::new();
        for (s, step) in self.steps.iter().enumerate() {
            let g = group(s);
            let src_depth = |t: usize| -> Option<&Vec<u32>> {
                if g.is_some() && owner[t] == g {
                    Some(&depth[t])
                } else {
                    None
                }
            };
            match step {
                Step::Apply {
                    template,
                    gathers,
                    outputs,
                    ..
                } => {
                    let tp = &self.templates[template.index()];
                    let nout = tp.out_bits();
                    let mut out = vec![0u32; nout];
                    for (p, gth) in gathers.iter().enumerate() {
                        let sd = src_depth(gth.tensor.index());
                        let io = &tp.io_depth[p];
                        for k in 0..tp.ports[p].width as usize {
                            let base = sd.map_or(0, |d| d[k]);
                            for (o, od) in out.iter_mut().enumerate() {
                                let e = io[k * nout + o];
                                if e >= 0 {
                                    *od = (*od).max(base + e as u32);
                                }
                            }
                        }
                    }
                    let mut o0 = 0;
                    let mut deepest = 0;
                    for (k, &t) in outputs.iter().enumerate() {
                        let w = tp.outputs[k] as usize;
                        depth[t.index()] = out[o0..o0 + w].to_vec();
                        deepest = out[o0..o0 + w].iter().copied().fold(deepest, u32::max);
                        owner[t.index()] = g;
                        o0 += w;
                    }
                    if let Some(g) = g {
                        let g = g as usize;
                        if best.len() <= g {
                            best.resize(g + 1, 0);
                        }
                        best[g] = best[g].max(deepest);
                    }
                }
                Step::Concat { parts, out, .. } => {
                    let w = self.tensors[out.index()].width as usize;
                    let mut d = vec![0u32; w];
                    for p in parts {
                        if let Some(sd) = src_depth(p.index()) {
                            for (x, &y) in d.iter_mut().zip(sd) {
                                *x = (*x).max(y);
                            }
                        }
                    }
                    depth[out.index()] = d;
                    owner[out.index()] = g;
                }
            }
        }
        (depth, best)
    }

    /// Counts and depth of every region (root first, then in region order), each including its
    /// subregions. The root's depth is [`Program::depth`] taken over every tensor, which for a
    /// program whose outputs are its last results is the circuit's depth.
    pub fn region_counts(&self) -> Vec<RegionCounts> {
        let nr = self.regions.len();
        let mut tdepth = vec![0u32; nr];
        for r in 1..nr {
            if let Some(p) = self.regions[r].parent {
                tdepth[r] = tdepth[p.index()] + 1;
            }
        }
        let mut counts = vec![Counts::default(); nr];
        for step in &self.steps {
            counts[step.region().index()].add(&self.step_counts(step));
        }
        for r in (1..nr).rev() {
            if let Some(p) = self.regions[r].parent {
                let c = counts[r];
                counts[p.index()].add(&c);
            }
        }
        // Depth: one pass per tree depth k, grouping steps by their region's ancestor at depth k.
        let mut depths = vec![0u32; nr];
        let max_t = tdepth.iter().copied().max().unwrap_or(0);
        for k in 0..=max_t {
            let anc: Vec<Option<u32>> = (0..nr)
                .map(|r| {
                    if tdepth[r] < k {
                        return None;
                    }
                    let mut a = r;
                    while tdepth[a] > k {
                        a = self.regions[a].parent.map_or(0, |p| p.index());
                    }
                    Some(a as u32)
                })
                .collect();
            let (_, best) = self.depth_pass(&|s| anc[self.steps[s].region().index()]);
            for (r, &d) in best.iter().enumerate() {
                if r < nr && tdepth[r] == k {
                    depths[r] = depths[r].max(d);
                }
            }
        }
        (0..nr)
            .map(|r| RegionCounts {
                path: self.region_path(RegionId(r as u32)),
                counts: counts[r],
                depth: depths[r],
            })
            .collect()
    }
}
