//! Bytes → the search for BPF objects embedded in executables and libraries
//! (`bpfcap::input::embedded::extract`), which reads every candidate with `read_object`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let found = bpfcap::input::embedded::extract("fuzz.bin", data);
    assert!(found.objects.len() <= found.candidates);
});
