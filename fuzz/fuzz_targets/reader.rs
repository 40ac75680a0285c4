//! The protocol layer: arbitrary bytes after a valid handshake with no
//! extension, in chunkings the input picks (harness: fuzz/src/reader.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wsserver_fuzz::reader::check(data, false));
