//! Errors of the object reader: one enum for this layer, each variant saying what is wrong
//! with the input and what to do about it.
//!
//! Messages quote names from the file (sections, symbols, BTF types), which can hold any
//! byte: they are escaped ([`crate::text::Escaped`]), so that every message stays on one line
//! and shows no control character.

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum ElfError {
    #[error("not an ELF file ({})", crate::text::Escaped(.0))]
    #[diagnostic(
        code(bpfcap::elf::not_elf),
        help("pass a BPF object compiled with `clang -target bpf -c`, or an executable that embeds one")
    )]
    NotElf(String),

    #[error("ELF file for {machine}, not for BPF (EM_BPF)")]
    #[diagnostic(
        code(bpfcap::elf::not_bpf),
        help(
            "this is a host object or program; pass the BPF object (`clang -target bpf`), or the executable that embeds it"
        )
    )]
    NotBpf { machine: String },

    #[error("BPF ELF file is {}, not a relocatable object", crate::text::Escaped(.kind))]
    #[diagnostic(
        code(bpfcap::elf::not_relocatable),
        help("libbpf loads relocatable objects (`clang -target bpf -c`); linked BPF images are not supported")
    )]
    NotRelocatable { kind: String },

    #[error("malformed ELF: {}", crate::text::Escaped(.0))]
    #[diagnostic(code(bpfcap::elf::malformed), help("the file is truncated or corrupt; rebuild the object"))]
    Malformed(String),

    #[error("malformed BTF: {}", crate::text::Escaped(.0))]
    #[diagnostic(
        code(bpfcap::elf::btf),
        help("the .BTF/.BTF.ext sections are corrupt; rebuild the object with `clang -g`")
    )]
    Btf(String),

    #[error("the object exceeds a limit: {}", crate::text::Escaped(.0))]
    #[diagnostic(
        code(bpfcap::elf::too_complex),
        help(
            "bpfcap bounds what one object may cost to read and analyse (docs/limits.md); objects built by clang stay far below these limits"
        )
    )]
    TooComplex(String),

    #[error("the object is larger than {limit} bytes")]
    #[diagnostic(
        code(bpfcap::elf::too_large),
        help("bpfcap refuses inputs over this size; BPF objects are far smaller")
    )]
    TooLarge { limit: u64 },
}
