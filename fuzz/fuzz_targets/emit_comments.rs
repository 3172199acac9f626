//! See [bpfcap_fuzz::emit_comments].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bpfcap_fuzz::emit_comments(data));
