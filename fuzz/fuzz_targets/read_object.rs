//! See [bpfcap_fuzz::read_object].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bpfcap_fuzz::read_object(data));
