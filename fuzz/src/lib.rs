//! What more than one fuzz target uses: the protocol-reader harness.
pub mod reader;
