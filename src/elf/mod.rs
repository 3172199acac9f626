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
//! 5. collect maps: BTF-defined, legacy, global data, kconfig, struct_ops;
//! 6. collect relocations of every function and struct_ops program references.
//!
//! Section names are ELF-format facts that libbpf fixes in libbpf.c (`MAPS_ELF_SEC`,
//! `DATA_SEC`, `KCONFIG_SEC`, `STRUCT_OPS_SEC`, ...); they live here, next to the code that
//! reads them, not in the policy rules.

pub mod btf;
pub mod error;

use std::collections::BTreeMap;

use object::{Object as _, ObjectSection, ObjectSymbol, RelocationTarget, SectionKind, SymbolKind, SymbolSection};

pub use error::ElfError;

use crate::model::{
    Extern, ExternKind, Function, Insn, Map, MapOrigin, Object, Program, Reloc, RelocTarget, SourceLine, StructOps,
    StructOpsMember,
};
use btf::{Btf, KIND_ARRAY, KIND_FUNC, KIND_PTR, KIND_STRUCT, KIND_VAR, TypeData};

/// Largest object bpfcap reads (documented in docs/limits.md).
pub const MAX_OBJECT_SIZE: u64 = 256 << 20;

const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;
const BPF_MAP_TYPE_HASH_OF_MAPS: u32 = 13;
const BPF_MAP_TYPE_STRUCT_OPS: u32 = 26;
const BPF_F_RDONLY_PROG: u32 = 1 << 7;
const BPF_F_MMAPABLE: u32 = 1 << 10;
const BPF_F_LINK: u32 = 1 << 13;
const BPF_OBJ_NAME_LEN: usize = 16;

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

/// Reads one BPF ELF object. `name` is the libbpf object name (see [`object_name`]).
pub fn read_object(data: &[u8], name: &str) -> Result<Object, ElfError> {
    if data.len() as u64 > MAX_OBJECT_SIZE {
        return Err(ElfError::TooLarge { limit: MAX_OBJECT_SIZE });
    }
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf("no ELF magic".into()));
    }
    // Phase 1: header.
    let file = object::File::parse(data).map_err(|e| ElfError::Malformed(e.to_string()))?;
    if file.architecture() != object::Architecture::Bpf {
        return Err(ElfError::NotBpf { machine: format!("{:?}", file.architecture()) });
    }
    if file.kind() != object::ObjectKind::Relocatable {
        return Err(ElfError::NotRelocatable { kind: format!("{:?}", file.kind()).to_lowercase() });
    }
    let big_endian = !file.is_little_endian();

    // Phase 2: sections.
    let mut license = None;
    let mut kern_version = None;
    let mut btf_data: Option<&[u8]> = None;
    let mut btf_ext_data: Option<&[u8]> = None;
    let mut warnings = Vec::new();
    for sec in file.sections() {
        let sname = sec.name().unwrap_or("");
        match sname {
            "license" => {
                let d = sec.data().map_err(|e| ElfError::Malformed(format!("section license: {e}")))?;
                let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
                license = Some(String::from_utf8_lossy(&d[..end]).into_owned());
            }
            "version" => {
                let d = sec.data().map_err(|e| ElfError::Malformed(format!("section version: {e}")))?;
                if let Some(b) = d.get(0..4) {
                    let b: [u8; 4] = b.try_into().expect("4 bytes");
                    kern_version = Some(if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) });
                }
            }
            ".BTF" => btf_data = Some(sec.data().map_err(|e| ElfError::Malformed(format!("section .BTF: {e}")))?),
            ".BTF.ext" => {
                btf_ext_data = Some(sec.data().map_err(|e| ElfError::Malformed(format!("section .BTF.ext: {e}")))?)
            }
            _ => {}
        }
    }

    // Phase 3: BTF.
    let btf = match btf_data {
        Some(d) => Some(Btf::parse(d)?),
        None => None,
    };
    let mut lines_by_section: BTreeMap<String, Vec<btf::LineInfo>> = BTreeMap::new();
    if let (Some(ext), Some(b)) = (btf_ext_data, btf_data) {
        for (sec, recs) in btf::parse_line_info(ext, b)? {
            lines_by_section.insert(sec, recs);
        }
    }

    // Phase 4: functions.
    let mut programs = Vec::new();
    let mut subprograms = Vec::new();
    let mut exec_sections: BTreeMap<usize, String> = BTreeMap::new();
    for sec in file.sections() {
        let sname = sec.name().unwrap_or("").to_string();
        let elf_flags = match sec.flags() {
            object::SectionFlags::Elf { sh_flags } => sh_flags,
            _ => 0,
        };
        let exec = elf_flags & u64::from(object::elf::SHF_EXECINSTR) != 0;
        if !exec || sec.kind() == SectionKind::UninitializedData || sec.size() == 0 {
            continue;
        }
        exec_sections.insert(sec.index().0, sname.clone());
        let d = sec.data().map_err(|e| ElfError::Malformed(format!("section {sname}: {e}")))?;
        let mut syms: Vec<_> = file
            .symbols()
            .filter(|s| s.section_index() == Some(sec.index()) && s.kind() == SymbolKind::Text)
            .map(|s| (s.address(), s.size(), s.name().unwrap_or("").to_string(), s.is_global()))
            .collect();
        syms.sort_by_key(|s| s.0);
        let is_text = sname == ".text";
        for (i, (addr, size, fname, global)) in syms.iter().enumerate() {
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
            let insns = decode_insns(&d[start as usize..end as usize], big_endian);
            let lines = lines_by_section
                .get(sname.trim_start_matches('?'))
                .or_else(|| lines_by_section.get(&sname))
                .map(|recs| {
                    let mut v: Vec<(usize, SourceLine)> = recs
                        .iter()
                        .filter(|r| (r.insn_off as u64) >= start && (r.insn_off as u64) < end)
                        .map(|r| {
                            (((r.insn_off as u64 - start) / 8) as usize, SourceLine { file: r.file.clone(), line: r.line })
                        })
                        .collect();
                    v.sort_by_key(|x| x.0);
                    v
                })
                .unwrap_or_default();
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
                subprograms.push(function);
            } else if !*global {
                warnings.push(format!(
                    "section '{sname}': program '{fname}' is static; libbpf refuses static programs outside .text"
                ));
            } else {
                let autoload = !sname.starts_with('?');
                programs.push(Program { name: fname.clone(), section: sname.clone(), autoload, function });
            }
        }
    }

    // Phase 5: maps.
    let mut maps: Vec<Map> = Vec::new();
    let mut map_by_symbol: BTreeMap<(usize, String), usize> = BTreeMap::new();
    let mut map_by_section: BTreeMap<usize, usize> = BTreeMap::new();
    let oname = name.to_string();

    // 5a: BTF-defined maps in .maps
    if let Some(sec) = file.section_by_name(".maps") {
        let b = btf.as_ref().ok_or_else(|| ElfError::Btf("section .maps present but the object has no .BTF".into()))?;
        let ds = b
            .find_datasec(".maps")
            .ok_or_else(|| ElfError::Btf("no DATASEC .maps in BTF for section .maps".into()))?;
        if let TypeData::DataSec(vars) = &ds.data {
            for v in vars {
                let var = b.get(v.type_id).ok_or_else(|| ElfError::Btf(format!("bad map var type id {}", v.type_id)))?;
                if var.kind != KIND_VAR {
                    return Err(ElfError::Btf(format!("DATASEC .maps member {} is not a VAR", var.name)));
                }
                let idx = parse_btf_map(b, &var.name, var.size_or_type, &sec.name().unwrap_or(".maps").to_string(), &mut maps, 0)?;
                map_by_symbol.insert((sec.index().0, var.name.clone()), idx);
            }
        }
    }

    // 5b: legacy maps section
    if let Some(sec) = file.section_by_name("maps") {
        let d = sec.data().map_err(|e| ElfError::Malformed(format!("section maps: {e}")))?;
        let mut syms: Vec<_> = file
            .symbols()
            .filter(|s| s.section_index() == Some(sec.index()) && s.kind() != SymbolKind::Section)
            .map(|s| (s.address(), s.name().unwrap_or("").to_string()))
            .collect();
        syms.sort();
        syms.dedup();
        if !syms.is_empty() {
            let def_size = d.len() / syms.len();
            let iproute2 = def_size >= 36;
            for (addr, mname) in &syms {
                let off = *addr as usize;
                let field = |i: usize| -> Result<u32, ElfError> {
                    // checked: the symbol value (`off`) is whatever the file says
                    let p = off.checked_add(i * 4).unwrap_or(usize::MAX);
                    let b: [u8; 4] = d
                        .get(p..p.saturating_add(4))
                        .ok_or_else(|| ElfError::Malformed(format!("legacy map {mname} is truncated")))?
                        .try_into()
                        .expect("4 bytes");
                    Ok(if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
                };
                if def_size < 16 {
                    return Err(ElfError::Malformed(format!("legacy map {mname}: definition of {def_size} bytes is too small")));
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
                };
                map_by_symbol.insert((sec.index().0, mname.clone()), maps.len());
                maps.push(map);
            }
            warnings.push(format!(
                "legacy map definitions in section 'maps' ({}): libbpf 1.0 and newer refuse to open this object; \
                 iproute2 (tc) and other legacy loaders still read them",
                if iproute2 { "iproute2 struct bpf_elf_map" } else { "struct bpf_map_def" }
            ));
        }
    }

    // 5c: global data
    for sec in file.sections() {
        let sname = sec.name().unwrap_or("");
        let is_data = sname == ".data" || sname.starts_with(".data.");
        let is_rodata = sname == ".rodata" || sname.starts_with(".rodata.");
        let is_bss = sname == ".bss" || sname.starts_with(".bss.");
        if !(is_data || is_rodata || is_bss) || sec.size() == 0 {
            continue;
        }
        let value_size = u32::try_from(sec.size()).map_err(|_| ElfError::Malformed(format!("section {sname} too large")))?;
        let mut flags = BPF_F_MMAPABLE;
        if is_rodata {
            flags |= BPF_F_RDONLY_PROG;
        }
        map_by_section.insert(sec.index().0, maps.len());
        maps.push(Map {
            name: internal_map_name(&oname, sname),
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
        });
    }

    // externs (kconfig / ksyms / kfuncs), from BTF DATASECs and undefined symbols
    let mut externs = Vec::new();
    let undefined: BTreeMap<String, bool> = file
        .symbols()
        .filter(|s| s.section() == SymbolSection::Undefined && !s.name().unwrap_or("").is_empty())
        .map(|s| (s.name().unwrap_or("").to_string(), s.is_weak()))
        .collect();
    if let Some(b) = &btf {
        for (dsname, kind) in [(".kconfig", ExternKind::Kconfig), (".ksyms", ExternKind::Ksym)] {
            if let Some(ds) = b.find_datasec(dsname)
                && let TypeData::DataSec(vars) = &ds.data
            {
                for v in vars {
                    if let Some(t) = b.get(v.type_id) {
                        let k = if t.kind == KIND_FUNC { ExternKind::Kfunc } else { kind };
                        externs.push(Extern { name: t.name.clone(), kind: k, weak: *undefined.get(&t.name).unwrap_or(&false) });
                    }
                }
            }
        }
    }
    for (n, weak) in &undefined {
        if !externs.iter().any(|e| &e.name == n) {
            externs.push(Extern { name: n.clone(), kind: ExternKind::Ksym, weak: *weak });
        }
    }
    if externs.iter().any(|e| e.kind == ExternKind::Kconfig) {
        maps.push(Map {
            name: internal_map_name(&oname, ".kconfig"),
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
        });
    }

    // 5d: struct_ops
    for sec in file.sections() {
        let sname = sec.name().unwrap_or("").to_string();
        let bare = sname.trim_start_matches('?');
        if bare != ".struct_ops" && bare != ".struct_ops.link" {
            continue;
        }
        let b = btf.as_ref().ok_or_else(|| ElfError::Btf(format!("section {sname} present but the object has no .BTF")))?;
        let Some(ds) = b.find_datasec(&sname) else { continue };
        let TypeData::DataSec(vars) = &ds.data else { continue };
        // relocations: offset in section -> program symbol name
        let mut relo_at: BTreeMap<u64, String> = BTreeMap::new();
        for (off, rel) in sec.relocations() {
            if let RelocationTarget::Symbol(si) = rel.target()
                && let Ok(sym) = file.symbol_by_index(si)
            {
                relo_at.insert(off, sym.name().unwrap_or("").to_string());
            }
        }
        for v in vars {
            let Some(var) = b.get(v.type_id) else { continue };
            let Some((_, st)) = b.skip_mods(var.size_or_type) else { continue };
            let mut members = Vec::new();
            if let TypeData::Members(ms) = &st.data {
                for (i, m) in ms.iter().enumerate() {
                    let at = v.offset as u64 + (m.offset / 8) as u64;
                    if let Some(prog) = relo_at.get(&at) {
                        members.push(StructOpsMember { member: m.name.clone(), index: i as u32, program: prog.clone() });
                    }
                }
            }
            maps.push(Map {
                name: var.name.clone(),
                map_type: BPF_MAP_TYPE_STRUCT_OPS,
                key_size: 4,
                value_size: v.size,
                max_entries: 1,
                map_flags: if bare == ".struct_ops.link" { BPF_F_LINK } else { 0 },
                pinning: 0,
                origin: MapOrigin::StructOps,
                section: sname.clone(),
                inner: None,
                struct_ops: Some(StructOps { type_name: st.name.clone(), members }),
                btf_special_fields: Vec::new(),
            });
        }
    }

    // Phase 6: relocations of functions.
    for sec in file.sections() {
        let Some(sname) = exec_sections.get(&sec.index().0) else { continue };
        for (off, rel) in sec.relocations() {
            let RelocationTarget::Symbol(si) = rel.target() else { continue };
            let sym = file
                .symbol_by_index(si)
                .map_err(|e| ElfError::Malformed(format!("relocation in {sname} at {off}: {e}")))?;
            let sym_name = sym.name().unwrap_or("").to_string();
            let target = match sym.section() {
                SymbolSection::Undefined => RelocTarget::Extern(sym_name.clone()),
                SymbolSection::Section(tsi) => {
                    if let Some(&m) = map_by_symbol.get(&(tsi.0, sym_name.clone())) {
                        RelocTarget::Map(m)
                    } else if let Some(&m) = map_by_section.get(&tsi.0) {
                        RelocTarget::Map(m)
                    } else if let Some(tsec) = exec_sections.get(&tsi.0) {
                        RelocTarget::Function {
                            section: tsec.clone(),
                            sym_offset: sym.address(),
                            section_symbol: sym.kind() == SymbolKind::Section,
                        }
                    } else {
                        let tname = file.section_by_index(tsi).ok().and_then(|s| s.name().ok().map(String::from));
                        RelocTarget::Other { symbol: sym_name.clone(), section: tname.unwrap_or_default() }
                    }
                }
                _ => RelocTarget::Other { symbol: sym_name.clone(), section: String::new() },
            };
            let owner = programs
                .iter_mut()
                .map(|p| &mut p.function)
                .chain(subprograms.iter_mut())
                .find(|f| &f.section == sname && off >= f.offset && off < f.offset + 8 * f.insns.len() as u64);
            if let Some(f) = owner {
                let insn = ((off - f.offset) / 8) as usize;
                f.relocs.push(Reloc { insn, target });
            }
        }
    }

    // Programs reached through struct_ops maps get their members (for reasons).
    Ok(Object {
        name: oname,
        big_endian,
        license,
        kern_version,
        programs,
        subprograms,
        maps,
        externs,
        has_btf: btf.is_some(),
        has_btf_ext: btf_ext_data.is_some(),
        section_names: file.sections().map(|s| s.name().unwrap_or("").to_string()).collect(),
        warnings,
    })
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
    let sfx_len = real_name.len().max(7).min(BPF_OBJ_NAME_LEN - 1);
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

/// Parses a BTF-defined map definition (libbpf.c parse_btf_map_def) and pushes it (and its
/// inner map template) onto `maps`; returns its index.
fn parse_btf_map(b: &Btf, name: &str, type_id: u32, section: &str, maps: &mut Vec<Map>, depth: usize) -> Result<usize, ElfError> {
    if depth > 2 {
        return Err(ElfError::Btf(format!("map {name}: map-in-map nested too deeply")));
    }
    let (_, def) = b.skip_mods(type_id).ok_or_else(|| ElfError::Btf(format!("map {name}: bad type")))?;
    if def.kind != KIND_STRUCT {
        return Err(ElfError::Btf(format!("map {name}: definition is not a struct")));
    }
    let TypeData::Members(members) = &def.data else { unreachable!("struct has members") };
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
    };
    let mut inner_def = None;
    for m in members {
        let uint = || btf_uint(b, m.type_id).ok_or_else(|| ElfError::Btf(format!("map {name}: member {} is not __uint()", m.name)));
        match m.name.as_str() {
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
                let sz = b.size_of(t.size_or_type).unwrap_or(0);
                if m.name == "key" {
                    map.key_size = sz;
                } else {
                    map.value_size = sz;
                    let mut names = Vec::new();
                    b.embedded_names(t.size_or_type, &mut names);
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
    let idx = maps.len();
    maps.push(map);
    if let Some(inner_id) = inner_def
        && matches!(maps[idx].map_type, BPF_MAP_TYPE_ARRAY_OF_MAPS | BPF_MAP_TYPE_HASH_OF_MAPS)
    {
        let iname = format!("{name}.inner");
        let inner_idx = parse_btf_map(b, &iname, inner_id, section, maps, depth + 1)?;
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
