//! Typed `u32` indices into the circuit's flat arrays (cranelift-entity style).

use std::fmt;

use bytemuck::{Pod, Zeroable};

/// A wire: the index of a node (constant, input or gate) in [`crate::circuit::Circuit::nodes`].
///
/// Invariant: wire 0 is the constant `false`; every other wire is an input or a gate.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct Wire(pub u32);

impl Wire {
    /// The constant-false wire.
    pub const FALSE: Wire = Wire(0);

    /// The index as `usize`, for indexing flat arrays.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The positive literal of this wire.
    #[inline]
    pub fn lit(self) -> Lit {
        Lit(self.0 << 1)
    }
}

/// A literal: a wire with a complement bit, `wire << 1 | complemented` (as AIG literals).
///
/// NOT costs nothing: it flips the low bit. Consumers fold the complement into their weights
/// (`w * (1 - x) = w - w * x`), so no gate ever exists only to negate.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Lit(pub u32);

impl Lit {
    /// Constant false.
    pub const FALSE: Lit = Lit(0);
    /// Constant true (the complement of constant false).
    pub const TRUE: Lit = Lit(1);

    /// A literal of `wire`, complemented when `complement` is set.
    #[inline]
    pub fn new(wire: Wire, complement: bool) -> Lit {
        Lit(wire.0 << 1 | complement as u32)
    }

    /// The constant literal for `value`.
    #[inline]
    pub fn constant(value: bool) -> Lit {
        if value {
            Lit::TRUE
        } else {
            Lit::FALSE
        }
    }

    /// The wire this literal reads.
    #[inline]
    pub fn wire(self) -> Wire {
        Wire(self.0 >> 1)
    }

    /// Whether the wire's value is complemented.
    #[inline]
    pub fn is_complemented(self) -> bool {
        self.0 & 1 == 1
    }

    /// Whether this is one of the two constant literals.
    #[inline]
    pub fn is_constant(self) -> bool {
        self.0 <= 1
    }

    /// The constant value, if this literal is constant.
    #[inline]
    pub fn const_value(self) -> Option<bool> {
        if self.is_constant() {
            Some(self.0 == 1)
        } else {
            None
        }
    }
}

impl std::ops::Not for Lit {
    type Output = Lit;
    #[inline]
    fn not(self) -> Lit {
        Lit(self.0 ^ 1)
    }
}

impl fmt::Debug for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.const_value() {
            Some(v) => write!(f, "{v}"),
            None if self.is_complemented() => write!(f, "!w{}", self.wire().0),
            None => write!(f, "w{}", self.wire().0),
        }
    }
}

/// Index of a linear form in [`crate::circuit::Forms`].
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct FormId(pub u32);

impl FormId {
    /// The index as `usize`.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a named region in [`crate::circuit::Circuit::regions`]; region 0 is the root.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct RegionId(pub u32);

impl RegionId {
    /// The root region (the whole circuit).
    pub const ROOT: RegionId = RegionId(0);

    /// The index as `usize`.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A row of a [`crate::circuit::Levelized`] circuit: the slot of one value. Row 0 is the
/// constant `false`, rows `1..=num_inputs` are the inputs, then every level's gates in order.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Pod, Zeroable)]
pub struct Row(pub u32);

impl Row {
    /// The constant-false row.
    pub const FALSE: Row = Row(0);

    /// The index as `usize`, for indexing flat arrays.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The literal of this row, complemented when `complement` is set.
    #[inline]
    pub fn lit(self, complement: bool) -> RowLit {
        RowLit(self.0 << 1 | complement as u32)
    }
}

/// A literal over rows, `row << 1 | complemented`: what AND/OR gates and outputs of a
/// [`crate::circuit::Levelized`] circuit read.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Pod, Zeroable)]
pub struct RowLit(pub u32);

impl RowLit {
    /// The row this literal reads.
    #[inline]
    pub fn row(self) -> Row {
        Row(self.0 >> 1)
    }

    /// Whether the row's value is complemented.
    #[inline]
    pub fn is_complemented(self) -> bool {
        self.0 & 1 == 1
    }
}

impl fmt::Debug for RowLit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = if self.is_complemented() { "!" } else { "" };
        write!(f, "{c}r{}", self.row().0)
    }
}
