//! Constant-depth arithmetic gadgets (docs/float.md): integer words, then F(p, q) floats.
//!
//! The rule: no construction's depth grows with the number of operands or any tensor size;
//! depth may depend only on the word widths and the format's p and q.

pub mod error;
pub mod float;
pub mod int;
pub mod report;
