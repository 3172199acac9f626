//! Bytes → `bpfcap::elf::read_object` → (when it reads) the full analysis with the default
//! options, as `bpfcap analyze` runs it. Any panic, hang or runaway allocation is a bug; every
//! malformed input must give an `ElfError` (one line) or a result.
#![no_main]

use bpfcap::analysis::{LoaderChoice, Options, analyse};
use bpfcap::elf::read_object;
use bpfcap::rules::{Version, rules};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match read_object(data, "fuzz") {
        Err(e) => assert!(!e.to_string().contains('\n'), "multi-line error: {e}"),
        Ok(obj) => {
            let opts = Options {
                programs: vec![],
                loader: LoaderChoice::Libbpf(vec![Version(1, 5), Version(1, 6), Version(1, 7)]),
                with_optional: false,
            };
            analyse(vec![("fuzz.bpf.o".into(), obj)], &opts, rules()).expect("analysis with default options");
        }
    }
});
