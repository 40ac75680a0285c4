//! The protocol layer after a handshake that agreed permessage-deflate,
//! with or without context takeover (byte 0, bit 4), in chunkings the input
//! picks (harness: fuzz/src/reader.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wsserver_fuzz::reader::check(data, true));
