//! VAR configuration, weights, reference forward pass, compiler (DESIGN §6).
