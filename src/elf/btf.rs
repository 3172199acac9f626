//! A small, bounds-checked decoder for the `.BTF` and `.BTF.ext` sections: just what the
//! reader needs (types, sizes, DATASEC variables, map definitions, line info).
//! Format: include/uapi/linux/btf.h and Documentation/bpf/btf.rst in the kernel.

use super::error::ElfError;

pub const KIND_INT: u32 = 1;
pub const KIND_PTR: u32 = 2;
pub const KIND_ARRAY: u32 = 3;
pub const KIND_STRUCT: u32 = 4;
pub const KIND_UNION: u32 = 5;
pub const KIND_ENUM: u32 = 6;
pub const KIND_FWD: u32 = 7;
pub const KIND_TYPEDEF: u32 = 8;
pub const KIND_VOLATILE: u32 = 9;
pub const KIND_CONST: u32 = 10;
pub const KIND_RESTRICT: u32 = 11;
pub const KIND_FUNC: u32 = 12;
pub const KIND_FUNC_PROTO: u32 = 13;
pub const KIND_VAR: u32 = 14;
pub const KIND_DATASEC: u32 = 15;
pub const KIND_FLOAT: u32 = 16;
pub const KIND_DECL_TAG: u32 = 17;
pub const KIND_TYPE_TAG: u32 = 18;
pub const KIND_ENUM64: u32 = 19;

/// Upper bound on the number of types decoded from one object (a hostile count cannot make
/// the decoder allocate without limit: every type needs at least 12 bytes of input anyway).
pub const MAX_TYPES: usize = 1 << 20;
/// Recursion/chain bound when resolving modifiers and sizes.
const MAX_CHAIN: usize = 64;
/// Bytes of type and member names decoded from one `.BTF` (every type owns its name, so a
/// long string named by many types would otherwise cost its length for each).
pub const MAX_NAME_BYTES: usize = 64 << 20;
/// Bytes of section and source file names decoded from one `.BTF.ext` line info (one per
/// record).
pub const MAX_LINE_INFO_NAME_BYTES: usize = 64 << 20;

/// A name in the BTF string section, borrowed (decoded only where it is used: an object's
/// BTF names thousands of kernel types the reader never looks at).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Name<'a>(&'a [u8]);

impl<'a> Name<'a> {
    /// The name as text (invalid UTF-8 replaced, as everywhere else in the reader).
    pub fn as_str(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq<str> for Name<'_> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Name<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl std::fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Member<'a> {
    pub name: Name<'a>,
    pub type_id: u32,
    /// Bit offset (bitfield size is ignored by the reader).
    pub offset: u32,
}

#[derive(Debug, Clone)]
pub struct SecVar {
    pub type_id: u32,
    pub offset: u32,
    pub size: u32,
}

#[derive(Debug, Clone)]
pub enum TypeData {
    None,
    /// ARRAY: element type, index type, number of elements.
    Array {
        elem: u32,
        nelems: u32,
    },
    /// Indexes in [`Btf::members`] (one list for all types: a vmlinux-sized BTF has many).
    Members(std::ops::Range<usize>),
    /// FUNC_PROTO parameters are not needed; ENUM values neither.
    /// Indexes in [`Btf::vars`].
    DataSec(std::ops::Range<usize>),
}

#[derive(Debug, Clone)]
pub struct Type<'a> {
    pub name: Name<'a>,
    pub kind: u32,
    pub vlen: u32,
    pub kflag: bool,
    /// `size` or `type`, depending on the kind.
    pub size_or_type: u32,
    pub data: TypeData,
    /// VAR / FUNC linkage (0 static, 1 global, 2 extern).
    pub linkage: u32,
}

#[derive(Debug, Clone)]
pub struct Btf<'a> {
    /// types[0] is the implicit `void`.
    pub types: Vec<Type<'a>>,
    pub members: Vec<Member<'a>>,
    pub vars: Vec<SecVar>,
}

struct Reader<'a> {
    data: &'a [u8],
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn u32_at(&self, off: usize) -> Option<u32> {
        let b: [u8; 4] = self.data.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }
}

fn bad(what: impl Into<String>) -> ElfError {
    ElfError::Btf(what.into())
}

/// A NUL-terminated string of the string section (without its NUL), charging the string's
/// length to `budget` and scanning no further than it allows. The outer error is the
/// exhausted budget, the inner one a bad offset.
fn bytes_within<'a>(
    strings: &'a [u8],
    off: u32,
    budget: &mut usize,
    what: &str,
    limit: usize,
) -> Result<Result<&'a [u8], ElfError>, ElfError> {
    let off = off as usize;
    let Some(rest) = strings.get(off..) else {
        return Ok(Err(bad(format!("string offset {off} is outside the string section"))));
    };
    let window = &rest[..rest.len().min(budget.saturating_add(1))];
    let end = match memchr::memchr(0, window) {
        Some(end) => end,
        None if window.len() == rest.len() => return Ok(Err(bad("unterminated string"))),
        None => return Err(bad(format!("{what} exceed {limit} bytes"))),
    };
    *budget -= end;
    Ok(Ok(&rest[..end]))
}

/// [`bytes_within`], decoded.
fn string_within(
    strings: &[u8],
    off: u32,
    budget: &mut usize,
    what: &str,
    limit: usize,
) -> Result<Result<String, ElfError>, ElfError> {
    Ok(bytes_within(strings, off, budget, what, limit)?.map(|b| String::from_utf8_lossy(b).into_owned()))
}

/// Detects the byte order from the BTF magic (0xeB9F).
fn byte_order(data: &[u8]) -> Result<bool, ElfError> {
    match data.get(0..2) {
        Some([0x9f, 0xeb]) => Ok(false),
        Some([0xeb, 0x9f]) => Ok(true),
        _ => Err(bad("bad magic")),
    }
}

impl<'a> Btf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Btf<'a>, ElfError> {
        let big_endian = byte_order(data)?;
        let r = Reader { data, big_endian };
        let hdr_len = r.u32_at(4).ok_or_else(|| bad("truncated header"))? as usize;
        let type_off = r.u32_at(8).ok_or_else(|| bad("truncated header"))? as usize;
        let type_len = r.u32_at(12).ok_or_else(|| bad("truncated header"))? as usize;
        let str_off = r.u32_at(16).ok_or_else(|| bad("truncated header"))? as usize;
        let str_len = r.u32_at(20).ok_or_else(|| bad("truncated header"))? as usize;
        if hdr_len < 24 {
            return Err(bad("header too short"));
        }
        let range = |off: usize, len: usize| -> Result<&[u8], ElfError> {
            let start = hdr_len.checked_add(off).ok_or_else(|| bad("offset overflow"))?;
            let end = start.checked_add(len).ok_or_else(|| bad("length overflow"))?;
            data.get(start..end).ok_or_else(|| bad("type or string section outside .BTF"))
        };
        let types_data = range(type_off, type_len)?;
        let strings = range(str_off, str_len)?;
        let tr = Reader { data: types_data, big_endian };
        let mut types = vec![Type {
            name: Name::default(),
            kind: 0,
            vlen: 0,
            kflag: false,
            size_or_type: 0,
            data: TypeData::None,
            linkage: 0,
        }];
        let mut members: Vec<Member<'a>> = Vec::new();
        let mut vars: Vec<SecVar> = Vec::new();
        let mut pos = 0usize;
        let mut name_budget = MAX_NAME_BYTES;
        let mut name_at = |off: u32| {
            bytes_within(strings, off, &mut name_budget, "type and member names", MAX_NAME_BYTES).map(|r| r.map(Name))
        };
        while pos < types_data.len() {
            if types.len() > MAX_TYPES {
                return Err(bad(format!("more than {MAX_TYPES} types")));
            }
            let trunc = || bad(format!("type {} is truncated", types.len()));
            let name_off = tr.u32_at(pos).ok_or_else(trunc)?;
            let info = tr.u32_at(pos + 4).ok_or_else(trunc)?;
            let size_or_type = tr.u32_at(pos + 8).ok_or_else(trunc)?;
            pos += 12;
            let kind = (info >> 24) & 0x1f;
            let vlen = info & 0xffff;
            let kflag = info >> 31 == 1;
            let name = name_at(name_off)??;
            let mut data_out = TypeData::None;
            let mut linkage = 0;
            let need = |n: usize| -> Result<(), ElfError> {
                if pos.checked_add(n).is_none_or(|e| e > types_data.len()) { Err(trunc()) } else { Ok(()) }
            };
            match kind {
                KIND_INT => {
                    need(4)?;
                    pos += 4;
                }
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_FLOAT
                | KIND_TYPE_TAG => {}
                KIND_FUNC => linkage = vlen,
                KIND_ARRAY => {
                    need(12)?;
                    let elem = tr.u32_at(pos).ok_or_else(trunc)?;
                    let nelems = tr.u32_at(pos + 8).ok_or_else(trunc)?;
                    pos += 12;
                    data_out = TypeData::Array { elem, nelems };
                }
                KIND_STRUCT | KIND_UNION => {
                    need(vlen as usize * 12)?;
                    let first = members.len();
                    for i in 0..vlen as usize {
                        let p = pos + i * 12;
                        let mname = name_at(tr.u32_at(p).ok_or_else(trunc)?)??;
                        let type_id = tr.u32_at(p + 4).ok_or_else(trunc)?;
                        let raw_off = tr.u32_at(p + 8).ok_or_else(trunc)?;
                        let offset = if kflag { raw_off & 0x00ff_ffff } else { raw_off };
                        members.push(Member { name: mname, type_id, offset });
                    }
                    pos += vlen as usize * 12;
                    data_out = TypeData::Members(first..members.len());
                }
                KIND_ENUM => {
                    need(vlen as usize * 8)?;
                    pos += vlen as usize * 8;
                }
                KIND_ENUM64 => {
                    need(vlen as usize * 12)?;
                    pos += vlen as usize * 12;
                }
                KIND_FUNC_PROTO => {
                    need(vlen as usize * 8)?;
                    pos += vlen as usize * 8;
                }
                KIND_VAR => {
                    need(4)?;
                    linkage = tr.u32_at(pos).ok_or_else(trunc)?;
                    pos += 4;
                }
                KIND_DATASEC => {
                    need(vlen as usize * 12)?;
                    let first = vars.len();
                    for i in 0..vlen as usize {
                        let p = pos + i * 12;
                        vars.push(SecVar {
                            type_id: tr.u32_at(p).ok_or_else(trunc)?,
                            offset: tr.u32_at(p + 4).ok_or_else(trunc)?,
                            size: tr.u32_at(p + 8).ok_or_else(trunc)?,
                        });
                    }
                    pos += vlen as usize * 12;
                    data_out = TypeData::DataSec(first..vars.len());
                }
                KIND_DECL_TAG => {
                    need(4)?;
                    pos += 4;
                }
                other => return Err(bad(format!("type {} has unknown kind {other}", types.len()))),
            }
            types.push(Type { name, kind, vlen, kflag, size_or_type, data: data_out, linkage });
        }
        Ok(Btf { types, members, vars })
    }

    /// The members of a STRUCT or UNION.
    pub fn members_of(&self, t: &Type<'a>) -> Option<&[Member<'a>]> {
        match &t.data {
            TypeData::Members(r) => self.members.get(r.clone()),
            _ => None,
        }
    }

    /// The variables of a DATASEC.
    pub fn vars_of(&self, t: &Type<'a>) -> Option<&[SecVar]> {
        match &t.data {
            TypeData::DataSec(r) => self.vars.get(r.clone()),
            _ => None,
        }
    }

    pub fn get(&self, id: u32) -> Option<&Type<'a>> {
        self.types.get(id as usize)
    }

    /// Follows typedefs and modifiers (const, volatile, restrict, type tags).
    pub fn skip_mods(&self, mut id: u32) -> Option<(u32, &Type<'a>)> {
        for _ in 0..MAX_CHAIN {
            let t = self.get(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => id = t.size_or_type,
                _ => return Some((id, t)),
            }
        }
        None
    }

    /// Size in bytes of a type, following modifiers and arrays.
    pub fn size_of(&self, id: u32) -> Option<u32> {
        let mut mult: u64 = 1;
        let mut id = id;
        for _ in 0..MAX_CHAIN {
            let (rid, t) = self.skip_mods(id)?;
            match t.kind {
                KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_FLOAT | KIND_DATASEC => {
                    return u32::try_from(mult.checked_mul(t.size_or_type as u64)?).ok();
                }
                KIND_PTR => return u32::try_from(mult.checked_mul(8)?).ok(),
                KIND_ARRAY => {
                    if let TypeData::Array { elem, nelems } = t.data {
                        mult = mult.checked_mul(nelems as u64)?;
                        id = elem;
                    } else {
                        return None;
                    }
                }
                KIND_VAR => id = t.size_or_type,
                _ => {
                    let _ = rid;
                    return None;
                }
            }
        }
        None
    }

    pub fn find_datasec(&self, name: &str) -> Option<&Type<'a>> {
        self.types.iter().find(|t| t.kind == KIND_DATASEC && t.name == name)
    }

    /// Names of struct types reachable by value from `id` (through members and arrays, not
    /// through pointers), plus `__kptr`-style type tags on pointer members.
    /// Each type is visited once: a struct that contains another by several paths (or, in a
    /// hostile object, itself) must not make the walk exponential. Returns the work done
    /// (types and members visited).
    pub fn embedded_names(&self, id: u32, out: &mut Vec<String>) -> usize {
        let mut seen = std::collections::BTreeSet::new();
        let mut steps = 0;
        self.embedded_inner(id, out, 0, &mut seen, &mut steps);
        steps
    }

    fn embedded_inner(
        &self,
        id: u32,
        out: &mut Vec<String>,
        depth: usize,
        seen: &mut std::collections::BTreeSet<u32>,
        steps: &mut usize,
    ) {
        *steps += 1;
        if depth > MAX_CHAIN {
            return;
        }
        let Some((rid, t)) = self.skip_mods(id) else { return };
        if !seen.insert(rid) {
            return;
        }
        match t.kind {
            KIND_STRUCT | KIND_UNION => {
                if !t.name.is_empty() {
                    out.push(t.name.to_string());
                }
                if let Some(ms) = self.members_of(t) {
                    for m in ms {
                        *steps += 1;
                        // a type tag directly on a pointer member (kptr, percpu_kptr, ...)
                        if let Some(mt) = self.get(m.type_id)
                            && mt.kind == KIND_PTR
                        {
                            let mut tid = mt.size_or_type;
                            for _ in 0..MAX_CHAIN {
                                match self.get(tid) {
                                    Some(tt) if tt.kind == KIND_TYPE_TAG => {
                                        *steps += 1;
                                        // once per tag type (`seen` holds no tag ids otherwise)
                                        if seen.insert(tid) {
                                            out.push(format!("type_tag:{}", tt.name));
                                        }
                                        tid = tt.size_or_type;
                                    }
                                    Some(tt) if matches!(tt.kind, KIND_CONST | KIND_VOLATILE | KIND_RESTRICT) => {
                                        tid = tt.size_or_type
                                    }
                                    _ => break,
                                }
                            }
                            continue;
                        }
                        self.embedded_inner(m.type_id, out, depth + 1, seen, steps);
                    }
                }
            }
            KIND_ARRAY => {
                if let TypeData::Array { elem, .. } = t.data {
                    self.embedded_inner(elem, out, depth + 1, seen, steps);
                }
            }
            _ => {}
        }
    }
}

/// One line-info record of BTF.ext.
#[derive(Debug, Clone)]
pub struct LineInfo {
    pub insn_off: u32,
    /// Shared by every record of the same file.
    pub file: std::sync::Arc<str>,
    pub line: u32,
}

/// Line info per ELF section name, from `.BTF.ext`.
pub fn parse_line_info(ext: &[u8], btf_strings_source: &[u8]) -> Result<Vec<(String, Vec<LineInfo>)>, ElfError> {
    let big_endian = byte_order(ext)?;
    let r = Reader { data: ext, big_endian };
    let hdr_len = r.u32_at(4).ok_or_else(|| bad("BTF.ext header truncated"))? as usize;
    let line_off = r.u32_at(16).ok_or_else(|| bad("BTF.ext header truncated"))? as usize;
    let line_len = r.u32_at(20).ok_or_else(|| bad("BTF.ext header truncated"))? as usize;
    let strings = btf_strings(btf_strings_source)?;
    let start = hdr_len.checked_add(line_off).ok_or_else(|| bad("BTF.ext offset overflow"))?;
    let end = start.checked_add(line_len).ok_or_else(|| bad("BTF.ext length overflow"))?;
    let sec = ext.get(start..end).ok_or_else(|| bad("BTF.ext line info outside the section"))?;
    if sec.is_empty() {
        return Ok(Vec::new());
    }
    let lr = Reader { data: sec, big_endian };
    let rec_size = lr.u32_at(0).ok_or_else(|| bad("line info truncated"))? as usize;
    if rec_size < 16 {
        return Err(bad("line info record too small"));
    }
    let mut pos = 4usize;
    let mut out = Vec::new();
    // section and file names together
    let mut file_budget = MAX_LINE_INFO_NAME_BYTES;
    // records name few distinct files: decode each once
    let mut files: std::collections::HashMap<u32, std::sync::Arc<str>> = std::collections::HashMap::new();
    while pos < sec.len() {
        let sec_off = lr.u32_at(pos).ok_or_else(|| bad("line info truncated"))?;
        let sec_name = string_within(strings, sec_off, &mut file_budget, "line info names", MAX_LINE_INFO_NAME_BYTES)??;
        let num = lr.u32_at(pos + 4).ok_or_else(|| bad("line info truncated"))? as usize;
        pos += 8;
        let total = num.checked_mul(rec_size).ok_or_else(|| bad("line info count overflow"))?;
        if pos.checked_add(total).is_none_or(|e| e > sec.len()) {
            return Err(bad("line info records outside the section"));
        }
        let mut recs = Vec::with_capacity(num);
        // (consecutive records mostly name the same file)
        let mut last: Option<(u32, std::sync::Arc<str>)> = None;
        for i in 0..num {
            let p = pos + i * rec_size;
            let insn_off = lr.u32_at(p).unwrap_or(0);
            let file_off = lr.u32_at(p + 4).unwrap_or(0);
            let file = match &last {
                Some((off, f)) if *off == file_off => f.clone(),
                _ => {
                    let f = match files.get(&file_off) {
                        Some(f) => f.clone(),
                        None => {
                            let f: std::sync::Arc<str> = string_within(
                                strings,
                                file_off,
                                &mut file_budget,
                                "line info file names",
                                MAX_LINE_INFO_NAME_BYTES,
                            )?
                            .unwrap_or_default()
                            .into();
                            files.insert(file_off, f.clone());
                            f
                        }
                    };
                    last = Some((file_off, f.clone()));
                    f
                }
            };
            let line_col = lr.u32_at(p + 12).unwrap_or(0);
            recs.push(LineInfo { insn_off, file, line: line_col >> 10 });
        }
        pos += total;
        out.push((sec_name, recs));
    }
    Ok(out)
}

/// The string section of a `.BTF` blob (BTF.ext names point into it).
fn btf_strings(btf: &[u8]) -> Result<&[u8], ElfError> {
    let big_endian = byte_order(btf)?;
    let r = Reader { data: btf, big_endian };
    let hdr_len = r.u32_at(4).ok_or_else(|| bad("truncated header"))? as usize;
    let str_off = r.u32_at(16).ok_or_else(|| bad("truncated header"))? as usize;
    let str_len = r.u32_at(20).ok_or_else(|| bad("truncated header"))? as usize;
    let start = hdr_len.checked_add(str_off).ok_or_else(|| bad("offset overflow"))?;
    btf.get(start..start.checked_add(str_len).ok_or_else(|| bad("length overflow"))?)
        .ok_or_else(|| bad("string section outside .BTF"))
}
