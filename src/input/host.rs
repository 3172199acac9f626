//! What of a file is read to find the BPF objects in it (`docs/limits.md`, "Reading less").
//!
//! - A file found in a directory whose first bytes ([`HEAD_LEN`]) begin neither an ELF file
//!   nor an `ar` archive costs that one small read: it is no object and holds none where a
//!   toolchain puts one. (A file named on the command line is searched whole whatever it is:
//!   a raw blob is found when it is asked for.)
//! - A BPF object and an `ar` archive are read whole.
//! - Any other ELF file (an executable, a library, a host object) is read by its section
//!   headers: only the sections that can carry an embedded object ([`Carriers`]: each
//!   loader's `embedded_in`, rules/loader/*.toml) and the sections loader detection reads
//!   ([`super::loader_hint::SECTIONS`]). A file whose section headers cannot be read (stripped,
//!   corrupt, cut off) is read whole, with a note saying so.
//!
//! The result is a [`View`]: the spans of the file that were read, at their offsets in the
//! file, and the sections among them by name. Offsets stay the file's, so an object found in
//! a span is named by where it is in the file.

use std::io::Read;
use std::ops::Range;

use object::read::elf::{FileHeader, SectionHeader};
use object::read::{ReadCache, ReadRef};

use crate::rules::Rules;

/// How many bytes of a file's start say what it is.
pub const HEAD_LEN: usize = 64;

/// What a file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A relocatable ELF object for EM_BPF: read whole.
    BpfObject,
    /// Another ELF file: read by its section headers.
    Elf,
    /// A static archive (`!<arch>\n`): its members are objects; read whole.
    Archive,
    /// Anything else.
    Other,
}

const ELF_MAGIC: &[u8] = b"\x7fELF";
const AR_MAGIC: &[u8] = b"!<arch>\n";

impl Kind {
    /// What `head` (the first up to [`HEAD_LEN`] bytes of a file) says the file is.
    pub fn of(head: &[u8]) -> Kind {
        if crate::elf::uapi::is_bpf_object(head) {
            Kind::BpfObject
        } else if head.starts_with(ELF_MAGIC) {
            Kind::Elf
        } else if head.starts_with(AR_MAGIC) {
            Kind::Archive
        } else {
            Kind::Other
        }
    }
}

/// The first up to `n` bytes of `r` (fewer only at its end): [`HEAD_LEN`] say what a file
/// is.
pub fn read_head(r: &mut impl Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// The section names under which toolchains put the objects a loader embeds, from the rules:
/// a name matches itself and its dotted extensions (`.rodata` matches `.rodata.str1.1`).
#[derive(Debug, Clone)]
pub struct Carriers {
    names: Vec<String>,
}

impl Carriers {
    /// Every loader's `embedded_in` and `strings_in`, and the sections loader detection reads.
    pub fn of(rules: &Rules) -> Carriers {
        let mut names: Vec<String> = rules
            .loaders
            .iter()
            .flat_map(|l| l.detect.embedded_in.iter().chain(&l.detect.strings_in).cloned())
            .collect();
        names.extend(super::loader_hint::SECTIONS.iter().map(|s| s.to_string()));
        names.sort();
        names.dedup();
        Carriers { names }
    }

    /// Whether a section of this name is read.
    pub fn holds(&self, section: &[u8]) -> bool {
        self.names.iter().any(|n| {
            let n = n.as_bytes();
            section.starts_with(n) && (section.len() == n.len() || section[n.len()] == b'.')
        })
    }
}

/// A run of a file's bytes, at its offset in the file.
#[derive(Debug, Clone, Copy)]
pub struct Span<'a> {
    pub offset: usize,
    pub bytes: &'a [u8],
}

impl Span<'_> {
    pub fn end(&self) -> usize {
        self.offset + self.bytes.len()
    }
}

/// What was read of one file: its spans (sorted by offset, disjoint) and, where the file was
/// read by its section headers, its sections among them by name.
#[derive(Debug, Clone)]
pub struct View<'a> {
    pub spans: Vec<Span<'a>>,
    /// `None`: the file was read whole, and its sections are found by parsing it.
    sections: Option<Vec<(&'a [u8], &'a [u8])>>,
}

impl<'a> View<'a> {
    /// A file read whole.
    pub fn whole(bytes: &'a [u8]) -> View<'a> {
        View { spans: vec![Span { offset: 0, bytes }], sections: None }
    }

    /// How many bytes were read.
    pub fn len(&self) -> usize {
        self.spans.iter().map(|s| s.bytes.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The parts of the spans outside `exclude` (byte ranges (start, end) of the file, sorted
    /// by start), each with the span it is part of.
    pub fn outside(&self, exclude: &[(usize, usize)]) -> Vec<(Span<'a>, Span<'a>)> {
        let mut out = Vec::new();
        for span in &self.spans {
            let part = |r: Range<usize>| Span {
                offset: r.start,
                bytes: &span.bytes[r.start - span.offset..r.end - span.offset],
            };
            let mut at = span.offset;
            for &(s, e) in exclude.iter().filter(|&&(s, e)| e > span.offset && s < span.end()) {
                if s > at {
                    out.push((*span, part(at..s)));
                }
                at = at.max(e);
            }
            if at < span.end() {
                out.push((*span, part(at..span.end())));
            }
        }
        out
    }

    /// The bytes of `range` of the file, when one span holds them.
    pub fn get(&self, range: Range<usize>) -> Option<&'a [u8]> {
        let span = self.spans.iter().find(|s| s.offset <= range.start && range.end <= s.end())?;
        span.bytes.get(range.start - span.offset..range.end - span.offset)
    }

    /// The contents of the sections named `names` (empty for one the file does not have or
    /// whose bytes were not read), in that order.
    pub fn sections(&self, names: &[&str]) -> Vec<&'a [u8]> {
        match &self.sections {
            Some(found) => names
                .iter()
                .map(|n| found.iter().find(|(name, _)| *name == n.as_bytes()).map_or(&[][..], |(_, b)| *b))
                .collect(),
            None => {
                use object::{Object, ObjectSection};
                let whole = self.spans.first().map_or(&[][..], |s| s.bytes);
                let elf = object::File::parse(whole).ok();
                names
                    .iter()
                    .map(|n| {
                        elf.as_ref().and_then(|f| f.section_by_name(n)).and_then(|s| s.data().ok()).unwrap_or_default()
                    })
                    .collect()
            }
        }
    }
}

/// The parts of an ELF file read by its section headers (see [`read_sections`]).
#[derive(Debug, Default)]
pub struct Parts {
    /// (offset in the file, bytes), sorted, disjoint.
    runs: Vec<(usize, Vec<u8>)>,
    /// (section name, its range in the file), each inside one run.
    sections: Vec<(Vec<u8>, Range<usize>)>,
}

impl Parts {
    pub fn view(&self) -> View<'_> {
        let spans = self.runs.iter().map(|(offset, bytes)| Span { offset: *offset, bytes }).collect();
        let sections = self
            .sections
            .iter()
            .filter_map(|(name, r)| {
                let run = self.runs.iter().find(|(o, b)| *o <= r.start && r.end <= o + b.len())?;
                Some((name.as_slice(), &run.1[r.start - run.0..r.end - run.0]))
            })
            .collect();
        View { spans, sections: Some(sections) }
    }
}

/// Where bytes lie in a file, when they do: a file of this machine (`base` 0), or a file or a
/// layer inside a plain archive. What is passed over is then not read, and an ELF file's
/// sections are read where they lie.
#[derive(Debug, Clone, Copy)]
pub struct InFile<'f> {
    pub file: &'f std::fs::File,
    /// The byte of `file` where they start.
    pub base: u64,
}

/// Reads `file` from byte `pos` on, by position, whatever else reads it by its offset (the
/// section headers' reader does).
pub struct ReadAt<'f> {
    pub file: &'f std::fs::File,
    pub pos: u64,
}

impl std::io::Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads the sections that `carriers` holds of the ELF file of `len` bytes `at` its place,
/// found by its section headers; offsets are the ELF file's. Fails, saying why, when the
/// headers cannot be read or a section lies outside the file: the caller then reads the file
/// whole.
pub fn read_sections(at: InFile, len: u64, carriers: &Carriers) -> Result<Parts, String> {
    let InFile { file, base } = at;
    let cache = ReadCache::new(file);
    let wanted: Vec<(Vec<u8>, Range<u64>)> =
        wanted(cache.range(base, len), len, carriers)?.into_iter().map(|(name, r)| (name.to_vec(), r)).collect();
    drop(cache);
    let mut parts = Parts::default();
    for r in runs(&wanted) {
        use std::os::unix::fs::FileExt;
        let mut bytes = vec![0u8; (r.end - r.start) as usize];
        file.read_exact_at(&mut bytes, base + r.start).map_err(|e| format!("cannot read it: {e}"))?;
        parts.runs.push((r.start as usize, bytes));
    }
    parts.sections = wanted.into_iter().map(|(n, r)| (n, r.start as usize..r.end as usize)).collect();
    Ok(parts)
}

/// The sections of the ELF file `bytes` (read whole, from an archive) that `carriers` holds,
/// as [`read_sections`] would read them.
pub fn view_sections<'a>(bytes: &'a [u8], carriers: &Carriers) -> Result<View<'a>, String> {
    let wanted = wanted(bytes, bytes.len() as u64, carriers)?;
    let spans = runs(&wanted)
        .into_iter()
        .map(|r| Span { offset: r.start as usize, bytes: &bytes[r.start as usize..r.end as usize] })
        .collect();
    let sections = wanted.into_iter().map(|(name, r)| (name, &bytes[r.start as usize..r.end as usize])).collect();
    Ok(View { spans, sections: Some(sections) })
}

/// The ranges of the file that hold the sections, overlapping ones merged, sorted.
fn runs<N>(wanted: &[(N, Range<u64>)]) -> Vec<Range<u64>> {
    let mut ranges: Vec<Range<u64>> = wanted.iter().map(|(_, r)| r.clone()).filter(|r| !r.is_empty()).collect();
    ranges.sort_by_key(|r| r.start);
    let mut runs: Vec<Range<u64>> = Vec::new();
    for r in ranges {
        match runs.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => runs.push(r),
        }
    }
    runs
}

/// Sections by name, with their ranges in the file.
type Named<'data> = Vec<(&'data [u8], Range<u64>)>;

/// The (name, file range) of every section of the ELF file `data` (of `len` bytes) that
/// `carriers` holds; every range inside the file.
fn wanted<'data, R: ReadRef<'data>>(data: R, len: u64, carriers: &Carriers) -> Result<Named<'data>, String> {
    let wanted = match object::FileKind::parse(data).map_err(|e| e.to_string())? {
        object::FileKind::Elf32 => sections_of::<object::elf::FileHeader32<object::Endianness>, R>(data, carriers),
        object::FileKind::Elf64 => sections_of::<object::elf::FileHeader64<object::Endianness>, R>(data, carriers),
        _ => Err("not an ELF file object can read".to_string()),
    }?;
    if let Some((name, r)) = wanted.iter().find(|(_, r)| r.end > len) {
        return Err(format!(
            "section {} ends at {:#x}, past the end of the file ({len:#x} bytes)",
            String::from_utf8_lossy(name),
            r.end
        ));
    }
    Ok(wanted)
}

fn sections_of<'data, Elf: FileHeader<Endian = object::Endianness>, R: ReadRef<'data>>(
    data: R,
    carriers: &Carriers,
) -> Result<Named<'data>, String> {
    let header = Elf::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let table = header.sections(endian, data).map_err(|e| e.to_string())?;
    if table.is_empty() {
        return Err("it has no section headers".into());
    }
    let mut out = Vec::new();
    for s in table.iter().skip(1) {
        let Ok(name) = table.section_name(endian, s) else { continue };
        let Some((offset, size)) = s.file_range(endian) else { continue };
        if !carriers.holds(name) {
            continue;
        }
        let end = offset.checked_add(size).ok_or("a section's end overflows")?;
        out.push((name, offset..end));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carriers_match_a_name_and_its_dotted_extensions() {
        let c = Carriers { names: vec![".rodata".into(), ".data".into()] };
        assert!(c.holds(b".rodata") && c.holds(b".rodata.str1.1") && c.holds(b".data.rel.ro"));
        assert!(!c.holds(b".rodata1") && !c.holds(b".text") && !c.holds(b".dat"));
    }

    #[test]
    fn the_parts_outside_excluded_ranges() {
        let (a, b) = (b"0123456789".as_slice(), b"abcdef".as_slice());
        let view = View { spans: vec![Span { offset: 0, bytes: a }, Span { offset: 20, bytes: b }], sections: None };
        let parts = |exclude: &[(usize, usize)]| -> Vec<(usize, usize, &[u8])> {
            view.outside(exclude).into_iter().map(|(span, part)| (span.offset, part.offset, part.bytes)).collect()
        };
        assert_eq!(parts(&[]), [(0, 0, a), (20, 20, b)]);
        // a range inside a span, one across the gap between spans, one past the last
        assert_eq!(
            parts(&[(2, 4), (8, 22), (25, 99)]),
            [(0, 0, &b"01"[..]), (0, 4, &b"4567"[..]), (20, 22, &b"cde"[..])]
        );
        assert_eq!(parts(&[(0, 10), (20, 26)]), []);
    }

    #[test]
    fn kinds_by_first_bytes() {
        assert_eq!(Kind::of(b"!<arch>\nfoo"), Kind::Archive);
        assert_eq!(Kind::of(b"\x7fELF\x02\x01\x01"), Kind::Elf);
        assert_eq!(Kind::of(b"#!/bin/sh\n"), Kind::Other);
        assert_eq!(Kind::of(b""), Kind::Other);
    }

    #[test]
    fn an_executable_is_read_by_its_sections() {
        let exe = std::env::current_exe().expect("test binary");
        let f = std::fs::File::open(&exe).expect("open");
        let len = f.metadata().expect("metadata").len();
        let carriers = Carriers::of(crate::rules::rules());
        let parts =
            read_sections(InFile { file: &f, base: 0 }, len, &carriers).expect("the test binary has section headers");
        let view = parts.view();
        assert!(!view.is_empty() && (view.len() as u64) < len, "read {} of {len} bytes", view.len());
        let whole = std::fs::read(&exe).expect("read");
        for s in &view.spans {
            assert_eq!(s.bytes, &whole[s.offset..s.end()], "a span holds the file's bytes at its offset");
        }
        let [dynstr] = view.sections(&[".dynstr"])[..] else { unreachable!() };
        assert_eq!(dynstr, View::whole(&whole).sections(&[".dynstr"])[0]);
    }
}
