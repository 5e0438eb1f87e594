//! Helpers shared by the integration tests. Each test file compiles this module on its own
//! (`mod common;`) and uses only the parts it needs, hence the `dead_code` allowance.

#![allow(dead_code)]

pub mod checksum;
pub mod cli;
pub mod eval;
pub mod float_gadgets;
pub mod int;
pub mod var;
