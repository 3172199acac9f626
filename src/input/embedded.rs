//! BPF objects embedded in other files: executables and shared libraries that carry their
//! BPF object as bytes (libbpf skeletons from `bpftool gen skeleton`, Go's `//go:embed` with
//! bpf2go, Rust's `include_bytes!` with libbpf-cargo or aya), static archives, or raw blobs.
//!
//! Finding them needs nothing but the bytes:
//!
//! 1. every `\x7fELF` occurrence whose ELF header says relocatable (`ET_REL`) for `EM_BPF`,
//!    in either byte order, is a candidate (the host file's own header is not: it is an
//!    executable or shared object, or for another machine);
//! 2. a candidate's extent is the furthest of its ELF header, its section header table
//!    (`e_shoff + e_shnum * e_shentsize`), every section's `sh_offset + sh_size` (except
//!    `SHT_NOBITS`) and its program header table, if any; every one must lie inside the file,
//!    or the candidate is reported as unreadable (a truncated file, or a corrupt object);
//! 3. scanning resumes after a candidate's extent, so bytes inside an object are never
//!    mistaken for another one; objects may sit at any offset (no alignment is assumed).
//!
//! Candidates are numbered from 1 in file order; the numbers are stable whether or not a
//! candidate could be read. The work is linear in the file size.
//!
//! # Naming
//!
//! A skeleton sets `s->name = "xxx_bpf"` and lists the object's map and program names as
//! C strings next to it (`s->maps[i].name`, `s->progs[i].name`); libbpf then opens the
//! object under that name, which prefixes its internal maps (`xxx_bpf.rodata` becomes
//! `xxx_bpf` cut to 8 characters + `.rodata`). [`skeleton_name`] looks for that name among the
//! NUL-terminated strings of the file outside every embedded object, and accepts a name only
//! if every program name of the object is among them too (whole, or as the tail of a longer
//! string, where the linker merged it), and the name is the only one that
//!
//! - gives exactly the internal map names found in the file, when the object has internal
//!   maps whose names depend on the object name (`.data`, `.rodata`, `.bss`, `.kconfig`), or
//! - when that leaves several (or there are no such maps), is the only C identifier
//!   immediately followed, as the next string, by one of the object's map or program names
//!   (the order in which compilers lay out the skeleton's string literals).
//!
//! Anything else (no skeleton, Go, Rust, raw bytes, an ambiguous file) gives no name.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::host::View;
use crate::elf;
use crate::model::{MapOrigin, Object};

/// At most this many embedded BPF objects (readable or not) are taken from one file; the
/// scan stops there with a warning.
pub const MAX_EMBEDDED_PER_FILE: usize = 4096;

/// Files larger than this are not read (1 GiB): an explicitly named file is an error, a file
/// met in a directory walk is skipped (with a warning if it is an ELF file).
pub const MAX_SCAN_SIZE: u64 = 1 << 30;

/// Longest string considered as a skeleton name.
const MAX_NAME_LEN: usize = 128;

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const SHT_NULL: u32 = 0;
const SHT_NOBITS: u32 = 8;

/// One `\x7fELF` occurrence whose header says relocatable EM_BPF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// 1-based, in file order.
    pub index: usize,
    /// Offset of the object's first byte in the file.
    pub offset: usize,
    /// The object's size in bytes, or why it cannot be determined within the file.
    pub size: Result<usize, String>,
}

/// What [`scan`] found in one file.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub candidates: Vec<Candidate>,
    /// Where the scan stopped at [`MAX_EMBEDDED_PER_FILE`] (the offset of the first candidate
    /// not taken), if it did: the rest of the file is not read.
    pub capped: Option<usize>,
}

/// Finds every embedded BPF ELF object candidate in what was read of a file (see the module
/// documentation): an object lies whole inside one span.
pub fn scan(view: &View) -> Scan {
    let mut s = Scan::default();
    for span in &view.spans {
        let bytes = span.bytes;
        let mut from = 0;
        while let Some(pos) = find_magic(bytes, from) {
            let rest = &bytes[pos..];
            let Some(hdr) = bpf_header(rest) else {
                from = pos + 1;
                continue;
            };
            if s.candidates.len() == MAX_EMBEDDED_PER_FILE {
                s.capped = Some(span.offset + pos);
                return s;
            }
            let size = extent(rest, hdr);
            from = match &size {
                Ok(n) => pos + (*n).max(ELF_MAGIC.len()),
                Err(_) => pos + ELF_MAGIC.len(),
            };
            s.candidates.push(Candidate { index: s.candidates.len() + 1, offset: span.offset + pos, size });
        }
    }
    s
}

/// The next `\x7fELF` at or after `from` (Horspool: the byte under the window's last
/// position says how far the window can move, up to 4 bytes at a time).
fn find_magic(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(&last) = b.get(i + 3) {
        let shift = match last {
            b'F' if b[i..i + 3] == ELF_MAGIC[..3] => return Some(i),
            b'L' => 1,
            b'E' => 2,
            0x7f => 3,
            _ => 4,
        };
        i += shift;
    }
    None
}

#[derive(Debug, Clone, Copy)]
struct Header {
    is64: bool,
    le: bool,
}

/// Reads fixed-size integers at offsets of one byte slice, in one byte order.
struct Rd<'a> {
    b: &'a [u8],
    le: bool,
}

impl Rd<'_> {
    fn bytes<const N: usize>(&self, o: usize) -> Option<[u8; N]> {
        self.b.get(o..o.checked_add(N)?)?.try_into().ok()
    }
    fn u16(&self, o: usize) -> Option<u16> {
        let a = self.bytes::<2>(o)?;
        Some(if self.le { u16::from_le_bytes(a) } else { u16::from_be_bytes(a) })
    }
    fn u32(&self, o: usize) -> Option<u32> {
        let a = self.bytes::<4>(o)?;
        Some(if self.le { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) })
    }
    fn u64(&self, o: usize) -> Option<u64> {
        let a = self.bytes::<8>(o)?;
        Some(if self.le { u64::from_le_bytes(a) } else { u64::from_be_bytes(a) })
    }
    /// A 32-bit field in ELF32, a 64-bit one in ELF64.
    fn word(&self, is64: bool, o32: usize, o64: usize) -> Option<u64> {
        if is64 { self.u64(o64) } else { self.u32(o32).map(u64::from) }
    }
}

/// The identification and the fields common to ELF32 and ELF64 (e_type, e_machine,
/// e_version): a relocatable object for EM_BPF.
fn bpf_header(b: &[u8]) -> Option<Header> {
    if b.len() < 24 || !elf::uapi::is_bpf_object(b) {
        return None;
    }
    let is64 = match b[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let le = match b[5] {
        1 => true,
        2 => false,
        _ => return None,
    };
    if b[6] != 1 {
        return None;
    }
    let r = Rd { b, le };
    (r.u32(20)? == 1).then_some(Header { is64, le })
}

/// The object's size, from its headers, checked against `b` (the rest of the file).
fn extent(b: &[u8], h: Header) -> Result<usize, String> {
    let avail = b.len() as u64;
    let past_end = |what: String, end: u64| {
        format!(
            "{what} ends at +{end:#x}, past the end of the file ({avail:#x} bytes left): the file is truncated or the object corrupt"
        )
    };
    let r = Rd { b, le: h.le };
    let ehdr_size: u64 = if h.is64 { 64 } else { 52 };
    if avail < ehdr_size {
        return Err(past_end("the ELF header".into(), ehdr_size));
    }
    let cut = || "the ELF header is cut off".to_string();
    let phoff = r.word(h.is64, 28, 32).ok_or_else(cut)?;
    let shoff = r.word(h.is64, 32, 40).ok_or_else(cut)?;
    let (o_eh, o_phent, o_phnum, o_shent, o_shnum) = if h.is64 { (52, 54, 56, 58, 60) } else { (40, 42, 44, 46, 48) };
    let ehsize = u64::from(r.u16(o_eh).ok_or_else(cut)?);
    let phentsize = u64::from(r.u16(o_phent).ok_or_else(cut)?);
    let phnum = u64::from(r.u16(o_phnum).ok_or_else(cut)?);
    let shentsize = u64::from(r.u16(o_shent).ok_or_else(cut)?);
    let shnum_field = u64::from(r.u16(o_shnum).ok_or_else(cut)?);

    if shoff == 0 {
        return Err("no section header table (e_shoff is 0)".into());
    }
    let want = if h.is64 { 64 } else { 40 };
    if shentsize != want {
        return Err(format!("section header entry size {shentsize}, expected {want}"));
    }
    // Section header i: (sh_type, sh_offset, sh_size).
    let section = |i: u64| -> Option<(u32, u64, u64)> {
        let base = usize::try_from(shoff.checked_add(i.checked_mul(shentsize)?)?).ok()?;
        let ty = r.u32(base + 4)?;
        let (off, size) = if h.is64 {
            (r.u64(base + 24)?, r.u64(base + 32)?)
        } else {
            (u64::from(r.u32(base + 16)?), u64::from(r.u32(base + 20)?))
        };
        Some((ty, off, size))
    };
    // More than 0xff00 sections: the count is in section 0's sh_size.
    let shnum = if shnum_field == 0 {
        match section(0) {
            Some((_, _, n)) => n,
            None => return Err(past_end("the section header table".into(), shoff.saturating_add(shentsize))),
        }
    } else {
        shnum_field
    };
    let table_end = shnum.checked_mul(shentsize).and_then(|n| n.checked_add(shoff)).unwrap_or(u64::MAX);
    if table_end > avail {
        return Err(past_end(format!("the section header table ({shnum} entries)"), table_end));
    }
    if ehsize > avail {
        return Err(past_end(format!("the ELF header (e_ehsize {ehsize})"), ehsize));
    }
    let mut end = ehsize.max(ehdr_size).max(table_end);
    for i in 0..shnum {
        let (ty, off, size) = section(i).expect("inside the table checked above");
        if ty == SHT_NULL || ty == SHT_NOBITS {
            continue;
        }
        let e = off.saturating_add(size);
        if e > avail {
            return Err(past_end(format!("section {i}"), e));
        }
        end = end.max(e);
    }
    if phoff != 0 && phnum != 0 {
        let e = phnum.checked_mul(phentsize).and_then(|n| n.checked_add(phoff)).unwrap_or(u64::MAX);
        if e > avail {
            return Err(past_end("the program header table".into(), e));
        }
        end = end.max(e);
    }
    if end > elf::MAX_OBJECT_SIZE {
        return Err(format!("{end} bytes, more than the {} bytes bpfcap reads as one object", elf::MAX_OBJECT_SIZE));
    }
    usize::try_from(end).map_err(|_| "too large for this platform".to_string())
}

/// A copy of `data` that starts 8-byte aligned: the ELF reader reads its structures in place
/// and needs them aligned, which an object embedded at an arbitrary offset is not.
pub fn aligned_copy(data: &[u8]) -> AlignedBytes {
    let mut buf = vec![0u8; data.len() + 8];
    let start = match buf.as_ptr().align_offset(8) {
        s if s < 8 => s,
        _ => 0,
    };
    buf[start..start + data.len()].copy_from_slice(data);
    AlignedBytes { buf, start, len: data.len() }
}

/// Bytes at an 8-byte-aligned address (see [`aligned_copy`]).
pub struct AlignedBytes {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl std::ops::Deref for AlignedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

/// The NUL-terminated strings of a file (preceded by a NUL too, so whole C strings), made of
/// the characters of C identifiers and '.', outside given byte ranges, in file order.
pub struct Strings<'a> {
    list: Vec<(usize, &'a str)>,
    set: HashSet<&'a str>,
    /// Every string reversed, sorted: a tail of a string is a prefix of its reverse, found by
    /// binary search. Built on the first lookup that needs it.
    reversed: std::sync::OnceLock<Vec<Vec<u8>>>,
}

impl<'a> Strings<'a> {
    /// The strings of what was read of a file (`view`); `exclude`: byte ranges (start, end)
    /// of the file to leave out, sorted by start.
    pub fn new(view: &View<'a>, exclude: &[(usize, usize)]) -> Self {
        let is_tok = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'.';
        let mut list = Vec::new();
        for (span, gap) in view.outside(exclude) {
            let (gs, g) = (gap.offset, gap.bytes);
            // a span (a section) starts a string where its first byte is one; elsewhere a
            // string starts after a NUL
            let mut j = if gs == span.offset && span.offset > 0 { 0 } else { 1 };
            while j < g.len() {
                if !(is_tok(g[j]) && (j == 0 || g[j - 1] == 0)) {
                    j += 1;
                    continue;
                }
                let st = j;
                while j < g.len() && is_tok(g[j]) {
                    j += 1;
                }
                if j < g.len() && g[j] == 0 && j - st <= MAX_NAME_LEN {
                    let s = std::str::from_utf8(&g[st..j]).expect("ASCII");
                    list.push((gs + st, s));
                }
            }
        }
        let set = list.iter().map(|&(_, s)| s).collect();
        Strings { list, set, reversed: std::sync::OnceLock::new() }
    }

    pub fn contains(&self, s: &str) -> bool {
        self.set.contains(s)
    }

    /// Whether `s` is a string of the file, whole or as the tail of a longer one: linkers
    /// merge a string literal into another that ends with it (`block_rq_issue` into
    /// `btf_trace_block_rq_issue`), so that its pointer points into the middle of the other.
    pub fn contains_as_tail(&self, s: &str) -> bool {
        if self.contains(s) {
            return true;
        }
        let reversed = self.reversed.get_or_init(|| {
            let mut v: Vec<Vec<u8>> = self.set.iter().map(|x| x.bytes().rev().collect()).collect();
            v.sort_unstable();
            v
        });
        let key: Vec<u8> = s.bytes().rev().collect();
        // the first reversed string not below the key starts with it, if any does
        let at = reversed.partition_point(|x| x.as_slice() < key.as_slice());
        reversed.get(at).is_some_and(|x| x.starts_with(&key))
    }

    /// The strings that come right after each other (`a\0b\0`), as (a, b).
    fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.list.windows(2).filter(|w| w[0].0 + w[0].1.len() + 1 == w[1].0).map(|w| (w[0].1, w[1].1))
    }
}

fn is_c_identifier(s: &str) -> bool {
    let mut c = s.bytes();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == b'_') && c.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Work the skeleton-name search may do in one file, per byte of the file (every string,
/// pair of strings or name it looks at costs one), and at least [`MIN_NAMING_WORK`]. Real
/// files take a small part of it; a file made to be slow (thousands of objects over a million
/// strings) runs out, and its remaining objects stay unnamed (`path#N`), with a warning: the
/// search is linear in the file whatever it holds.
const NAMING_WORK_PER_BYTE: usize = 4;
const MIN_NAMING_WORK: usize = 1 << 20;

/// The search for libbpf skeleton names in one file (see the module documentation): the
/// file's strings, indexed once, and the work left.
pub struct Namer<'a> {
    strings: Strings<'a>,
    /// The pairs of strings that come right after each other (`a\0b\0`), sorted by the first
    /// (`by_first`) and by the second (`by_second`); made on first use.
    by_first: Option<Vec<(&'a str, &'a str)>>,
    by_second: Option<Vec<(&'a str, &'a str)>>,
    /// Per set of sections whose internal map names carry the object name: the C identifiers
    /// under which every one of those names is a string of the file.
    by_maps: HashMap<Vec<String>, Vec<&'a str>>,
    work: usize,
}

/// The naming work of a file ran out ([`Namer::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfWork;

impl<'a> Namer<'a> {
    /// `exclude`: the byte ranges of the embedded objects (and of the part of the file not
    /// scanned), sorted by start.
    pub fn new(view: &View<'a>, exclude: &[(usize, usize)]) -> Self {
        let strings = Strings::new(view, exclude);
        let work = view.len().saturating_mul(NAMING_WORK_PER_BYTE).max(MIN_NAMING_WORK);
        Namer { strings, by_first: None, by_second: None, by_maps: HashMap::new(), work }
    }

    /// The pairs of strings whose first is `s` (`after`: the strings that come right after
    /// it), or whose second is `s` (not `after`: those right before it).
    fn neighbours(&mut self, s: &str, after: bool) -> &[(&'a str, &'a str)] {
        let strings = &self.strings;
        let pairs = if after { &mut self.by_first } else { &mut self.by_second };
        let pairs = pairs.get_or_insert_with(|| {
            let mut v: Vec<(&str, &str)> = strings.pairs().collect();
            if after {
                v.sort_unstable()
            } else {
                v.sort_unstable_by_key(|(a, b)| (*b, *a))
            }
            v
        });
        fn key<'k>(p: &(&'k str, &'k str), after: bool) -> &'k str {
            if after { p.0 } else { p.1 }
        }
        let lo = pairs.partition_point(|p| key(p, after) < s);
        let hi = lo + pairs[lo..].partition_point(|p| key(p, after) == s);
        &pairs[lo..hi]
    }

    /// The C identifiers `x` of the file under which every internal map name of `prefixed` is
    /// a string of the file too (`x` cut to the map name's prefix, then the section's name:
    /// [`elf::internal_map_name`]).
    fn named_by_maps(&self, prefixed: &[String]) -> Vec<&'a str> {
        // per section: the name's fixed tail, the prefix length, and the prefixes in the file
        let per_section: Vec<(usize, HashSet<&str>)> = prefixed
            .iter()
            .map(|sec| {
                let tail = elf::internal_map_name("", sec);
                let longest = elf::internal_map_name(&"x".repeat(2 * MAX_NAME_LEN), sec).len() - tail.len();
                let prefixes = self
                    .strings
                    .set
                    .iter()
                    .filter_map(|s| s.strip_suffix(tail.as_str()))
                    .filter(|p| p.len() <= longest)
                    .collect();
                (longest, prefixes)
            })
            .collect();
        self.strings
            .set
            .iter()
            .copied()
            .filter(|x| {
                is_c_identifier(x)
                    && per_section.iter().all(|(longest, prefixes)| prefixes.contains(&x[..x.len().min(*longest)]))
            })
            .collect()
    }

    fn spend(&mut self, n: usize) -> Result<(), OutOfWork> {
        self.work = self.work.checked_sub(n).ok_or(OutOfWork)?;
        Ok(())
    }

    /// The libbpf skeleton name of an embedded object, if the file names it unambiguously
    /// (see the module documentation).
    pub fn name(&mut self, obj: &Object) -> Result<Option<String>, OutOfWork> {
        self.spend(obj.programs.len() + obj.maps.len())?;
        if obj.programs.is_empty() || !obj.programs.iter().all(|p| self.strings.contains_as_tail(&p.name)) {
            return Ok(None);
        }
        // Internal maps whose names carry the object name, by the section libbpf names them after.
        let mut prefixed: Vec<String> = obj
            .maps
            .iter()
            .filter(|m| matches!(m.origin, MapOrigin::GlobalData | MapOrigin::Kconfig))
            .map(|m| m.section.clone())
            .filter(|sec| elf::internal_map_name("", sec) != elf::internal_map_name("x", sec))
            .collect();
        prefixed.sort();
        prefixed.dedup();
        let fixed: HashSet<&str> = obj
            .programs
            .iter()
            .map(|p| p.name.as_str())
            .chain(
                obj.maps
                    .iter()
                    .filter(|m| {
                        !(matches!(m.origin, MapOrigin::GlobalData | MapOrigin::Kconfig)
                            && prefixed.contains(&m.section))
                    })
                    .map(|m| m.name.as_str()),
            )
            .collect();
        let names_under =
            |x: &str| -> Vec<String> { prefixed.iter().map(|sec| elf::internal_map_name(x, sec)).collect() };
        let unique = |set: BTreeSet<&str>| (set.len() == 1).then(|| set.into_iter().next().expect("one").to_string());

        if prefixed.is_empty() {
            // the C identifier right before one of the object's own names
            let mut adjacent = BTreeSet::new();
            for n in &fixed {
                let before: Vec<&str> = self.neighbours(n, false).iter().map(|(a, _)| *a).collect();
                self.spend(before.len() + 1)?;
                adjacent.extend(before.into_iter().filter(|x| is_c_identifier(x) && !fixed.contains(x)));
                if adjacent.len() > 1 {
                    return Ok(None);
                }
            }
            return Ok(unique(adjacent));
        }
        let raw = match self.by_maps.get(&prefixed) {
            Some(v) => v.clone(),
            None => {
                self.spend(self.strings.set.len() * (prefixed.len() + 1))?;
                let v = self.named_by_maps(&prefixed);
                self.by_maps.insert(prefixed.clone(), v.clone());
                v
            }
        };
        self.spend(raw.len())?;
        let by_maps: BTreeSet<&str> = raw.into_iter().filter(|x| !fixed.contains(x)).collect();
        if by_maps.len() <= 1 {
            return Ok(unique(by_maps));
        }
        // several: the one followed, as the next string, by one of the object's own names
        let mut adjacent = BTreeSet::new();
        for x in &by_maps {
            let after: Vec<&str> = self.neighbours(x, true).iter().map(|(_, b)| *b).collect();
            self.spend(after.len() + 1)?;
            let own = names_under(x);
            if after.iter().any(|next| fixed.contains(next) || own.iter().any(|n| n == next)) {
                adjacent.insert(*x);
                if adjacent.len() > 1 {
                    return Ok(None);
                }
            }
        }
        Ok(unique(adjacent))
    }
}

/// One embedded object that was read.
#[derive(Debug, Clone)]
pub struct EmbeddedObject {
    /// 1-based index among the file's candidates.
    pub index: usize,
    pub offset: usize,
    pub size: usize,
    /// The skeleton name, when one was found (it is then also the object's name).
    pub skeleton_name: Option<String>,
    /// How inputs name it: `path#name` when a skeleton name was found and no other object
    /// in the file has it, `path#N` otherwise.
    pub display: String,
    pub object: Object,
}

/// Everything [`extract`] found in one file.
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    pub objects: Vec<EmbeddedObject>,
    /// Candidates seen, readable or not.
    pub candidates: usize,
    /// One line per candidate that could not be read, and one if the scan was capped.
    pub warnings: Vec<String>,
    /// The byte ranges (start, end) of the objects read and of the part not scanned, sorted:
    /// what is not the executable's own.
    pub ranges: Vec<(usize, usize)>,
}

/// Scans `bytes` (the whole contents of the file `path`) and reads every embedded BPF object;
/// see [`extract_view`].
pub fn extract(path: &str, bytes: &[u8]) -> Extracted {
    extract_view(path, &View::whole(bytes))
}

/// Scans what was read of the file `path` and reads every embedded BPF object. Objects are
/// named by their skeleton name, or `<file stem>_<N>` (see [`crate::elf::object_name`] for the
/// stem).
pub fn extract_view(path: &str, view: &View) -> Extracted {
    let scan = scan(view);
    let mut out = Extracted { candidates: scan.candidates.len(), ..Default::default() };
    let stem = elf::object_name(path);
    let mut ranges = Vec::new();
    for c in &scan.candidates {
        let size = match &c.size {
            Ok(n) => *n,
            Err(why) => {
                out.warnings.push(format!(
                    "{path}#{}: embedded BPF object at offset {:#x} is unreadable: {why}",
                    c.index, c.offset
                ));
                continue;
            }
        };
        ranges.push((c.offset, c.offset + size));
        let data = aligned_copy(view.get(c.offset..c.offset + size).expect("a candidate lies inside a span"));
        match elf::read_object(&data, &format!("{stem}_{}", c.index)) {
            Ok(object) => out.objects.push(EmbeddedObject {
                index: c.index,
                offset: c.offset,
                size,
                skeleton_name: None,
                display: String::new(),
                object,
            }),
            Err(e) => out.warnings.push(format!(
                "{path}#{}: embedded BPF object at offset {:#x} ({size} bytes) is unreadable: {e}",
                c.index, c.offset
            )),
        }
    }
    if let Some(stop) = scan.capped {
        // the rest of the file was not scanned: its bytes are no skeleton's strings
        ranges.push((stop, view.spans.last().map_or(stop, |s| s.end())));
        out.warnings.push(format!(
            "{path}: stopped after {MAX_EMBEDDED_PER_FILE} embedded BPF objects (the per-file limit); the rest were not read"
        ));
    }
    if !out.objects.is_empty() {
        let count = out.objects.len();
        let mut namer = Namer::new(view, &ranges);
        for (i, o) in out.objects.iter_mut().enumerate() {
            let name = match namer.name(&o.object) {
                Ok(name) => name,
                Err(OutOfWork) => {
                    out.warnings.push(format!(
                        "{path}: skeleton names not searched for the last {} of its {} embedded objects: its strings take more work than the limit (the objects are named path#N)",
                        count - i,
                        count
                    ));
                    break;
                }
            };
            if let Some(name) = name {
                // The name changes internal map names: read the object again under it.
                let data = aligned_copy(view.get(o.offset..o.offset + o.size).expect("read above"));
                if let Ok(object) = elf::read_object(&data, &name) {
                    o.object = object;
                    o.skeleton_name = Some(name);
                }
            }
        }
    }
    out.ranges = ranges;
    let names: Vec<Option<String>> = out.objects.iter().map(|o| o.skeleton_name.clone()).collect();
    for o in &mut out.objects {
        o.display = match &o.skeleton_name {
            Some(n) if names.iter().filter(|m| m.as_ref() == Some(n)).count() == 1 => format!("{path}#{n}"),
            _ => format!("{path}#{}", o.index),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::uapi::{EM_BPF, ET_REL};

    #[test]
    fn strings_merged_into_a_longer_one_are_found_as_tails() {
        let bytes = b"\0btf_trace_block_rq_issue\0biolatency_bpf\0";
        let s = Strings::new(&View::whole(bytes), &[]);
        assert!(s.contains("biolatency_bpf") && !s.contains("block_rq_issue"));
        assert!(s.contains_as_tail("block_rq_issue"));
        assert!(s.contains_as_tail("btf_trace_block_rq_issue"));
        assert!(!s.contains_as_tail("block_rq"), "a tail ends where the string ends");
    }

    /// A minimal ELF64 relocatable header for EM_BPF with `shnum` sections, table at `shoff`.
    fn header(le: bool, shoff: u64, shnum: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(ELF_MAGIC);
        h[4] = 2;
        h[5] = if le { 1 } else { 2 };
        h[6] = 1;
        let put16 = |h: &mut Vec<u8>, o: usize, v: u16| {
            h[o..o + 2].copy_from_slice(&if le { v.to_le_bytes() } else { v.to_be_bytes() })
        };
        put16(&mut h, 16, ET_REL);
        put16(&mut h, 18, EM_BPF);
        h[20..24].copy_from_slice(&if le { 1u32.to_le_bytes() } else { 1u32.to_be_bytes() });
        h[40..48].copy_from_slice(&if le { shoff.to_le_bytes() } else { shoff.to_be_bytes() });
        put16(&mut h, 52, 64);
        put16(&mut h, 58, 64);
        put16(&mut h, 60, shnum);
        h
    }

    #[test]
    fn extent_covers_header_table_and_sections() {
        for le in [true, false] {
            // Header, one section's data (16 bytes at 64), then two section headers at 80.
            let mut o = header(le, 80, 2);
            o.extend_from_slice(&[0xaa; 16]);
            o.extend_from_slice(&[0; 64]); // SHT_NULL
            let mut sh = vec![0u8; 64];
            let w32 = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
            let w64 = |v: u64| if le { v.to_le_bytes() } else { v.to_be_bytes() };
            sh[4..8].copy_from_slice(&w32(1));
            sh[24..32].copy_from_slice(&w64(64));
            sh[32..40].copy_from_slice(&w64(16));
            o.extend_from_slice(&sh);
            let mut file = b"junk\x7fELF\x7f".to_vec();
            file.extend_from_slice(&o);
            file.extend_from_slice(b"trailing");
            let s = scan(&View::whole(&file));
            assert_eq!(s.candidates, vec![Candidate { index: 1, offset: 9, size: Ok(o.len()) }]);
            // Cut inside the section header table: unreadable, not a panic.
            let s = scan(&View::whole(&file[..9 + 100]));
            assert_eq!(s.candidates.len(), 1);
            assert!(s.candidates[0].size.as_ref().unwrap_err().contains("past the end"), "{:?}", s.candidates[0]);
        }
    }

    #[test]
    fn section_beyond_the_file_is_reported() {
        let mut o = header(true, 64, 2);
        o.extend_from_slice(&[0; 64]);
        let mut sh = vec![0u8; 64];
        sh[4..8].copy_from_slice(&1u32.to_le_bytes());
        sh[24..32].copy_from_slice(&0x1000u64.to_le_bytes());
        sh[32..40].copy_from_slice(&16u64.to_le_bytes());
        o.extend_from_slice(&sh);
        let s = scan(&View::whole(&o));
        assert!(s.candidates[0].size.as_ref().unwrap_err().starts_with("section 1 ends at +0x1010"));
    }

    #[test]
    fn host_headers_and_garbage_are_not_candidates() {
        let mut exec = header(true, 0, 0);
        exec[16] = 2; // ET_EXEC
        assert!(scan(&View::whole(&exec)).candidates.is_empty());
        let mut other = header(true, 0, 0);
        other[18] = 62; // EM_X86_64
        assert!(scan(&View::whole(&other)).candidates.is_empty());
        assert!(scan(&View::whole(b"\x7fEL")).candidates.is_empty());
        assert!(scan(&View::whole(b"")).candidates.is_empty());
        // A header with no section header table is a candidate, but unreadable.
        let s = scan(&View::whole(&header(true, 0, 0)));
        assert_eq!(s.candidates.len(), 1);
        assert!(s.candidates[0].size.is_err());
    }

    #[test]
    fn the_scan_stops_at_the_per_file_limit() {
        let one = header(true, 0, 0);
        let blob: Vec<u8> = std::iter::repeat_n(&one[..], MAX_EMBEDDED_PER_FILE + 3).flatten().copied().collect();
        let s = scan(&View::whole(&blob));
        assert!(s.capped.is_some());
        assert_eq!(s.candidates.len(), MAX_EMBEDDED_PER_FILE);
        assert_eq!(s.candidates.last().unwrap().index, MAX_EMBEDDED_PER_FILE);
        let e = extract("blob", &blob);
        assert!(e.objects.is_empty());
        assert_eq!(e.warnings.len(), MAX_EMBEDDED_PER_FILE + 1);
        assert!(e.warnings.last().unwrap().contains("per-file limit"));
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let mut h = header(true, u64::MAX - 8, 0xffff);
        h.extend_from_slice(&[0; 64]);
        assert!(scan(&View::whole(&h)).candidates[0].size.is_err());
    }

    #[test]
    fn strings_are_whole_nul_terminated_runs_outside_exclusions() {
        let b = b"x\0abc\0de.f\0g h\0xyz\0inside\0tail";
        let s = Strings::new(&View::whole(b), &[]);
        let all: Vec<&str> = s.list.iter().map(|&(_, t)| t).collect();
        assert_eq!(all, ["abc", "de.f", "xyz", "inside"]);
        assert_eq!(s.pairs().collect::<Vec<_>>(), [("abc", "de.f"), ("xyz", "inside")]);
        let at = b.windows(6).position(|w| w == b"inside").unwrap();
        let s = Strings::new(&View::whole(b), &[(at, at + 7)]);
        assert!(!s.contains("inside") && s.contains("xyz"));
        assert_eq!(s.pairs().collect::<Vec<_>>(), [("abc", "de.f")]);
    }

    #[test]
    fn magic_is_found_everywhere() {
        for pad in 0..9 {
            for junk in [0u8, 0x7f, b'E', b'L', b'F'] {
                let mut b = vec![junk; pad];
                b.extend_from_slice(b"\x7fELF");
                b.extend_from_slice(&vec![junk; pad]);
                b.extend_from_slice(b"\x7fELF");
                let first = (0..b.len()).find(|&i| b[i..].starts_with(ELF_MAGIC)).unwrap();
                assert_eq!(find_magic(&b, 0), Some(first), "{pad} {junk}");
                let second = (first + 1..b.len()).find(|&i| b[i..].starts_with(ELF_MAGIC)).unwrap();
                assert_eq!(find_magic(&b, first + 1), Some(second), "{pad} {junk}");
                assert_eq!(find_magic(&b, second + 1), None);
            }
        }
        assert_eq!(find_magic(b"\x7fEL", 0), None);
        assert_eq!(find_magic(b"", 0), None);
    }

    #[test]
    fn identifiers() {
        assert!(is_c_identifier("socket_bpf") && is_c_identifier("_x1"));
        assert!(!is_c_identifier("1x") && !is_c_identifier("a.b") && !is_c_identifier(""));
    }

    #[test]
    fn aligned_copies_are_aligned() {
        let data: Vec<u8> = (0..100u8).collect();
        for off in 0..9 {
            let c = aligned_copy(&data[off..]);
            assert_eq!(c.as_ptr() as usize % 8, 0);
            assert_eq!(&*c, &data[off..]);
        }
    }
}
