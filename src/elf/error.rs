//! Errors of the object reader: one enum for this layer, each variant saying what is wrong
//! with the input and what to do about it.

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum ElfError {
    #[error("not an ELF file ({0})")]
    #[diagnostic(code(bpfcap::elf::not_elf), help("pass a BPF object compiled with `clang -target bpf -c`, or an executable that embeds one"))]
    NotElf(String),

    #[error("ELF file for {machine}, not for BPF (EM_BPF)")]
    #[diagnostic(code(bpfcap::elf::not_bpf), help("this is a host object or program; pass the BPF object (`clang -target bpf`), or the executable that embeds it"))]
    NotBpf { machine: String },

    #[error("BPF ELF file is {kind}, not a relocatable object")]
    #[diagnostic(code(bpfcap::elf::not_relocatable), help("libbpf loads relocatable objects (`clang -target bpf -c`); linked BPF images are not supported"))]
    NotRelocatable { kind: String },

    #[error("malformed ELF: {0}")]
    #[diagnostic(code(bpfcap::elf::malformed), help("the file is truncated or corrupt; rebuild the object"))]
    Malformed(String),

    #[error("malformed BTF: {0}")]
    #[diagnostic(code(bpfcap::elf::btf), help("the .BTF/.BTF.ext sections are corrupt; rebuild the object with `clang -g`"))]
    Btf(String),

    #[error("the object is larger than {limit} bytes")]
    #[diagnostic(code(bpfcap::elf::too_large), help("bpfcap refuses inputs over this size; BPF objects are far smaller"))]
    TooLarge { limit: u64 },
}
