//! ELF bytes → object model. Reads a BPF object in fixed phases, the way libbpf's
//! `bpf_object__open` does (libbpf.c `bpf_object__elf_collect`, `bpf_object__add_programs`,
//! `bpf_object__init_maps`, `bpf_object__collect_relos`), into plain data that never touches
//! the kernel:
//!
//! 1. check the ELF header (relocatable, EM_BPF);
//! 2. classify sections (programs, `.text`, maps, global data, struct_ops, BTF, license);
//! 3. decode BTF and BTF.ext when present;
//! 4. collect functions: programs (global functions in executable sections other than
//!    `.text`) and subprograms (functions in `.text`);
//! 5. collect maps: BTF-defined, legacy, global data, externs and kconfig, struct_ops;
//! 6. collect relocations of every function and struct_ops program references.
//!
//! Each phase is a method of the reader (`Reader::open`, `sections`, `btf`, `functions`,
//! `btf_maps`, `legacy_maps`, `global_data`, `externs`, `struct_ops`, `relocations`), called in
//! this order by [`read_object`].
//!
//! Section names are ELF-format facts that libbpf fixes in libbpf.c (`MAPS_ELF_SEC`,
//! `DATA_SEC`, `KCONFIG_SEC`, `STRUCT_OPS_SEC`, ...); they live here, next to the code that
//! reads them, not in the policy rules.

pub mod btf;
pub mod error;
pub mod uapi;

use std::borrow::Cow;
use std::collections::BTreeMap;

use object::{Object as _, ObjectSection, ObjectSymbol, RelocationTarget, SectionKind, SymbolKind, SymbolSection};

pub use error::ElfError;

use crate::model::{
    Extern, ExternKind, Function, Insn, Map, MapOrigin, Object, Program, Reloc, RelocTarget, SourceLine, StructOps,
    StructOpsMember,
};
use btf::{Btf, KIND_ARRAY, KIND_FUNC, KIND_PTR, KIND_STRUCT, KIND_VAR, TypeData};
use uapi::{
    BPF_F_LINK, BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_ARRAY_OF_MAPS,
    BPF_MAP_TYPE_HASH_OF_MAPS, BPF_MAP_TYPE_STRUCT_OPS, BPF_OBJ_NAME_LEN,
};

/// Largest object bpfcap reads (documented in docs/limits.md).
pub const MAX_OBJECT_SIZE: u64 = 256 << 20;
/// Most functions (programs, subprograms, static functions) and maps one object may define.
/// The analysis does work for every program and map, and real objects have hundreds at most.
pub const MAX_FUNCTIONS: usize = 4096;
pub const MAX_MAPS: usize = 4096;
/// The instructions of all functions together may fill at most this many times the object's
/// size: functions that overlap (aliases) are decoded once each, but a hostile symbol table
/// cannot make the reader decode the same bytes millions of times.
pub const MAX_INSN_BYTES_PER_OBJECT_BYTE: u64 = 2;
/// Bytes of source file names the per-function line tables may hold (each entry owns its
/// file name): bounds what a long name referenced by many line records can cost.
pub const MAX_LINE_TABLE_BYTES: usize = 64 << 20;
/// Steps the reader may take over BTF beyond decoding it once: members of map definitions,
/// types visited in map value types, struct_ops members, and bytes of BTF names it copies
/// into maps and externs. Real objects need a few thousand.
pub const MAX_BTF_WORK: u64 = 1 << 22;
/// What one struct_ops member that references a program costs of [`MAX_BTF_WORK`], besides
/// its names (about its size in the model, in bytes).
pub const STRUCT_OPS_MEMBER_WORK: usize = 64;
/// Longest section or symbol name the reader accepts (PATH_MAX: section names can hold a
/// path, `uprobe//usr/lib/...`).
pub const MAX_NAME_LEN: usize = 4096;
/// Bytes of section and symbol names the reader may look up and copy, per byte of object
/// (at least [`MIN_NAME_BYTES`]): every lookup scans a name and most copy it, so a string
/// table cannot make the reader scan or copy one long name millions of times. Real objects
/// read a few bytes of names per byte.
pub const NAME_BYTES_PER_OBJECT_BYTE: usize = 16;
pub const MIN_NAME_BYTES: usize = 16 << 20;

/// Kernel BTF types whose presence in a map value needs the map's BTF in the kernel
/// (kernel/bpf/btf.c btf_parse_fields).
const SPECIAL_FIELD_TYPES: &[&str] = &[
    "bpf_spin_lock",
    "bpf_res_spin_lock",
    "bpf_timer",
    "bpf_wq",
    "bpf_task_work",
    "bpf_list_head",
    "bpf_list_node",
    "bpf_rb_root",
    "bpf_rb_node",
    "bpf_refcount",
];

/// libbpf's object name: base name of the path up to the first '.' (libbpf.c bpf_object_new).
pub fn object_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.split('.').next().unwrap_or(base);
    base.chars().take(BPF_OBJ_NAME_LEN * 4).collect()
}

/// The object file at `path`, whole, under the name libbpf gives it ([`object_name`]).
pub fn object_file(path: impl Into<std::path::PathBuf>) -> crate::model::ObjectRef {
    let path = path.into();
    let name = object_name(&path.to_string_lossy());
    crate::model::ObjectRef::whole(path, name)
}

/// Reads one BPF ELF object. `name` is the libbpf object name (see [`object_name`]).
pub fn read_object(data: &[u8], name: &str) -> Result<Object, ElfError> {
    let mut r = Reader::open(data, name)?;
    r.sections()?;
    r.btf()?;
    r.functions()?;
    r.btf_maps()?;
    r.legacy_maps()?;
    r.global_data()?;
    r.externs()?;
    r.struct_ops()?;
    r.relocations()?;
    r.finish()
}

/// One object being read, phase by phase (as cilium/ebpf's elf_reader.go reads one): each
/// phase is a method that reads its part of the file into the reader, in the order
/// [`read_object`] calls them; [`Reader::finish`] gives the [`Object`].
struct Reader<'d> {
    data: &'d [u8],
    file: object::File<'d>,
    /// libbpf's object name.
    name: String,
    big_endian: bool,
    names: Names<'d>,
    warnings: Vec<String>,

    // what the sections hold (`sections`)
    license: Option<String>,
    kern_version: Option<u32>,
    btf_data: Option<&'d [u8]>,
    btf_ext_data: Option<&'d [u8]>,
    /// The first `.maps` and `maps` sections (what `section_by_name` finds, without scanning
    /// every name again).
    maps_section: Option<object::SectionIndex>,
    legacy_maps_section: Option<object::SectionIndex>,

    // BTF (`btf`)
    btf: Option<Btf<'d>>,
    /// Each section's line records, sorted by instruction, one per instruction.
    lines_by_section: BTreeMap<String, Vec<btf::LineInfo>>,

    // functions (`functions`)
    programs: Vec<Program>,
    subprograms: Vec<Function>,
    /// The executable sections, by index.
    exec_sections: BTreeMap<usize, String>,

    // maps (`btf_maps`, `legacy_maps`, `global_data`, `externs`, `struct_ops`)
    maps: Vec<Map>,
    /// section index → symbol name → map (two levels: a lookup borrows the symbol's name)
    map_by_symbol: BTreeMap<usize, BTreeMap<String, usize>>,
    map_by_section: BTreeMap<usize, usize>,
    externs: Vec<Extern>,
    work: Work,
}

impl<'d> Reader<'d> {
    /// Phase 1: the ELF header (a relocatable object for BPF).
    fn open(data: &'d [u8], name: &str) -> Result<Reader<'d>, ElfError> {
        if data.len() as u64 > MAX_OBJECT_SIZE {
            return Err(ElfError::TooLarge { limit: MAX_OBJECT_SIZE });
        }
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            return Err(ElfError::NotElf("no ELF magic".into()));
        }
        let file = object::File::parse(data).map_err(|e| ElfError::Malformed(e.to_string()))?;
        if file.architecture() != object::Architecture::Bpf {
            return Err(ElfError::NotBpf { machine: format!("{:?}", file.architecture()) });
        }
        if file.kind() != object::ObjectKind::Relocatable {
            return Err(ElfError::NotRelocatable { kind: format!("{:?}", file.kind()).to_lowercase() });
        }
        Ok(Reader {
            data,
            big_endian: !file.is_little_endian(),
            file,
            name: name.to_string(),
            names: Names(MIN_NAME_BYTES.max(data.len().saturating_mul(NAME_BYTES_PER_OBJECT_BYTE)), Vec::new()),
            warnings: Vec::new(),
            license: None,
            kern_version: None,
            btf_data: None,
            btf_ext_data: None,
            maps_section: None,
            legacy_maps_section: None,
            btf: None,
            lines_by_section: BTreeMap::new(),
            programs: Vec::new(),
            subprograms: Vec::new(),
            exec_sections: BTreeMap::new(),
            maps: Vec::new(),
            map_by_symbol: BTreeMap::new(),
            map_by_section: BTreeMap::new(),
            externs: Vec::new(),
            work: Work(MAX_BTF_WORK),
        })
    }

    /// Phase 2: what the sections hold: the maps sections, the license, the kernel version and
    /// the BTF.
    fn sections(&mut self) -> Result<(), ElfError> {
        let mut license_section = None;
        for sec in self.file.sections() {
            let sname = self.names.section(&sec)?;
            match &*sname {
                ".maps" => {
                    self.maps_section.get_or_insert(sec.index());
                }
                "maps" => {
                    self.legacy_maps_section.get_or_insert(sec.index());
                }
                // the last one counts; read after the loop, so that many sections named license
                // over the same bytes are not scanned once each
                "license" => license_section = Some(sec.index()),
                "version" => {
                    let d = sec.data().map_err(|e| ElfError::Malformed(format!("section version: {e}")))?;
                    if let Some(b) = d.get(0..4) {
                        let b: [u8; 4] = b.try_into().expect("4 bytes");
                        self.kern_version =
                            Some(if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) });
                    }
                }
                ".BTF" => {
                    self.btf_data = Some(sec.data().map_err(|e| ElfError::Malformed(format!("section .BTF: {e}")))?)
                }
                ".BTF.ext" => {
                    self.btf_ext_data =
                        Some(sec.data().map_err(|e| ElfError::Malformed(format!("section .BTF.ext: {e}")))?)
                }
                _ => {}
            }
        }
        if let Some(sec) = license_section.and_then(|i| self.file.section_by_index(i).ok()) {
            let d = sec.data().map_err(|e| ElfError::Malformed(format!("section license: {e}")))?;
            let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
            self.license = Some(String::from_utf8_lossy(&d[..end]).into_owned());
        }
        Ok(())
    }

    /// Phase 3: BTF, and the line records of BTF.ext.
    fn btf(&mut self) -> Result<(), ElfError> {
        if let Some(d) = self.btf_data {
            self.btf = Some(Btf::parse(d)?);
        }
        if let (Some(ext), Some(b)) = (self.btf_ext_data, self.btf_data) {
            for (sec, recs) in btf::parse_line_info(ext, b)? {
                self.lines_by_section.insert(sec, recs);
            }
        }
        // Each section's records by instruction, keeping only the last record of each
        // instruction (the one `Function::line_of` reports), so that a function takes its lines
        // by binary search and holds at most one per instruction.
        for recs in self.lines_by_section.values_mut() {
            recs.sort_by_key(|r| r.insn_off / 8);
            // (in place: of two records of one instruction, the later one moves into the place kept)
            recs.dedup_by(|later, kept| {
                let same = later.insn_off / 8 == kept.insn_off / 8;
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
        }
        Ok(())
    }

    /// Phase 4: the functions of the executable sections: programs, and the subprograms of
    /// `.text`.
    fn functions(&mut self) -> Result<(), ElfError> {
        let mut line_table_bytes = 0usize;
        let mut insn_bytes = 0u64;
        let mut functions = 0usize;
        // function symbols by section index, in symbol table order (one pass over the symbols);
        // libbpf takes STT_FUNC symbols only (bpf_object__add_programs), not STT_GNU_IFUNC, which
        // `object` also calls text
        let mut text_syms: BTreeMap<usize, Vec<(u64, u64, object::SymbolIndex, bool)>> = BTreeMap::new();
        for s in self.file.symbols() {
            let is_func =
                matches!(s.flags(), object::SymbolFlags::Elf { st_info, .. } if st_info & 0xf == object::elf::STT_FUNC);
            if is_func && let Some(si) = s.section_index() {
                text_syms.entry(si.0).or_default().push((s.address(), s.size(), s.index(), s.is_global()));
            }
        }
        for sec in self.file.sections() {
            let sname = self.names.section(&sec)?.to_string();
            let elf_flags = match sec.flags() {
                object::SectionFlags::Elf { sh_flags } => sh_flags,
                _ => 0,
            };
            // libbpf.c bpf_object__elf_collect: programs come from SHT_PROGBITS sections with
            // SHF_EXECINSTR and a size; any other section type is not read for programs
            let exec = elf_flags & u64::from(object::elf::SHF_EXECINSTR) != 0;
            if !exec || !is_progbits(sec.kind()) || sec.size() == 0 {
                continue;
            }
            self.exec_sections.insert(sec.index().0, sname.clone());
            let d = sec.data().map_err(|e| ElfError::Malformed(format!("section {sname}: {e}")))?;
            let mut syms = text_syms.remove(&sec.index().0).unwrap_or_default();
            syms.sort_by_key(|s| s.0);
            let is_text = sname == ".text";
            for (i, (addr, size, sym_index, global)) in syms.iter().enumerate() {
                let fname = &match self.file.symbol_by_index(*sym_index) {
                    Ok(sym) => self.names.symbol(&sym)?.to_string(),
                    Err(_) => String::new(),
                };
                let start = *addr;
                let end = if *size > 0 {
                    addr.checked_add(*size).ok_or_else(|| ElfError::Malformed(format!("function {fname} overflows")))?
                } else {
                    syms.get(i + 1).map(|s| s.0).unwrap_or(d.len() as u64)
                };
                if end > d.len() as u64 || start % 8 != 0 || end % 8 != 0 || start > end {
                    return Err(ElfError::Malformed(format!(
                        "function {fname} ({start}..{end}) lies outside section {sname} ({} bytes) or is misaligned",
                        d.len()
                    )));
                }
                functions += 1;
                if functions > MAX_FUNCTIONS {
                    return Err(ElfError::TooComplex(format!("more than {MAX_FUNCTIONS} functions")));
                }
                insn_bytes += end - start;
                if insn_bytes > (self.data.len() as u64).saturating_mul(MAX_INSN_BYTES_PER_OBJECT_BYTE) {
                    return Err(ElfError::TooComplex(format!(
                        "function {fname} in section {sname}: the functions overlap, their instructions exceed \
                         {MAX_INSN_BYTES_PER_OBJECT_BYTE} times the object's size"
                    )));
                }
                let insns = decode_insns(&d[start as usize..end as usize], self.big_endian);
                let recs = self
                    .lines_by_section
                    .get(sname.trim_start_matches('?'))
                    .or_else(|| self.lines_by_section.get(&sname));
                let lines = match recs {
                    Some(recs) => {
                        // records are sorted by instruction (insn_off / 8) and unique per instruction
                        let (first, last) = (start / 8, end / 8);
                        let lo = recs.partition_point(|r| u64::from(r.insn_off / 8) < first);
                        let hi = recs.partition_point(|r| u64::from(r.insn_off / 8) < last);
                        let mut v: Vec<(usize, SourceLine)> = Vec::with_capacity(hi.saturating_sub(lo));
                        for r in recs.get(lo..hi).unwrap_or_default() {
                            line_table_bytes = line_table_bytes.saturating_add(r.file.len());
                            if line_table_bytes > MAX_LINE_TABLE_BYTES {
                                return Err(ElfError::Btf(format!(
                                    "line info: the functions' source file names exceed {MAX_LINE_TABLE_BYTES} bytes"
                                )));
                            }
                            v.push((
                                (u64::from(r.insn_off / 8) - first) as usize,
                                SourceLine { file: r.file.clone(), line: r.line },
                            ));
                        }
                        v
                    }
                    None => Vec::new(),
                };
                let function = Function {
                    name: fname.clone(),
                    section: sname.clone(),
                    offset: start,
                    global: *global,
                    insns,
                    relocs: Vec::new(),
                    lines,
                };
                if is_text {
                    self.subprograms.push(function);
                } else if !*global {
                    self.warnings.push(format!(
                        "section '{sname}': program '{fname}' is static; libbpf refuses static programs outside .text"
                    ));
                } else {
                    let autoload = !sname.starts_with('?');
                    self.programs.push(Program { name: fname.clone(), section: sname.clone(), autoload, function });
                }
            }
        }
        Ok(())
    }

    /// Phase 5a: the BTF-defined maps of `.maps`.
    fn btf_maps(&mut self) -> Result<(), ElfError> {
        let Some(sec) = self.maps_section.and_then(|i| self.file.section_by_index(i).ok()) else { return Ok(()) };
        let b = self
            .btf
            .as_ref()
            .ok_or_else(|| ElfError::Btf("section .maps present but the object has no .BTF".into()))?;
        let ds =
            b.find_datasec(".maps").ok_or_else(|| ElfError::Btf("no DATASEC .maps in BTF for section .maps".into()))?;
        if let Some(vars) = b.vars_of(ds) {
            for v in vars {
                let var =
                    b.get(v.type_id).ok_or_else(|| ElfError::Btf(format!("bad map var type id {}", v.type_id)))?;
                if var.kind != KIND_VAR {
                    return Err(ElfError::Btf(format!("DATASEC .maps member {} is not a VAR", var.name)));
                }
                let idx =
                    parse_btf_map(b, &var.name.as_str(), var.size_or_type, ".maps", &mut self.maps, 0, &mut self.work)?;
                self.map_by_symbol.entry(sec.index().0).or_default().insert(var.name.to_string(), idx);
            }
        }
        Ok(())
    }

    /// Phase 5b: the legacy `maps` section (`struct bpf_map_def`, iproute2's `bpf_elf_map`).
    fn legacy_maps(&mut self) -> Result<(), ElfError> {
        let Some(sec) = self.legacy_maps_section.and_then(|i| self.file.section_by_index(i).ok()) else {
            return Ok(());
        };
        let big_endian = self.big_endian;
        let d = sec.data().map_err(|e| ElfError::Malformed(format!("section maps: {e}")))?;
        let mut syms = Vec::new();
        for s in self.file.symbols() {
            if s.section_index() == Some(sec.index()) && s.kind() != SymbolKind::Section {
                syms.push((s.address(), self.names.symbol(&s)?.to_string()));
            }
        }
        syms.sort();
        syms.dedup();
        if syms.is_empty() {
            return Ok(());
        }
        let def_size = d.len() / syms.len();
        let iproute2 = def_size >= 36;
        for (addr, mname) in &syms {
            let off = *addr as usize;
            let field = |i: usize| -> Result<u32, ElfError> {
                // checked: the symbol value (`off`) is whatever the file says
                let p = off.saturating_add(i * 4);
                let b: [u8; 4] = d
                    .get(p..p.saturating_add(4))
                    .ok_or_else(|| ElfError::Malformed(format!("legacy map {mname} is truncated")))?
                    .try_into()
                    .expect("4 bytes");
                Ok(if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
            };
            if def_size < 16 {
                return Err(ElfError::Malformed(format!(
                    "legacy map {mname}: definition of {def_size} bytes is too small"
                )));
            }
            let map = Map {
                name: mname.clone(),
                map_type: field(0)?,
                key_size: field(1)?,
                value_size: field(2)?,
                max_entries: field(3)?,
                map_flags: if def_size >= 20 { field(4)? } else { 0 },
                pinning: if iproute2 { field(6)? } else { 0 },
                origin: if iproute2 { MapOrigin::LegacyIproute2 } else { MapOrigin::LegacyBpfMapDef },
                section: "maps".into(),
                inner: None,
                struct_ops: None,
                btf_special_fields: Vec::new(),
                btf_key_value: false,
                variables: false,
            };
            if self.maps.len() >= MAX_MAPS {
                return Err(ElfError::TooComplex(format!("more than {MAX_MAPS} maps")));
            }
            self.map_by_symbol.entry(sec.index().0).or_default().insert(mname.clone(), self.maps.len());
            self.maps.push(map);
        }
        self.warnings.push(format!(
            "legacy map definitions in section 'maps' ({}): libbpf 1.0 and newer refuse to open this object; \
             iproute2 (tc) and other legacy loaders still read them",
            if iproute2 { "iproute2 struct bpf_elf_map" } else { "struct bpf_map_def" }
        ));
        Ok(())
    }

    /// Phase 5c: a map per global data section, and which of them hold variables (global or
    /// weak symbols, not hidden or internal, not compiler-internal names starting with '.').
    fn global_data(&mut self) -> Result<(), ElfError> {
        let variable_sections: std::collections::BTreeSet<usize> = self
            .file
            .symbols()
            .filter(|s| {
                let visible = matches!(s.flags(), object::SymbolFlags::Elf { st_other, .. } if st_other & 3 == 0 || st_other & 3 == 3);
                s.kind() == SymbolKind::Data && (s.is_global() || s.is_weak()) && visible && !s.name().unwrap_or(".").starts_with('.')
            })
            .filter_map(|s| s.section_index().map(|i| i.0))
            .collect();
        for sec in self.file.sections() {
            let sname = self.names.section(&sec)?;
            let is_data = sname == ".data" || sname.starts_with(".data.");
            let is_rodata = sname == ".rodata" || sname.starts_with(".rodata.");
            let is_bss = sname == ".bss" || sname.starts_with(".bss.");
            if !(is_data || is_rodata || is_bss) || sec.size() == 0 {
                continue;
            }
            let value_size =
                u32::try_from(sec.size()).map_err(|_| ElfError::Malformed(format!("section {sname} too large")))?;
            if self.maps.len() >= MAX_MAPS {
                return Err(ElfError::TooComplex(format!("more than {MAX_MAPS} maps")));
            }
            let mut flags = BPF_F_MMAPABLE;
            if is_rodata {
                flags |= BPF_F_RDONLY_PROG;
            }
            self.map_by_section.insert(sec.index().0, self.maps.len());
            self.maps.push(Map {
                name: internal_map_name(&self.name, &sname),
                map_type: BPF_MAP_TYPE_ARRAY,
                key_size: 4,
                value_size,
                max_entries: 1,
                map_flags: flags,
                pinning: 0,
                origin: MapOrigin::GlobalData,
                section: sname.to_string(),
                inner: None,
                struct_ops: None,
                btf_special_fields: Vec::new(),
                btf_key_value: self.btf.as_ref().is_some_and(|b| b.find_datasec(&sname).is_some()),
                variables: variable_sections.contains(&sec.index().0),
            });
        }
        Ok(())
    }

    /// Phase 5d: the externs (kconfig, ksyms, kfuncs), from BTF DATASECs and undefined
    /// symbols, and the `.kconfig` map when there are kconfig externs.
    fn externs(&mut self) -> Result<(), ElfError> {
        let mut undefined: BTreeMap<String, bool> = BTreeMap::new();
        for s in self.file.symbols() {
            if s.section() == SymbolSection::Undefined {
                let n = self.names.symbol(&s)?;
                if !n.is_empty() {
                    undefined.insert(n.to_string(), s.is_weak());
                }
            }
        }
        if let Some(b) = &self.btf {
            for (dsname, kind) in [(".kconfig", ExternKind::Kconfig), (".ksyms", ExternKind::Ksym)] {
                if let Some(ds) = b.find_datasec(dsname)
                    && let Some(vars) = b.vars_of(ds)
                {
                    for v in vars {
                        if let Some(t) = b.get(v.type_id) {
                            self.work.spend(1 + t.name.len())?;
                            let k = if t.kind == KIND_FUNC { ExternKind::Kfunc } else { kind };
                            self.externs.push(Extern {
                                name: t.name.to_string(),
                                kind: k,
                                weak: *undefined.get(&*t.name.as_str()).unwrap_or(&false),
                            });
                        }
                    }
                }
            }
        }
        let mut extern_names: std::collections::BTreeSet<String> =
            self.externs.iter().map(|e| e.name.clone()).collect();
        for (n, weak) in &undefined {
            if extern_names.insert(n.clone()) {
                self.externs.push(Extern { name: n.clone(), kind: ExternKind::Ksym, weak: *weak });
            }
        }
        if self.externs.iter().any(|e| e.kind == ExternKind::Kconfig) {
            self.maps.push(Map {
                name: internal_map_name(&self.name, ".kconfig"),
                map_type: BPF_MAP_TYPE_ARRAY,
                key_size: 4,
                value_size: 0,
                max_entries: 1,
                map_flags: BPF_F_MMAPABLE | BPF_F_RDONLY_PROG,
                pinning: 0,
                origin: MapOrigin::Kconfig,
                section: ".kconfig".into(),
                inner: None,
                struct_ops: None,
                btf_special_fields: Vec::new(),
                btf_key_value: self.btf.as_ref().is_some_and(|b| b.find_datasec(".kconfig").is_some()),
                variables: false,
            });
        }
        Ok(())
    }

    /// Phase 5e: the struct_ops maps, one per variable of each `.struct_ops` /
    /// `.struct_ops.link` DATASEC, with the programs their members reference.
    fn struct_ops(&mut self) -> Result<(), ElfError> {
        let mut struct_ops_seen = std::collections::BTreeSet::new();
        for sec in self.file.sections() {
            let sname = self.names.section(&sec)?.to_string();
            let bare = sname.trim_start_matches('?');
            if bare != ".struct_ops" && bare != ".struct_ops.link" {
                continue;
            }
            // one set of maps per DATASEC, however many sections carry its name
            if !struct_ops_seen.insert(sname.clone()) {
                continue;
            }
            let b = self
                .btf
                .as_ref()
                .ok_or_else(|| ElfError::Btf(format!("section {sname} present but the object has no .BTF")))?;
            let Some(ds) = b.find_datasec(&sname) else { continue };
            let Some(vars) = b.vars_of(ds) else { continue };
            // relocations: offset in section -> program symbol name
            let mut relo_at: BTreeMap<u64, String> = BTreeMap::new();
            for (off, rel) in sec.relocations() {
                if let RelocationTarget::Symbol(si) = rel.target()
                    && let Ok(sym) = self.file.symbol_by_index(si)
                {
                    relo_at.insert(off, self.names.symbol(&sym)?.to_string());
                }
            }
            for v in vars {
                let Some(var) = b.get(v.type_id) else { continue };
                let Some((_, st)) = b.skip_mods(var.size_or_type) else { continue };
                if self.maps.len() >= MAX_MAPS {
                    return Err(ElfError::TooComplex(format!("more than {MAX_MAPS} maps")));
                }
                self.work.spend(var.name.len() + st.name.len())?;
                let mut members = Vec::new();
                if let Some(ms) = b.members_of(st) {
                    self.work.spend(ms.len())?;
                    for (i, m) in ms.iter().enumerate() {
                        let at = v.offset as u64 + (m.offset / 8) as u64;
                        if let Some(prog) = relo_at.get(&at) {
                            self.work.spend(STRUCT_OPS_MEMBER_WORK + m.name.len() + prog.len())?;
                            members.push(StructOpsMember {
                                member: m.name.to_string(),
                                index: i as u32,
                                program: prog.clone(),
                            });
                        }
                    }
                }
                self.maps.push(Map {
                    name: var.name.to_string(),
                    map_type: BPF_MAP_TYPE_STRUCT_OPS,
                    key_size: 4,
                    value_size: v.size,
                    max_entries: 1,
                    map_flags: if bare == ".struct_ops.link" { BPF_F_LINK } else { 0 },
                    pinning: 0,
                    origin: MapOrigin::StructOps,
                    section: sname.clone(),
                    inner: None,
                    struct_ops: Some(StructOps { type_name: st.name.to_string(), members }),
                    btf_special_fields: Vec::new(),
                    btf_key_value: true,
                    variables: false,
                });
            }
        }
        if self.maps.len() > MAX_MAPS {
            return Err(ElfError::TooComplex(format!("more than {MAX_MAPS} maps")));
        }
        Ok(())
    }

    /// Phase 6: the relocations of every function, each resolved to a map, an extern, a
    /// function or another symbol; one per instruction, the last (the one the analysis reads),
    /// so that a function holds at most as many relocations as instructions however many the
    /// file repeats.
    fn relocations(&mut self) -> Result<(), ElfError> {
        // The function owning a relocation: per section name, functions by start offset (the
        // first of functions that start at the same offset, in the order programs, subprograms).
        let n_programs = self.programs.len();
        let mut by_start: BTreeMap<String, BTreeMap<u64, (u64, usize)>> = BTreeMap::new();
        for (slot, f) in self.programs.iter().map(|p| &p.function).chain(self.subprograms.iter()).enumerate() {
            let end = f.offset + 8 * f.insns.len() as u64;
            if end > f.offset {
                by_start.entry(f.section.clone()).or_default().entry(f.offset).or_insert((end, slot));
            }
        }
        for sec in self.file.sections() {
            let Some(sname) = self.exec_sections.get(&sec.index().0) else { continue };
            for (off, rel) in sec.relocations() {
                let RelocationTarget::Symbol(si) = rel.target() else { continue };
                let sym = self
                    .file
                    .symbol_by_index(si)
                    .map_err(|e| ElfError::Malformed(format!("relocation in {sname} at {off}: {e}")))?;
                let sym_name = self.names.symbol(&sym)?;
                let target = match sym.section() {
                    SymbolSection::Undefined => RelocTarget::Extern(sym_name.to_string()),
                    SymbolSection::Section(tsi) => {
                        if let Some(&m) = self.map_by_symbol.get(&tsi.0).and_then(|by_name| by_name.get(&*sym_name)) {
                            RelocTarget::Map(m)
                        } else if let Some(&m) = self.map_by_section.get(&tsi.0) {
                            RelocTarget::Map(m)
                        } else if let Some(tsec) = self.exec_sections.get(&tsi.0) {
                            self.names.charge(tsec)?;
                            RelocTarget::Function {
                                section: tsec.clone(),
                                sym_offset: sym.address(),
                                section_symbol: sym.kind() == SymbolKind::Section,
                            }
                        } else {
                            let tname = match self.file.section_by_index(tsi) {
                                Ok(s) => self.names.section(&s)?.to_string(),
                                Err(_) => String::new(),
                            };
                            RelocTarget::Other { symbol: sym_name.to_string(), section: tname }
                        }
                    }
                    _ => RelocTarget::Other { symbol: sym_name.to_string(), section: String::new() },
                };
                let owner = by_start
                    .get(sname.as_str())
                    .and_then(|starts| starts.range(..=off).next_back())
                    .filter(|(_, (end, _))| off < *end)
                    .map(|(_, (_, slot))| *slot);
                let owner = match owner {
                    Some(slot) if slot < n_programs => Some(&mut self.programs[slot].function),
                    Some(slot) => self.subprograms.get_mut(slot - n_programs),
                    None => None,
                };
                if let Some(f) = owner {
                    let insn = ((off - f.offset) / 8) as usize;
                    f.relocs.push(Reloc { insn, target });
                }
            }
        }
        for f in self.programs.iter_mut().map(|p| &mut p.function).chain(self.subprograms.iter_mut()) {
            f.relocs.reverse();
            f.relocs.sort_by_key(|r| r.insn);
            f.relocs.dedup_by_key(|r| r.insn);
        }
        Ok(())
    }

    /// The object read.
    fn finish(mut self) -> Result<Object, ElfError> {
        let mut section_names = Vec::new();
        for s in self.file.sections() {
            section_names.push(self.names.section(&s)?.to_string());
        }
        Ok(Object {
            loader_hint: None,
            source: None,
            name: self.name,
            big_endian: self.big_endian,
            license: self.license,
            kern_version: self.kern_version,
            programs: self.programs,
            subprograms: self.subprograms,
            maps: self.maps,
            externs: self.externs,
            has_btf: self.btf.is_some(),
            has_btf_ext: self.btf_ext_data.is_some(),
            section_names,
            warnings: self.warnings,
        })
    }
}

fn decode_insns(d: &[u8], big_endian: bool) -> Vec<Insn> {
    d.chunks_exact(8)
        .map(|c| {
            let regs = c[1];
            let (dst, src) = if big_endian { (regs >> 4, regs & 0xf) } else { (regs & 0xf, regs >> 4) };
            let off = [c[2], c[3]];
            let imm = [c[4], c[5], c[6], c[7]];
            Insn {
                code: c[0],
                dst,
                src,
                off: if big_endian { i16::from_be_bytes(off) } else { i16::from_le_bytes(off) },
                imm: if big_endian { i32::from_be_bytes(imm) } else { i32::from_le_bytes(imm) },
            }
        })
        .collect()
}

/// libbpf.c internal_map_name: up to 15 characters, object-name prefix for `.data`,
/// `.rodata`, `.bss`, `.kconfig`, none for custom `.data.x`-style sections.
pub fn internal_map_name(obj_name: &str, real_name: &str) -> String {
    let sfx_len = real_name.len().clamp(7, BPF_OBJ_NAME_LEN - 1);
    let pfx_len = if real_name.len() > 1 && real_name[1..].contains('.') {
        0
    } else {
        (BPF_OBJ_NAME_LEN - sfx_len - 1).min(obj_name.len())
    };
    let mut s: String = obj_name.bytes().take(pfx_len).map(char::from).collect();
    s.extend(real_name.bytes().take(sfx_len).map(char::from));
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '_' }).collect()
}

/// Reads the integer encoded as `int (*name)[N]` (libbpf's __uint()).
fn btf_uint(b: &Btf, type_id: u32) -> Option<u32> {
    let t = b.get(type_id)?;
    if t.kind != KIND_PTR {
        return None;
    }
    let (_, arr) = b.skip_mods(t.size_or_type)?;
    match arr.data {
        TypeData::Array { nelems, .. } if arr.kind == KIND_ARRAY => Some(nelems),
        _ => None,
    }
}

/// Whether a section is SHT_PROGBITS, from the kind the `object` crate gives it (every kind it
/// gives SHT_PROGBITS sections, and no other type).
fn is_progbits(kind: SectionKind) -> bool {
    matches!(
        kind,
        SectionKind::Text
            | SectionKind::Tls
            | SectionKind::Data
            | SectionKind::ReadOnlyData
            | SectionKind::ReadOnlyString
            | SectionKind::OtherString
            | SectionKind::Other
    )
}

/// What is left of the name bytes the reader may look up and copy ([`NAME_BYTES_PER_OBJECT_BYTE`]),
/// and the section names looked up so far (each is read and charged once). Names are decoded
/// as libbpf's users see them: bytes that are not UTF-8 become U+FFFD (the sandbox decodes
/// libbpf's names the same way), so that a name never goes missing.
struct Names<'d>(usize, Vec<Option<Cow<'d, str>>>);

impl<'d> Names<'d> {
    fn charge(&mut self, name: &str) -> Result<(), ElfError> {
        if name.len() > MAX_NAME_LEN {
            return Err(ElfError::TooComplex(format!(
                "a section or symbol name of {} bytes (at most {MAX_NAME_LEN})",
                name.len()
            )));
        }
        self.0 = self.0.checked_sub(name.len()).ok_or_else(|| {
            ElfError::TooComplex(format!(
                "section and symbol names: more than {NAME_BYTES_PER_OBJECT_BYTE} bytes read per byte of object"
            ))
        })?;
        Ok(())
    }

    fn section(&mut self, sec: &object::Section<'d, '_>) -> Result<Cow<'d, str>, ElfError> {
        let i = sec.index().0;
        if let Some(Some(n)) = self.1.get(i) {
            return Ok(n.clone());
        }
        let n = String::from_utf8_lossy(sec.name_bytes().unwrap_or_default());
        self.charge(&n)?;
        if self.1.len() <= i {
            self.1.resize(i + 1, None);
        }
        self.1[i] = Some(n.clone());
        Ok(n)
    }

    fn symbol(&mut self, sym: &object::Symbol<'d, '_>) -> Result<Cow<'d, str>, ElfError> {
        let n = String::from_utf8_lossy(sym.name_bytes().unwrap_or_default());
        self.charge(&n)?;
        Ok(n)
    }
}

/// What is left of [`MAX_BTF_WORK`].
struct Work(u64);

impl Work {
    fn spend(&mut self, n: usize) -> Result<(), ElfError> {
        self.0 = self.0.checked_sub(n as u64).ok_or_else(|| {
            ElfError::TooComplex(format!(
                "the map and struct_ops definitions take more than {MAX_BTF_WORK} steps to read"
            ))
        })?;
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn parse_btf_map(
    b: &Btf,
    name: &str,
    type_id: u32,
    section: &str,
    maps: &mut Vec<Map>,
    depth: usize,
    work: &mut Work,
) -> Result<usize, ElfError> {
    if depth > 2 {
        return Err(ElfError::Btf(format!("map {name}: map-in-map nested too deeply")));
    }
    let (_, def) = b.skip_mods(type_id).ok_or_else(|| ElfError::Btf(format!("map {name}: bad type")))?;
    if def.kind != KIND_STRUCT {
        return Err(ElfError::Btf(format!("map {name}: definition is not a struct")));
    }
    let Some(members) = b.members_of(def) else { unreachable!("struct has members") };
    work.spend(2 * name.len())?;
    let mut map = Map {
        name: name.to_string(),
        map_type: 0,
        key_size: 0,
        value_size: 0,
        max_entries: 0,
        map_flags: 0,
        pinning: 0,
        origin: if depth == 0 { MapOrigin::Btf } else { MapOrigin::InnerTemplate },
        section: section.to_string(),
        inner: None,
        struct_ops: None,
        btf_special_fields: Vec::new(),
        btf_key_value: false,
        variables: false,
    };
    let mut inner_def = None;
    work.spend(members.len())?;
    for m in members {
        let uint = || {
            btf_uint(b, m.type_id)
                .ok_or_else(|| ElfError::Btf(format!("map {name}: member {} is not __uint()", m.name)))
        };
        match &*m.name.as_str() {
            "type" => map.map_type = uint()?,
            "max_entries" => map.max_entries = uint()?,
            "map_flags" => map.map_flags = uint()?,
            "pinning" => map.pinning = uint()?,
            "key_size" => map.key_size = uint()?,
            "value_size" => map.value_size = uint()?,
            "key" | "value" => {
                let t = b.get(m.type_id).ok_or_else(|| ElfError::Btf(format!("map {name}: bad {} type", m.name)))?;
                if t.kind != KIND_PTR {
                    return Err(ElfError::Btf(format!("map {name}: {} is not declared with __type()", m.name)));
                }
                map.btf_key_value = true;
                let sz = b.size_of(t.size_or_type).unwrap_or(0);
                if m.name == "key" {
                    map.key_size = sz;
                } else {
                    map.value_size = sz;
                    let mut names = Vec::new();
                    work.spend(b.embedded_names(t.size_or_type, &mut names))?;
                    let mut special: Vec<String> = names
                        .into_iter()
                        .filter(|n| SPECIAL_FIELD_TYPES.contains(&n.as_str()) || n.starts_with("type_tag:"))
                        .collect();
                    special.sort();
                    special.dedup();
                    map.btf_special_fields = special;
                }
            }
            "values" => {
                // __array(values, struct inner_def): an array of pointers to the inner definition
                if let Some((_, arr)) = b.skip_mods(m.type_id)
                    && let TypeData::Array { elem, .. } = arr.data
                    && let Some(p) = b.get(elem)
                    && p.kind == KIND_PTR
                    && let Some((inner_id, inner)) = b.skip_mods(p.size_or_type)
                    && inner.kind == KIND_STRUCT
                {
                    inner_def = Some(inner_id);
                }
            }
            _ => {}
        }
    }
    work.spend(map.btf_special_fields.iter().map(|f| f.len()).sum())?;
    if maps.len() >= MAX_MAPS {
        return Err(ElfError::TooComplex(format!("more than {MAX_MAPS} maps")));
    }
    let idx = maps.len();
    maps.push(map);
    if let Some(inner_id) = inner_def
        && matches!(maps[idx].map_type, BPF_MAP_TYPE_ARRAY_OF_MAPS | BPF_MAP_TYPE_HASH_OF_MAPS)
    {
        let iname = format!("{name}.inner");
        let inner_idx = parse_btf_map(b, &iname, inner_id, section, maps, depth + 1, work)?;
        maps[idx].inner = Some(inner_idx);
        maps[idx].value_size = 4;
    }
    Ok(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_map_names_follow_libbpf() {
        assert_eq!(internal_map_name("my_object_name", ".rodata"), "my_objec.rodata");
        assert_eq!(internal_map_name("my_object_name", ".bss"), "my_objec.bss");
        assert_eq!(internal_map_name("my_object_name", ".kconfig"), "my_obje.kconfig");
        assert_eq!(internal_map_name("obj", ".rodata.abracadabra"), ".rodata.abracad");
        assert_eq!(internal_map_name("obj", ".data.custom"), ".data.custom");
    }

    #[test]
    fn object_names_follow_libbpf() {
        assert_eq!(object_name("/a/b/xdp.bpf.o"), "xdp");
        assert_eq!(object_name("plain"), "plain");
    }

    #[test]
    fn rejects_what_is_not_a_bpf_object() {
        assert!(matches!(read_object(b"hello world\n", "x"), Err(ElfError::NotElf(_))));
        assert!(matches!(read_object(b"", "x"), Err(ElfError::NotElf(_))));
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(matches!(read_object(&me, "x"), Err(ElfError::NotBpf { .. })));
    }
}
