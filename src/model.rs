//! The object model: plain data describing what a BPF ELF object contains, as libbpf would
//! see it when opening it. Produced by [`crate::elf`], consumed by [`crate::analysis`].
//! Nothing here touches the kernel or knows about delegation.

use serde::Serialize;

/// One BPF ELF object.
#[derive(Debug, Clone, Serialize)]
pub struct Object {
    /// libbpf's object name: the file's base name up to its first '.'.
    pub name: String,
    pub big_endian: bool,
    pub license: Option<String>,
    pub kern_version: Option<u32>,
    pub programs: Vec<Program>,
    /// Functions in `.text`: subprograms reached through bpf-to-bpf calls.
    pub subprograms: Vec<Function>,
    pub maps: Vec<Map>,
    pub externs: Vec<Extern>,
    pub has_btf: bool,
    pub has_btf_ext: bool,
    /// Names of all ELF sections, in file order.
    pub section_names: Vec<String>,
    /// Sections with instructions whose program type libbpf decides from the name.
    pub warnings: Vec<String>,
    /// What the file the object came from shows about the program that loads it.
    #[serde(skip)]
    pub loader_hint: Option<LoaderHint>,
    /// Where its bytes are, when it was read from a file (not from standard input).
    #[serde(skip)]
    pub source: Option<ObjectRef>,
}

/// Where an object's bytes are, so that a loader reads exactly those again: a whole file, or
/// the byte range of an object embedded in an executable; with the name libbpf gives the
/// object and the name reports give it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
pub struct ObjectRef {
    pub file: std::path::PathBuf,
    /// (offset, length) of the object in the file; None: the whole file.
    pub range: Option<(u64, u64)>,
    /// libbpf's object name.
    pub name: String,
    /// How reports name it: the file's path, or `path#name` / `path#N` for an embedded object.
    pub display: String,
    /// The container image or archive the file is in (`file` is then its path inside the
    /// image, and no loader can read it from there); None: a file of this machine.
    #[serde(default)]
    pub image: Option<std::path::PathBuf>,
}

impl ObjectRef {
    /// The file (inside its image, if it is in one) that holds the object: what
    /// `--by-executable` groups by.
    pub fn holder(&self) -> (Option<&std::path::Path>, &std::path::Path) {
        (self.image.as_deref(), &self.file)
    }

    /// The whole file at `path`, whose object libbpf names `name`.
    pub fn whole(path: impl Into<std::path::PathBuf>, name: impl Into<String>) -> ObjectRef {
        let file = path.into();
        let display = file.display().to_string();
        ObjectRef { file, range: None, name: name.into(), display, image: None }
    }
}

/// What an executable shows about the loader it carries (`--loader auto`), found by the input
/// layer for the objects embedded in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderHint {
    /// The loader's name in the rules (rules/loader/*.toml); None: the file shows none.
    pub loader: Option<String>,
    /// Its version, MAJOR.MINOR, when the file shows it.
    pub version: Option<String>,
    /// `version` is only the oldest the file runs with (the symbol versions it needs of a
    /// shared library), not the one it carries.
    pub at_least: bool,
    /// What showed it, for reports: a clause about the file ("lists dep github.com/cilium/ebpf
    /// v0.22.0 in its Go build info").
    pub evidence: String,
}

/// A program: a global function in an executable section other than `.text`.
#[derive(Debug, Clone, Serialize)]
pub struct Program {
    pub name: String,
    /// Section name as written, including a leading '?'.
    pub section: String,
    /// False when the section name starts with '?'.
    pub autoload: bool,
    pub function: Function,
}

/// A function body with the references its instructions make.
#[derive(Debug, Clone, Serialize)]
pub struct Function {
    pub name: String,
    pub section: String,
    /// Byte offset of the function in its section.
    pub offset: u64,
    pub global: bool,
    #[serde(skip)]
    pub insns: Vec<Insn>,
    /// Relocations inside this function, by instruction index (relative to the function).
    #[serde(skip)]
    pub relocs: Vec<Reloc>,
    /// BTF.ext line info: (instruction index within the function, source line), sorted.
    #[serde(skip)]
    pub lines: Vec<(usize, SourceLine)>,
}

impl Function {
    /// What the relocation at instruction `insn` names, if one does (the reader keeps the
    /// relocations sorted by instruction, one per instruction).
    pub fn reloc_at(&self, insn: usize) -> Option<&RelocTarget> {
        self.relocs.binary_search_by_key(&insn, |r| r.insn).ok().map(|k| &self.relocs[k].target)
    }

    /// The source line that covers instruction `insn`, if line info is present.
    pub fn line_of(&self, insn: usize) -> Option<&SourceLine> {
        self.line_entry_of(insn).map(|e| &self.lines[e].1)
    }

    /// The index in [`Function::lines`] of the entry that covers instruction `insn`.
    pub fn line_entry_of(&self, insn: usize) -> Option<usize> {
        self.lines.partition_point(|(i, _)| *i <= insn).checked_sub(1)
    }
}

/// One 8-byte BPF instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

/// What a relocation in a function refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelocTarget {
    /// A map defined in the object (index into `Object::maps`).
    Map(usize),
    /// A function in an executable section (section name, byte offset of the symbol or
    /// section start; the final target adds the instruction's immediate).
    Function { section: String, sym_offset: u64, section_symbol: bool },
    /// An extern symbol (kconfig variable, ksym variable or kfunc).
    Extern(String),
    /// Anything else: the symbol's name and section.
    Other { symbol: String, section: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloc {
    /// Instruction index within the function.
    pub insn: usize,
    pub target: RelocTarget,
}

/// How a map came to exist in the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapOrigin {
    /// BTF-defined map in `.maps`.
    Btf,
    /// Inner map template of a map-in-map, from its `values` definition.
    InnerTemplate,
    /// Legacy `struct bpf_map_def` in a `maps` section.
    LegacyBpfMapDef,
    /// iproute2's `struct bpf_elf_map` in a `maps` section.
    LegacyIproute2,
    /// A global data section (`.data`, `.rodata`, `.bss` and their `.x.*` forms).
    GlobalData,
    /// `.kconfig` externs, which libbpf keeps in an internal map.
    Kconfig,
    /// A struct_ops variable in `.struct_ops` / `.struct_ops.link`.
    StructOps,
}

#[derive(Debug, Clone, Serialize)]
pub struct Map {
    /// The name libbpf gives the map.
    pub name: String,
    /// The map type as a number (`enum bpf_map_type`).
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub pinning: u32,
    pub origin: MapOrigin,
    /// ELF section the definition lives in.
    pub section: String,
    /// Index of the inner map template (for array_of_maps / hash_of_maps).
    pub inner: Option<usize>,
    /// For struct_ops maps: the struct type name and its function-pointer members that
    /// point at programs (member name, member index in the object's BTF, program name).
    pub struct_ops: Option<StructOps>,
    /// BTF value type contains fields that need the object's BTF in the kernel
    /// (bpf_spin_lock, bpf_timer, bpf_wq, kptrs, graph roots, ...).
    pub btf_special_fields: Vec<String>,
    /// Its key or value has a BTF type (`__type(key/value)`, a global-data section's DATASEC, a
    /// struct_ops value): a loader can create it with BTF.
    #[serde(skip)]
    pub btf_key_value: bool,
    /// Global data only: the section holds variables a loader's user can name (global or weak
    /// symbols, not hidden).
    #[serde(skip)]
    pub variables: bool,
}

impl Map {
    /// A global-data map (.data, .rodata, .bss and their `.x.*` forms, .kconfig).
    pub fn is_internal(&self) -> bool {
        matches!(self.origin, MapOrigin::GlobalData | MapOrigin::Kconfig)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StructOps {
    pub type_name: String,
    pub members: Vec<StructOpsMember>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StructOpsMember {
    pub member: String,
    pub index: u32,
    pub program: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExternKind {
    Kconfig,
    Ksym,
    Kfunc,
}

#[derive(Debug, Clone, Serialize)]
pub struct Extern {
    pub name: String,
    pub kind: ExternKind,
    pub weak: bool,
}

/// Source location from BTF.ext line info.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceLine {
    /// Shared by every line of the same file.
    pub file: std::sync::Arc<str>,
    pub line: u32,
}

/// `file:line`, as reasons and gate sites name a location.
impl std::fmt::Display for SourceLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

impl Object {
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }
}

/// A shared string of the analysis's results (names, texts): one pointer wide and cloned
/// by a reference count, as every reason carries several and reasons are sorted and moved.
pub type SharedStr = arcstr::ArcStr;
