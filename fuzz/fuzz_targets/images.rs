//! See [bpfcap_fuzz::images].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bpfcap_fuzz::images(data));
