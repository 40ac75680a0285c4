//! The C ABI. Filled in below.
