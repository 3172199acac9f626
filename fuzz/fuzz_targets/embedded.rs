//! See [bpfcap_fuzz::embedded].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bpfcap_fuzz::embedded(data));
