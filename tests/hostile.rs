//! Hostile input: bpfcap reads BPF objects nobody vetted, so no input may make the reader or
//! the analysis panic, hang or allocate without bound; every malformed input must end in a
//! clean, one-line `ElfError` (or a result).
//!
//! - `basic_rejects_*`: the obvious wrong inputs (host ELF files, text, empty, truncated,
//!   directories), through the library and through the CLI (exit 2, a diagnostic naming the
//!   problem).
//! - `mutants_of_every_sample_object`: deterministic mutants of every `testdata/*.bpf.o`
//!   (truncations, bit flips, huge counts and offsets, overlapping sections, bogus BTF), each
//!   read and analysed under `catch_unwind`, with a per-mutant time and allocation budget and a
//!   watchdog for hangs; a mutant that libbpf opens too must give libbpf's programs.
//!   `BPFCAP_HOSTILE_VERBOSE=1` prints every failure in full.
//! - `regression_*`: one hand-made input per bug the mutation test found.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bpfcap::analysis::{LoaderChoice, Options, analyse};
use bpfcap::elf::{ElfError, read_object};
use bpfcap::input::{InputError, load_inputs};
use bpfcap::rules::{Version, rules};

mod common;
use common::builder::*;

// ---------------------------------------------------------------------------------------------
// Allocation accounting: a per-thread count of live bytes and its peak, so that a mutant that
// makes the reader allocate far more than its size is caught (the inputs are a few KiB). A
// single request over HARD_LIMIT is refused outright, so a runaway allocation aborts the test
// instead of exhausting the machine.

struct Counting;

const HARD_LIMIT: usize = 1 << 30;
/// All threads together (a runaway allocation of many small blocks aborts here).
const TOTAL_LIMIT: isize = 3 << 30;
static TOTAL: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    TOTAL.fetch_add(delta, Ordering::Relaxed);
    let _ = LIVE.try_with(|l| {
        let v = l.get().wrapping_add(delta);
        l.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v)
            }
        });
    });
}

/// Allocates `size` bytes with `allocate` unless a limit refuses them, counting `size - freed`
/// when it succeeds (`freed`: what a reallocation gives back).
fn counted(size: usize, freed: usize, allocate: impl FnOnce() -> *mut u8) -> *mut u8 {
    if size > HARD_LIMIT || TOTAL.load(Ordering::Relaxed) + size as isize > TOTAL_LIMIT {
        return std::ptr::null_mut();
    }
    let p = allocate();
    if !p.is_null() {
        track(size as isize - freed as isize);
    }
    p
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        counted(l.size(), 0, || unsafe { System.alloc(l) })
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        counted(l.size(), 0, || unsafe { System.alloc_zeroed(l) })
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        track(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        counted(new, l.size(), || unsafe { System.realloc(p, l, new) })
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Starts measuring; returns the live count to subtract.
fn peak_reset() -> isize {
    let live = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(live));
    live
}

fn peak_since(base: isize) -> usize {
    (PEAK.with(|p| p.get()) - base).max(0) as usize
}

// ---------------------------------------------------------------------------------------------
// Inputs and the code under test.

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn sample_objects() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(testdata().join(name)).unwrap()
}

fn default_options() -> Options {
    Options {
        programs: vec![],
        loader: LoaderChoice::libbpf(vec![Version(1, 5), Version(1, 6), Version(1, 7)]),
        with_optional: false,
    }
}

fn error_kind(e: &ElfError) -> &'static str {
    match e {
        ElfError::NotElf(_) => "not_elf",
        ElfError::NotBpf { .. } => "not_bpf",
        ElfError::NotRelocatable { .. } => "not_relocatable",
        ElfError::Malformed(_) => "malformed",
        ElfError::Btf(_) => "btf",
        ElfError::TooLarge { .. } => "too_large",
        ElfError::TooComplex(_) => "too_complex",
    }
}

#[derive(Debug)]
enum Outcome {
    /// Read and analysed: number of programs and maps.
    Analysed {
        programs: usize,
        maps: usize,
    },
    Rejected {
        kind: &'static str,
        message: String,
    },
    Panicked(String),
}

thread_local! {
    /// Where the last panic on this thread happened (set by the quiet hook).
    static PANIC_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Panics on the mutation workers are expected findings, reported in the summary with their
/// location: the hook records the location instead of printing a backtrace per mutant.
fn install_quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name().is_some_and(|n| n.starts_with("hostile-")) {
                let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
                PANIC_AT.with(|p| *p.borrow_mut() = Some(at));
            } else {
                default(info)
            }
        }));
    });
}

/// Reads and (when that succeeds) analyses `bytes`, catching panics.
fn run(bytes: &[u8]) -> Outcome {
    let r = catch_unwind(AssertUnwindSafe(|| match read_object(bytes, "hostile") {
        Err(e) => Outcome::Rejected { kind: error_kind(&e), message: e.to_string() },
        Ok(obj) => {
            let (programs, maps) = (obj.programs.len(), obj.maps.len());
            match analyse(vec![("hostile.bpf.o".into(), obj)], &default_options(), rules()) {
                Ok(_) => Outcome::Analysed { programs, maps },
                // the bound on the analysis's work (analysis::calls)
                Err(e @ bpfcap::analysis::AnalysisError::TooComplex { .. }) => {
                    Outcome::Rejected { kind: "too_complex", message: e.to_string() }
                }
                Err(e) => panic!("analysis with default options cannot fail otherwise: {e}"),
            }
        }
    }));
    match r {
        Ok(o) => o,
        Err(p) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            let at = PANIC_AT.with(|p| p.borrow_mut().take()).unwrap_or_default();
            Outcome::Panicked(format!("{} at {at}", msg.unwrap_or_default()))
        }
    }
}

/// Runs one input with the checks every hostile input must pass; `Err` describes a failure.
fn check(bytes: &[u8]) -> Result<Outcome, String> {
    check_with(bytes, PER_MUTANT_LIMIT, ALLOC_LIMIT)
}

fn check_with(bytes: &[u8], time_limit: Duration, alloc_limit: usize) -> Result<Outcome, String> {
    let base = peak_reset();
    let t = Instant::now();
    let o = run(bytes);
    let took = t.elapsed();
    let peak = peak_since(base);
    match &o {
        Outcome::Panicked(m) => return Err(format!("panic: {m}")),
        Outcome::Rejected { message, .. } if message.contains('\n') => {
            return Err(format!("multi-line error message: {message:?}"));
        }
        _ => {}
    }
    if took > time_limit {
        return Err(format!("took {took:?} (limit {time_limit:?})"));
    }
    if peak > alloc_limit {
        return Err(format!("allocated {peak} bytes at peak for a {}-byte input (limit {alloc_limit})", bytes.len()));
    }
    Ok(o)
}

/// A mutant may take at most this long (debug build).
const PER_MUTANT_LIMIT: Duration = Duration::from_secs(2);
/// Peak allocation for reading and analysing one (few KiB) mutant.
const ALLOC_LIMIT: usize = 64 << 20;

// ---------------------------------------------------------------------------------------------
// A deterministic PRNG (splitmix64), seeded per object from its name.

struct Rng(u64);

impl Rng {
    fn seeded(name: &str) -> Rng {
        // FNV-1a of the name
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Just enough ELF64 and BTF layout to aim mutations (the samples are well-formed).

#[derive(Debug, Clone)]
struct Sec {
    index: usize,
    /// File offset of this section's header.
    hdr: usize,
    name: String,
    sh_type: u32,
    offset: usize,
    size: usize,
}

#[derive(Debug, Clone)]
struct Elf {
    le: bool,
    shoff: usize,
    shnum: usize,
    sections: Vec<Sec>,
}

const SHT_NOBITS: u32 = 8;

/// Offsets of the ELF64 header fields (e_ident parts, then e_type ... e_shstrndx).
const EHDR_FIELDS: &[(usize, usize, &str)] = &[
    (0, 4, "ei_mag"),
    (4, 1, "ei_class"),
    (5, 1, "ei_data"),
    (6, 1, "ei_version"),
    (7, 1, "ei_osabi"),
    (8, 8, "ei_pad"),
    (16, 2, "e_type"),
    (18, 2, "e_machine"),
    (20, 4, "e_version"),
    (24, 8, "e_entry"),
    (32, 8, "e_phoff"),
    (40, 8, "e_shoff"),
    (48, 4, "e_flags"),
    (52, 2, "e_ehsize"),
    (54, 2, "e_phentsize"),
    (56, 2, "e_phnum"),
    (58, 2, "e_shentsize"),
    (60, 2, "e_shnum"),
    (62, 2, "e_shstrndx"),
];

/// Offsets of the ELF64 section header fields.
const SHDR_FIELDS: &[(usize, usize, &str)] = &[
    (0, 4, "sh_name"),
    (4, 4, "sh_type"),
    (8, 8, "sh_flags"),
    (16, 8, "sh_addr"),
    (24, 8, "sh_offset"),
    (32, 8, "sh_size"),
    (40, 4, "sh_link"),
    (44, 4, "sh_info"),
    (48, 8, "sh_addralign"),
    (56, 8, "sh_entsize"),
];

fn rd(b: &[u8], off: usize, n: usize, le: bool) -> u64 {
    let s = &b[off..off + n];
    let mut v = 0u64;
    for i in 0..n {
        let byte = if le { s[n - 1 - i] } else { s[i] };
        v = (v << 8) | u64::from(byte);
    }
    v
}

fn parse_elf(b: &[u8]) -> Elf {
    assert_eq!(&b[..4], b"\x7fELF");
    assert_eq!(b[4], 2, "ELF64");
    let le = b[5] == 1;
    let shoff = rd(b, 40, 8, le) as usize;
    let shnum = rd(b, 60, 2, le) as usize;
    let shstrndx = rd(b, 62, 2, le) as usize;
    let hdr = |i: usize| shoff + i * 64;
    let str_off = rd(b, hdr(shstrndx) + 24, 8, le) as usize;
    let sections = (0..shnum)
        .map(|i| {
            let h = hdr(i);
            let name_off = rd(b, h, 4, le) as usize;
            let name = &b[str_off + name_off..];
            let name = String::from_utf8_lossy(&name[..name.iter().position(|&c| c == 0).unwrap()]).into_owned();
            Sec {
                index: i,
                hdr: h,
                name,
                sh_type: rd(b, h + 4, 4, le) as u32,
                offset: rd(b, h + 24, 8, le) as usize,
                size: rd(b, h + 32, 8, le) as usize,
            }
        })
        .collect();
    Elf { le, shoff, shnum, sections }
}

impl Elf {
    fn section(&self, name: &str) -> Option<&Sec> {
        self.sections.iter().find(|s| s.name == name)
    }
    fn of_type(&self, t: u32) -> Vec<&Sec> {
        self.sections.iter().filter(|s| s.sh_type == t).collect()
    }
    /// Sections with bytes in the file.
    fn with_data(&self) -> Vec<&Sec> {
        self.sections.iter().filter(|s| s.index > 0 && s.sh_type != SHT_NOBITS && s.size > 0).collect()
    }
}

const BTF_KIND_INT: u32 = 1;
const BTF_KIND_PTR: u32 = 2;
const BTF_KIND_ARRAY: u32 = 3;
const BTF_KIND_STRUCT: u32 = 4;
const BTF_KIND_UNION: u32 = 5;
const BTF_KIND_ENUM: u32 = 6;
const BTF_KIND_TYPEDEF: u32 = 8;
const BTF_KIND_VOLATILE: u32 = 9;
const BTF_KIND_CONST: u32 = 10;
const BTF_KIND_FUNC_PROTO: u32 = 13;
const BTF_KIND_VAR: u32 = 14;
const BTF_KIND_DATASEC: u32 = 15;
const BTF_KIND_DECL_TAG: u32 = 17;
const BTF_KIND_TYPE_TAG: u32 = 18;
const BTF_KIND_ENUM64: u32 = 19;

#[derive(Debug, Clone, Copy)]
struct BtfType {
    id: u32,
    /// File offset of the type record.
    off: usize,
    kind: u32,
    vlen: usize,
}

#[derive(Debug, Clone)]
struct Btf {
    /// File offset of the .BTF section.
    base: usize,
    hdr_len: usize,
    type_off: usize,
    type_len: usize,
    str_off: usize,
    str_len: usize,
    types: Vec<BtfType>,
}

fn parse_btf(b: &[u8], sec: &Sec, le: bool) -> Btf {
    let base = sec.offset;
    let f = |o: usize| rd(b, base + o, 4, le) as usize;
    let (hdr_len, type_off, type_len, str_off, str_len) = (f(4), f(8), f(12), f(16), f(20));
    let start = base + hdr_len + type_off;
    let mut pos = start;
    let mut types = Vec::new();
    while pos < start + type_len {
        let info = rd(b, pos + 4, 4, le) as u32;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        types.push(BtfType { id: types.len() as u32 + 1, off: pos, kind, vlen });
        pos += 12
            + match kind {
                BTF_KIND_INT | BTF_KIND_VAR | BTF_KIND_DECL_TAG => 4,
                BTF_KIND_ARRAY => 12,
                BTF_KIND_STRUCT | BTF_KIND_UNION | BTF_KIND_DATASEC | BTF_KIND_ENUM64 => vlen * 12,
                BTF_KIND_ENUM | BTF_KIND_FUNC_PROTO => vlen * 8,
                _ => 0,
            };
    }
    assert_eq!(pos, start + type_len, "sample BTF decodes");
    Btf { base, hdr_len, type_off, type_len, str_off, str_len, types }
}

impl Btf {
    fn of_kind(&self, kinds: &[u32]) -> Vec<&BtfType> {
        self.types.iter().filter(|t| kinds.contains(&t.kind)).collect()
    }
    /// File offsets of every u32 that holds a type id (type of modifiers, pointers, vars,
    /// array element and index, struct members, datasec vars).
    fn type_refs(&self) -> Vec<usize> {
        let mut v = Vec::new();
        for t in &self.types {
            match t.kind {
                BTF_KIND_PTR | BTF_KIND_TYPEDEF | BTF_KIND_VOLATILE | BTF_KIND_CONST | 11 | 12 | BTF_KIND_VAR
                | BTF_KIND_TYPE_TAG | BTF_KIND_DECL_TAG => v.push(t.off + 8),
                BTF_KIND_ARRAY => v.extend([t.off + 12, t.off + 16]),
                BTF_KIND_STRUCT | BTF_KIND_UNION | BTF_KIND_DATASEC => {
                    v.extend((0..t.vlen).map(|i| t.off + 12 + i * 12 + if t.kind == BTF_KIND_DATASEC { 0 } else { 4 }))
                }
                _ => {}
            }
        }
        v
    }
}

// ---------------------------------------------------------------------------------------------
// Mutants.

struct Mutant {
    kind: &'static str,
    what: String,
    bytes: Vec<u8>,
}

struct Mutator<'a> {
    orig: &'a [u8],
    elf: Elf,
    btf: Option<Btf>,
    ext: Option<Sec>,
    rng: Rng,
    out: Vec<Mutant>,
}

const HUGE64: &[u64] =
    &[u64::MAX, 0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000, 0xffff_ffff, 0x1_0000_0000, 0xffff_fff8];
const HUGE32: &[u64] = &[0xffff_ffff, 0x7fff_ffff, 0x8000_0000, 0xffff_fff0, 0x0100_0000, 0xffff];

impl<'a> Mutator<'a> {
    fn new(name: &str, orig: &'a [u8]) -> Self {
        let elf = parse_elf(orig);
        let btf = elf.section(".BTF").map(|s| parse_btf(orig, s, elf.le));
        let ext = elf.section(".BTF.ext").cloned();
        Mutator { orig, elf, btf, ext, rng: Rng::seeded(name), out: Vec::new() }
    }

    fn push(&mut self, kind: &'static str, what: String, bytes: Vec<u8>) {
        self.out.push(Mutant { kind, what, bytes });
    }

    /// A copy with an `n`-byte integer `v` written at `off`.
    fn with_int(&self, off: usize, n: usize, v: u64) -> Vec<u8> {
        let mut b = self.orig.to_vec();
        wr(&mut b, off, n, self.elf.le, v);
        b
    }

    fn set(&mut self, kind: &'static str, what: String, off: usize, n: usize, v: u64) {
        let b = self.with_int(off, n, v);
        self.push(kind, format!("{what} = {v:#x}"), b);
    }

    fn truncations(&mut self) {
        let len = self.orig.len();
        let mut cuts: BTreeSet<usize> = BTreeSet::new();
        for &(off, n, _) in EHDR_FIELDS {
            cuts.extend([off, off + n]);
        }
        for s in &self.elf.sections {
            cuts.extend([s.hdr, s.hdr + 64]);
            // inside the headers of the sections the reader decodes itself: every field
            if s.sh_type == SHT_SYMTAB || s.name == ".BTF" || s.name == ".BTF.ext" {
                cuts.extend(SHDR_FIELDS.iter().map(|&(off, n, _)| s.hdr + off + n));
            }
            if s.sh_type != SHT_NOBITS {
                cuts.extend([s.offset, s.offset + s.size, s.offset + s.size / 2]);
            }
        }
        if let Some(b) = &self.btf {
            let h = b.base;
            cuts.extend([h + 4, h + 24, h + b.hdr_len + b.type_off + b.type_len / 2, h + b.hdr_len + b.str_off + 1]);
        }
        if let Some(e) = &self.ext {
            cuts.extend([e.offset + 8, e.offset + 24, e.offset + 32]);
        }
        for _ in 0..16 {
            cuts.insert(self.rng.below(len));
        }
        cuts.insert(len - 1);
        for c in cuts.into_iter().filter(|&c| c < len) {
            self.push("truncate", format!("cut at {c} of {len}"), self.orig[..c].to_vec());
        }
    }

    /// Flips one bit in `count` random bytes of `range`.
    fn flips_in(&mut self, region: &str, range: std::ops::Range<usize>, count: usize) {
        let range = range.start.min(self.orig.len())..range.end.min(self.orig.len());
        if range.is_empty() {
            return;
        }
        for _ in 0..count {
            let off = range.start + self.rng.below(range.len());
            let bit = self.rng.below(8);
            let mut b = self.orig.to_vec();
            b[off] ^= 1 << bit;
            self.push("bitflip", format!("{region}: byte {off} bit {bit}"), b);
        }
    }

    fn bit_flips(&mut self) {
        let elf = self.elf.clone();
        self.flips_in("ELF header", 0..64, 40);
        self.flips_in("section headers", elf.shoff..elf.shoff + elf.shnum * 64, 80);
        for s in elf.of_type(SHT_SYMTAB) {
            self.flips_in("symtab", s.offset..s.offset + s.size, 60);
        }
        let rels = elf.of_type(SHT_REL);
        for s in &rels {
            self.flips_in(&format!("relocations {}", s.name), s.offset..s.offset + s.size, (48 / rels.len()).max(3));
        }
        if let Some(b) = self.btf.clone() {
            self.flips_in(".BTF header", b.base..b.base + b.hdr_len, 20);
            let t = b.base + b.hdr_len + b.type_off;
            self.flips_in(".BTF types", t..t + b.type_len, 50);
            let s = b.base + b.hdr_len + b.str_off;
            self.flips_in(".BTF strings", s..s + b.str_len, 8);
        }
        if let Some(e) = self.ext.clone() {
            self.flips_in(".BTF.ext header", e.offset..e.offset + 32, 16);
            self.flips_in(".BTF.ext body", e.offset + 32..e.offset + e.size, 24);
        }
        for s in elf.with_data() {
            if s.sh_type == 1 && s.name != ".BTF" && s.name != ".BTF.ext" {
                self.flips_in(&format!("section {}", s.name), s.offset..s.offset + s.size, 1);
            }
        }
        self.flips_in("anywhere", 0..self.orig.len(), 24);
    }

    fn huge_values(&mut self) {
        let elf = self.elf.clone();
        // ELF header counts and offsets
        let len = self.orig.len() as u64;
        for v in [0, 1, 0xffff, 0xff00, elf.shnum as u64 + 1, elf.shnum as u64 - 1] {
            self.set("huge", "e_shnum".into(), 60, 2, v);
        }
        for v in [0, 1, len, len - 8, u64::MAX, 0x7fff_ffff_ffff_ffff, 0xffff_ffff] {
            self.set("huge", "e_shoff".into(), 40, 8, v);
        }
        for v in [0, 1, 63, 0xffff] {
            self.set("huge", "e_shentsize".into(), 58, 2, v);
        }
        for v in [0, 0xffff, elf.shnum as u64] {
            self.set("huge", "e_shstrndx".into(), 62, 2, v);
        }
        // every section: a few of its size/offset fields
        for s in &elf.sections[1..] {
            for _ in 0..2 {
                let (field, n, fname) = self.rng.pick(&[
                    (24usize, 8usize, "sh_offset"),
                    (32, 8, "sh_size"),
                    (56, 8, "sh_entsize"),
                    (40, 4, "sh_link"),
                    (44, 4, "sh_info"),
                ]);
                let v = if n == 8 { self.rng.pick(HUGE64) } else { self.rng.pick(HUGE32) };
                self.set("huge", format!("section {} {fname}", s.name), s.hdr + field, n, v);
            }
        }
        // the sections the reader decodes itself: every field, several values
        let mut key: Vec<Sec> = elf.of_type(SHT_SYMTAB).into_iter().cloned().collect();
        key.extend(elf.of_type(SHT_REL).into_iter().take(2).cloned());
        key.extend(elf.section(".BTF").cloned());
        key.extend(self.ext.clone());
        for s in &key {
            for (field, n, fname) in [(24usize, 8usize, "sh_offset"), (32, 8, "sh_size"), (56, 8, "sh_entsize")] {
                for v in [u64::MAX, 0xffff_fff8, len, s.size as u64 + 1] {
                    self.set("huge", format!("section {} {fname}", s.name), s.hdr + field, n, v);
                }
                let _ = field;
            }
        }
        // symbols: huge values and sizes, bad section indexes
        if let Some(st) = elf.of_type(SHT_SYMTAB).first().copied().cloned() {
            let n = st.size / 24;
            let shnum = elf.shnum as u64;
            let shndx = [0xfff1, 0xffff, 0xfff2, shnum];
            for _ in 0..12 {
                let i = 1 + self.rng.below(n.max(2) - 1);
                let e = st.offset + i * 24;
                let (field, w, fname, vals): (usize, usize, &str, &[u64]) = self.rng.pick(&[
                    (8, 8, "st_value", &[u64::MAX, 0x7fff_ffff_ffff_fff8, 0x4000_0000_0000_0000, 0xffff_fff8][..]),
                    (16, 8, "st_size", &[u64::MAX, 0x7fff_ffff_ffff_fff8, 0xffff_fff8][..]),
                    (6, 2, "st_shndx", &shndx[..]),
                    (0, 4, "st_name", &[0xffff_ffff, 0x7fff_ffff][..]),
                ]);
                let v = self.rng.pick(vals);
                self.set("huge", format!("symbol {i} {fname}"), e + field, w, v);
            }
        }
        // relocations: offsets and symbol indexes
        for s in elf.of_type(SHT_REL).into_iter().take(3) {
            let n = s.size / 16;
            for _ in 0..2 {
                let e = s.offset + 16 * self.rng.below(n.max(1));
                let off = self.rng.pick(HUGE64);
                self.set("huge", format!("relocation in {} r_offset", s.name), e, 8, off);
                let sym = self.rng.pick(&[0xffff_ffffu64, 0x7fff_ffff, 0x10000]);
                self.set("huge", format!("relocation in {} symbol", s.name), e + 12, 4, sym);
            }
        }
        // BTF header fields, type vlen, DATASEC vlen
        if let Some(b) = self.btf.clone() {
            let size = elf.section(".BTF").unwrap().size as u64;
            for (off, fname) in [(4, "hdr_len"), (8, "type_off"), (12, "type_len"), (16, "str_off"), (20, "str_len")] {
                for v in [0, 1, size, size + 1, 0x7fff_ffff, 0xffff_ffff, 0xffff_fff4] {
                    self.set("huge", format!(".BTF {fname}"), b.base + off, 4, v);
                }
            }
            let with_vlen =
                b.of_kind(&[BTF_KIND_STRUCT, BTF_KIND_UNION, BTF_KIND_ENUM, BTF_KIND_FUNC_PROTO, BTF_KIND_ENUM64]);
            for _ in 0..6.min(with_vlen.len()) {
                let t = self.rng.pick(&with_vlen);
                let info = rd(self.orig, t.off + 4, 4, elf.le);
                let v = (info & !0xffff) | self.rng.pick(&[0xffffu64, 0x8000, t.vlen as u64 + 1]);
                self.set("huge", format!("BTF type {} (kind {}) vlen", t.id, t.kind), t.off + 4, 4, v);
            }
            for t in b.of_kind(&[BTF_KIND_DATASEC]) {
                let info = rd(self.orig, t.off + 4, 4, elf.le);
                for vl in [0xffffu64, t.vlen as u64 + 1, 0] {
                    self.set("huge", format!("DATASEC {} vlen", t.id), t.off + 4, 4, (info & !0xffff) | vl);
                }
                // a variable offset/size past the section
                if t.vlen > 0 {
                    self.set("huge", format!("DATASEC {} var offset", t.id), t.off + 16, 4, 0xffff_fff0);
                    self.set("huge", format!("DATASEC {} var size", t.id), t.off + 20, 4, 0xffff_ffff);
                }
            }
        }
        // BTF.ext header, record sizes and counts
        if let Some(e) = self.ext.clone() {
            let f = |o: usize| rd(self.orig, e.offset + o, 4, elf.le) as usize;
            let hdr_len = f(4);
            let fields = [
                (4, "hdr_len"),
                (8, "func_info_off"),
                (12, "func_info_len"),
                (16, "line_info_off"),
                (20, "line_info_len"),
                (24, "core_relo_off"),
                (28, "core_relo_len"),
            ];
            for (off, fname) in fields {
                for v in [0, 0xffff_ffff, 0x7fff_ffff, e.size as u64 + 1] {
                    self.set("huge", format!(".BTF.ext {fname}"), e.offset + off, 4, v);
                }
            }
            for (off_field, what) in [(8usize, "func_info"), (16, "line_info"), (24, "core_relo")] {
                if hdr_len < off_field + 8 {
                    continue;
                }
                let blk = e.offset + hdr_len + f(off_field);
                if f(off_field + 4) < 12 {
                    continue;
                }
                for v in [0, 1, 15, 0xffff_ffff, 0x8000_0000] {
                    self.set("huge", format!(".BTF.ext {what} record size"), blk, 4, v);
                }
                for v in [0xffff_ffff, 0x1000_0000, 0x0fff_ffff] {
                    self.set("huge", format!(".BTF.ext {what} first num_info"), blk + 8, 4, v);
                }
                self.set("huge", format!(".BTF.ext {what} first sec_name_off"), blk + 4, 4, 0xffff_ffff);
            }
        }
    }

    fn overlaps(&mut self) {
        let elf = self.elf.clone();
        let data = elf.with_data();
        let mut pairs: Vec<(&Sec, &Sec)> = Vec::new();
        let named = |n: &str| data.iter().copied().find(|s| s.name == n);
        let symtab = data.iter().copied().find(|s| s.sh_type == SHT_SYMTAB);
        let strtab = named(".strtab");
        let text = data.iter().copied().find(|s| s.sh_type == 1 && s.name != ".BTF" && s.name != ".BTF.ext");
        for (a, b) in [
            (named(".BTF"), named(".BTF.ext")),
            (named(".BTF.ext"), named(".BTF")),
            (symtab, strtab),
            (strtab, symtab),
            (text, named(".BTF")),
            (named(".BTF"), text),
            (symtab, named(".BTF")),
        ] {
            if let (Some(a), Some(b)) = (a, b) {
                pairs.push((a, b));
            }
        }
        for _ in 0..4 {
            pairs.push((self.rng.pick(&data), self.rng.pick(&data)));
        }
        for (a, b) in pairs {
            // a covers b exactly, then a starts inside b
            let mut m = self.with_int(a.hdr + 24, 8, b.offset as u64);
            wr(&mut m, a.hdr + 32, 8, elf.le, b.size as u64);
            self.push("overlap", format!("{} := {} ({}+{})", a.name, b.name, b.offset, b.size), m);
            let mut m = self.with_int(a.hdr + 24, 8, (b.offset + b.size / 2) as u64);
            wr(&mut m, a.hdr + 32, 8, elf.le, a.size.min(self.orig.len() - b.offset - b.size / 2) as u64);
            self.push("overlap", format!("{} starts inside {}", a.name, b.name), m);
        }
        // every executable section on the same bytes
        let exec: Vec<&Sec> = data.iter().copied().filter(|s| rd(self.orig, s.hdr + 8, 8, elf.le) & 4 != 0).collect();
        if let Some(first) = exec.iter().max_by_key(|s| s.size) {
            let mut m = self.orig.to_vec();
            for s in &exec {
                wr(&mut m, s.hdr + 24, 8, elf.le, first.offset as u64);
                wr(&mut m, s.hdr + 32, 8, elf.le, first.size as u64);
            }
            self.push("overlap", format!("all {} executable sections := {}", exec.len(), first.name), m);
        }
    }

    fn bogus_btf(&mut self) {
        let Some(b) = self.btf.clone() else { return };
        let le = self.elf.le;
        let types_at = b.base + b.hdr_len + b.type_off;
        let strings_at = b.base + b.hdr_len + b.str_off;
        // random bytes in the type section, the string section, or all of the body
        for (what, start, len, density) in [
            ("types", types_at, b.type_len, 1usize),
            ("types", types_at, b.type_len, 8),
            ("types", types_at, b.type_len, 64),
            ("strings", strings_at, b.str_len, 4),
            ("body", b.base + b.hdr_len, b.type_len + b.str_len, 1),
        ] {
            if len == 0 {
                continue;
            }
            for round in 0..2 {
                let mut m = self.orig.to_vec();
                for i in 0..len {
                    if self.rng.below(density) == 0 {
                        m[start + i] = self.rng.next() as u8;
                    }
                }
                self.push("btf-random", format!("random bytes in .BTF {what}, 1 in {density} (round {round})"), m);
            }
        }
        // type ids past the end
        let n = b.types.len() as u64;
        let refs = b.type_refs();
        for _ in 0..8.min(refs.len()) {
            let at = self.rng.pick(&refs);
            let v = self.rng.pick(&[n + 1, n + 2, 0xffff_ffff, 0x8000_0000]);
            self.set("btf-ref", format!("type reference at {at}"), at, 4, v);
        }
        let mut m = self.orig.to_vec();
        for &at in &refs {
            wr(&mut m, at, 4, le, n + 1);
        }
        self.push("btf-ref", "every type reference past the end".into(), m);
        // self-referential chains: each modifier/typedef/pointer to itself, a two-cycle, all
        let mods = b.of_kind(&[BTF_KIND_TYPEDEF, BTF_KIND_CONST, BTF_KIND_VOLATILE, BTF_KIND_PTR, BTF_KIND_TYPE_TAG]);
        for t in mods.iter().take(4) {
            self.set(
                "btf-cycle",
                format!("type {} (kind {}) refers to itself", t.id, t.kind),
                t.off + 8,
                4,
                u64::from(t.id),
            );
        }
        if mods.len() >= 2 {
            let (x, y) = (mods[0], mods[mods.len() - 1]);
            let mut m = self.with_int(x.off + 8, 4, u64::from(y.id));
            wr(&mut m, y.off + 8, 4, le, u64::from(x.id));
            self.push("btf-cycle", format!("types {} and {} refer to each other", x.id, y.id), m);
        }
        let mut m = self.orig.to_vec();
        for t in &mods {
            wr(&mut m, t.off + 8, 4, le, u64::from(t.id));
        }
        self.push("btf-cycle", "every modifier refers to itself".into(), m);
        // every typedef turned into a chain through the next typedef (a long/looping chain)
        let mut m = self.orig.to_vec();
        for w in mods.windows(2) {
            wr(&mut m, w[0].off + 8, 4, le, u64::from(w[1].id));
        }
        if let (Some(last), Some(first)) = (mods.last(), mods.first()) {
            wr(&mut m, last.off + 8, 4, le, u64::from(first.id));
        }
        self.push("btf-cycle", "all modifiers in one loop".into(), m);
        // structs containing themselves by value (through every member)
        let structs = b.of_kind(&[BTF_KIND_STRUCT, BTF_KIND_UNION]);
        let mut all = self.orig.to_vec();
        for t in &structs {
            let mut m = self.orig.to_vec();
            for i in 0..t.vlen {
                wr(&mut m, t.off + 12 + i * 12 + 4, 4, le, u64::from(t.id));
                wr(&mut all, t.off + 12 + i * 12 + 4, 4, le, u64::from(t.id));
            }
            if self.rng.below(3) == 0 || t.vlen >= 2 {
                self.push("btf-cycle", format!("struct {} contains itself through all {} members", t.id, t.vlen), m);
            }
        }
        self.push("btf-cycle", "every struct contains itself".into(), all);
        // arrays of huge nelems, alone and all at once, and nested arrays of arrays
        let arrays = b.of_kind(&[BTF_KIND_ARRAY]);
        let mut m = self.orig.to_vec();
        for t in &arrays {
            wr(&mut m, t.off + 20, 4, le, 0xffff_ffff);
        }
        self.push("btf-array", format!("all {} arrays of 0xffffffff elements", arrays.len()), m.clone());
        for t in &arrays {
            // element type: the array itself
            wr(&mut m, t.off + 12, 4, le, u64::from(t.id));
        }
        self.push("btf-array", "all arrays of 0xffffffff arrays of themselves".into(), m);
        if let Some(m) = nested_huge_arrays(self.orig, &b, le) {
            self.push("btf-array", "every pointer to an array of 0xffffffff arrays of 0xffffffff".into(), m);
        }
        for t in arrays.iter().take(4) {
            let v = self.rng.pick(&[0xffff_ffffu64, 0x8000_0000, 0x1000_0000]);
            self.set("btf-array", format!("array {} nelems", t.id), t.off + 20, 4, v);
        }
        // unknown kinds
        for _ in 0..3 {
            let t = self.rng.pick(&b.types);
            let info = rd(self.orig, t.off + 4, 4, le);
            let k = 20 + self.rng.below(12) as u64;
            self.set("btf-kind", format!("type {} kind {k}", t.id), t.off + 4, 4, (info & !(0x1f << 24)) | (k << 24));
        }
        // a struct turned into a datasec and vice versa (vlen records reinterpreted)
        let mut kinds_swapped = 0;
        for t in &b.types {
            if kinds_swapped < 2 && (t.kind == BTF_KIND_STRUCT || t.kind == BTF_KIND_DATASEC) && t.vlen > 0 {
                let info = rd(self.orig, t.off + 4, 4, le);
                let k = if t.kind == BTF_KIND_STRUCT { BTF_KIND_DATASEC } else { BTF_KIND_STRUCT };
                self.set(
                    "btf-kind",
                    format!("type {} kind {} -> {k}", t.id, t.kind),
                    t.off + 4,
                    4,
                    (info & !(0x1f << 24)) | (u64::from(k) << 24),
                );
                kinds_swapped += 1;
            }
        }
    }
}

/// Two arrays A and B: A of 0xffffffff B, B of 0xffffffff of its element; every pointer then
/// points to A (map keys and values then have a size that overflows 64 bits).
fn nested_huge_arrays(orig: &[u8], b: &Btf, le: bool) -> Option<Vec<u8>> {
    let arrays = b.of_kind(&[BTF_KIND_ARRAY]);
    let (a, inner) = (arrays.first()?, arrays.get(1)?);
    let mut m = orig.to_vec();
    wr(&mut m, a.off + 12, 4, le, u64::from(inner.id));
    wr(&mut m, a.off + 20, 4, le, 0xffff_ffff);
    wr(&mut m, inner.off + 20, 4, le, 0xffff_ffff);
    for p in b.of_kind(&[BTF_KIND_PTR]) {
        wr(&mut m, p.off + 8, 4, le, u64::from(a.id));
    }
    Some(m)
}

impl Mutator<'_> {
    /// Names with control characters (a newline), quoted by an error: every message must stay
    /// on one line.
    fn control_characters(&mut self) {
        let elf = self.elf.clone();
        let Some(st) = elf.of_type(SHT_SYMTAB).first().copied().cloned() else { return };
        let strtab = elf.sections[rd(self.orig, st.hdr + 40, 4, elf.le) as usize].clone();
        let mut all = self.orig.to_vec();
        for i in 1..st.size / 24 {
            let e = st.offset + i * 24;
            if self.orig[e + 4] & 0xf != 2 {
                continue; // STT_FUNC only
            }
            let name_at = strtab.offset + rd(self.orig, e, 4, elf.le) as usize;
            let mut m = self.orig.to_vec();
            for b in [&mut m, &mut all] {
                b[name_at] = b'\n';
                wr(b, e + 16, 8, elf.le, u64::MAX); // st_size: "function ... overflows"
            }
            self.push("control-chars", format!("function symbol {i}: newline in its name, st_size = u64::MAX"), m);
        }
        self.push("control-chars", "every function symbol: newline in its name, st_size = u64::MAX".into(), all);
        if let Some(b) = self.btf.clone() {
            let mut m = self.orig.to_vec();
            let strings = b.base + b.hdr_len + b.str_off;
            for c in &mut m[strings..strings + b.str_len] {
                if *c == b'a' {
                    *c = b'\n';
                }
            }
            self.push("control-chars", "every 'a' in .BTF strings a newline".into(), m);
        }
    }
}

fn mutants(name: &str, bytes: &[u8]) -> Vec<Mutant> {
    let mut m = Mutator::new(name, bytes);
    m.control_characters();
    m.truncations();
    m.bit_flips();
    m.huge_values();
    m.overlaps();
    m.bogus_btf();
    m.out
}

// ---------------------------------------------------------------------------------------------
// The mutation test.

#[derive(Default)]
struct Summary {
    mutants: usize,
    by_kind: BTreeMap<&'static str, usize>,
    errors: BTreeMap<&'static str, usize>,
    analysed: usize,
    /// Programs and maps found in the mutants that were analysed.
    programs: usize,
    maps: usize,
    failures: Vec<String>,
    slowest: (Duration, String),
}

impl Summary {
    fn merge(&mut self, o: Summary) {
        self.mutants += o.mutants;
        for (k, v) in o.by_kind {
            *self.by_kind.entry(k).or_default() += v;
        }
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.analysed += o.analysed;
        self.programs += o.programs;
        self.maps += o.maps;
        self.failures.extend(o.failures);
        if o.slowest.0 > self.slowest.0 {
            self.slowest = o.slowest;
        }
    }
}

/// What a worker is doing, for the watchdog.
type Current = Arc<Mutex<Option<(String, Instant)>>>;

/// The whole run must finish within this (debug build, 2 cores); a mutant still running after
/// HANG_LIMIT is reported as a hang.
const OVERALL_DEADLINE: Duration = Duration::from_secs(600);
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// For a mutant bpfcap reads: whether libbpf, opening it too, sees other programs (verify
/// selects programs by the names bpfcap gives, and said "unknown program(s)" when they
/// differed: a section that is not SHT_PROGBITS, a name that is not UTF-8).
/// (Compared as sets of names: the order of two programs a mutant puts at the same offset of
/// one section is whatever libbpf's qsort makes of its comparison, which never says "equal".)
fn programs_differ_from_libbpfs(bytes: &[u8]) -> Option<String> {
    let mut ours: Vec<String> = read_object(bytes, "hostile").ok()?.programs.into_iter().map(|p| p.name).collect();
    libbpf_rs::set_print(None);
    let open = libbpf_rs::ObjectBuilder::default().open_memory(bytes).ok()?;
    let mut theirs: Vec<String> = open.progs().map(|p| p.name().to_string_lossy().into_owned()).collect();
    ours.sort();
    theirs.sort();
    (ours != theirs).then(|| format!("programs {ours:?}, libbpf sees {theirs:?}"))
}

/// Reads and analyses every mutant of every object on the machine's cores, watching for hangs;
/// prints what happened and fails on any failure.
fn mutate_all(what: &str, objects: Vec<(String, Vec<u8>)>) -> Summary {
    let objects = Arc::new(objects);
    let _ = rules();
    install_quiet_panic_hook();
    let next = Arc::new(AtomicUsize::new(0));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel::<Summary>();
    let mut currents: Vec<Current> = Vec::new();
    for w in 0..workers {
        let (objects, next, tx) = (objects.clone(), next.clone(), tx.clone());
        let current: Current = Arc::new(Mutex::new(None));
        currents.push(current.clone());
        std::thread::Builder::new()
            .name(format!("hostile-{w}"))
            .spawn(move || {
                let mut s = Summary::default();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((name, bytes)) = objects.get(i) else { break };
                    for m in mutants(name, bytes) {
                        let label = format!("{name} [{}] {}", m.kind, m.what);
                        *current.lock().unwrap() = Some((label.clone(), Instant::now()));
                        let t = Instant::now();
                        let r = check(&m.bytes);
                        let took = t.elapsed();
                        s.mutants += 1;
                        *s.by_kind.entry(m.kind).or_default() += 1;
                        if took > s.slowest.0 {
                            s.slowest = (took, label.clone());
                        }
                        match r {
                            Ok(Outcome::Analysed { programs, maps }) => {
                                if let Some(diff) = programs_differ_from_libbpfs(&m.bytes) {
                                    s.failures.push(format!("{label}: {diff}"));
                                }
                                s.analysed += 1;
                                s.programs += programs;
                                s.maps += maps;
                            }
                            Ok(Outcome::Rejected { kind, .. }) => *s.errors.entry(kind).or_default() += 1,
                            Ok(Outcome::Panicked(_)) => unreachable!(),
                            Err(e) => s.failures.push(format!("{label}: {e}")),
                        }
                    }
                }
                *current.lock().unwrap() = None;
                let _ = tx.send(s);
            })
            .unwrap();
    }
    drop(tx);
    let mut total = Summary::default();
    let mut done = 0;
    while done < workers {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(s) => {
                total.merge(s);
                done += 1;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                for c in &currents {
                    if let Some((label, since)) = &*c.lock().unwrap() {
                        assert!(
                            since.elapsed() < HANG_LIMIT,
                            "hang: {label} still running after {:?}",
                            since.elapsed()
                        );
                    }
                }
                assert!(
                    start.elapsed() < OVERALL_DEADLINE,
                    "the mutation test ran past its deadline of {OVERALL_DEADLINE:?}"
                );
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("a mutation worker died"),
        }
    }
    let elapsed = start.elapsed();
    println!(
        "hostile: {} mutants of {} {what} in {elapsed:.1?} ({workers} threads): {} analysed, {} rejected",
        total.mutants,
        objects.len(),
        total.analysed,
        total.errors.values().sum::<usize>()
    );
    println!("  analysed mutants had {} programs and {} maps", total.programs, total.maps);
    println!("  mutants by kind: {:?}", total.by_kind);
    println!("  errors by kind:  {:?}", total.errors);
    println!("  slowest: {:?} {}", total.slowest.0, total.slowest.1);
    if !total.failures.is_empty() {
        let verbose = std::env::var_os("BPFCAP_HOSTILE_VERBOSE").is_some();
        let shown: Vec<&String> = total.failures.iter().take(if verbose { usize::MAX } else { 40 }).collect();
        panic!(
            "{} of {} mutants failed:\n{}",
            total.failures.len(),
            total.mutants,
            shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
        );
    }
    total
}

#[test]
fn mutants_of_every_sample_object() {
    let objects = sample_objects();
    assert_eq!(objects.len(), 31, "testdata/*.bpf.o");
    let total = mutate_all("sample objects", objects);
    assert!(total.mutants >= 5000, "expected thousands of mutants, got {}", total.mutants);
    // every mutation kind is exercised
    for k in [
        "truncate",
        "bitflip",
        "huge",
        "overlap",
        "btf-random",
        "btf-ref",
        "btf-cycle",
        "btf-array",
        "btf-kind",
        "control-chars",
    ] {
        assert!(total.by_kind.get(k).copied().unwrap_or(0) > 0, "no mutants of kind {k}");
    }
    // the corpus reaches deep: some mutants are read and analysed, others rejected
    assert!(total.analysed > 0 && total.errors.len() >= 3);
}

/// The same on objects built by others (Debian sid's libbpf-tools, systemd and xdp-tools, in
/// the chroot of ./dev test): 16 of them, spread over the packages, over 10000 mutants.
#[test]
fn mutants_of_objects_built_by_others() {
    let root = std::env::var_os("BPFCAP_SYSTEMD_ROOT").map(PathBuf::from);
    let ok = match &root {
        Some(r) if r.join("usr/sbin").is_dir() => Ok(()),
        _ => Err("BPFCAP_SYSTEMD_ROOT (the Debian sid chroot of ./dev test) is not set".to_string()),
    };
    if !common::require(ok, "mutants of objects built by others") {
        return;
    }
    let root = root.unwrap();
    let mut all: Vec<(String, Vec<u8>)> = Vec::new();
    for dir in ["usr/sbin", "usr/lib/x86_64-linux-gnu/systemd"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir)).unwrap().flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files.iter().filter(|f| f.is_file()) {
            let bytes = std::fs::read(f).unwrap();
            let path = f.display().to_string();
            for o in bpfcap::input::embedded::extract(&path, &bytes).objects {
                all.push((o.display, bytes[o.offset..o.offset + o.size].to_vec()));
            }
        }
    }
    assert!(all.len() >= 64, "only {} objects built by others", all.len());
    // every k-th, so that every package is among them
    let step = all.len() / 16;
    let chosen: Vec<(String, Vec<u8>)> = all.into_iter().step_by(step).take(16).collect();
    let total = mutate_all("objects built by others", chosen);
    assert!(total.mutants >= 10_000, "expected over 10000 mutants, got {}", total.mutants);
    assert!(total.analysed > 0 && total.errors.len() >= 3);
}

/// Runs a hand-made input with the hostile checks (time, panics, one-line errors) and an
/// allocation limit of `alloc_limit`; returns the outcome.
fn check_big(what: &str, bytes: &[u8], alloc_limit: usize) -> Outcome {
    install_quiet_panic_hook();
    // one big input at a time, so that their times do not depend on each other
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let t = Instant::now();
    let r = check_with(bytes, BIG_TIME_LIMIT, alloc_limit);
    println!("{what}: {} bytes, {:?}: {r:?}", bytes.len(), t.elapsed());
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn assert_rejected(o: &Outcome, kind: &str, text: &str) {
    match o {
        Outcome::Rejected { kind: k, message } if *k == kind && message.contains(text) => {}
        other => panic!("expected a {kind} error containing {text:?}, got {other:?}"),
    }
}

fn assert_analysed(o: &Outcome) {
    assert!(matches!(o, Outcome::Analysed { .. }), "expected a result, got {o:?}");
}

/// Every scale test stays within this much allocation (inputs up to a few MiB)...
const BIG_ALLOC_LIMIT: usize = 256 << 20;
/// ...and this much time for an input at bpfcap's limits (debug build; they take about 1 s
/// alone, before the fixes 40 s to hours or an abort).
const BIG_TIME_LIMIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Regressions: one input per bug the mutation test and the scale tests found.

#[test]
fn regression_messages_stay_on_one_line() {
    // names from the file can hold newlines; the messages that quote them escape them
    let mut b = sample("tailcall.bpf.o");
    let elf = parse_elf(&b);
    let st = elf.of_type(SHT_SYMTAB)[0];
    let strtab = elf.sections[rd(&b, st.hdr + 40, 4, elf.le) as usize].clone();
    let e = (1..st.size / 24).map(|i| st.offset + i * 24).find(|&e| b[e + 4] & 0xf == 2).unwrap();
    let name_at = strtab.offset + rd(&b, e, 4, elf.le) as usize;
    b[name_at + 1] = b'\n';
    wr(&mut b, e + 16, 8, elf.le, u64::MAX);
    let err = read_object(&b, "x").unwrap_err();
    assert!(err.to_string().contains("\\n"), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");
    assert!(!ElfError::Btf("map a\r\nb".into()).to_string().contains(['\n', '\r']));
}

#[test]
fn regression_call_through_huge_section_symbol_value() {
    // tailcall.bpf.o calls parse_proto through the .text section symbol (imm 14); a section
    // symbol value near i64::MAX made `sym_offset + (imm + 1) * 8` overflow (programs.rs).
    let mut b = sample("tailcall.bpf.o");
    let elf = parse_elf(&b);
    let text_sym = elf.of_type(SHT_SYMTAB)[0].offset + 24; // symbol 1: the .text section symbol
    assert_eq!(b[text_sym + 4] & 0xf, 3, "STT_SECTION");
    wr(&mut b, text_sym + 8, 8, elf.le, 0x7fff_ffff_ffff_fff8);
    assert_analysed(&check_big("call through .text at 0x7ffffffffffffff8", &b, ALLOC_LIMIT));
}

#[test]
fn regression_legacy_map_symbol_at_huge_offset() {
    // a legacy map symbol at u64::MAX made `offset + 4 * field` overflow (elf/mod.rs)
    let mut b = sample("maps_legacy.bpf.o");
    let elf = parse_elf(&b);
    let maps = elf.section("maps").unwrap().index;
    let st = elf.of_type(SHT_SYMTAB)[0];
    let e = (0..st.size / 24)
        .map(|i| st.offset + i * 24)
        .find(|&e| rd(&b, e + 6, 2, elf.le) as usize == maps && b[e + 4] & 0xf != 3)
        .unwrap();
    wr(&mut b, e + 8, 8, elf.le, u64::MAX);
    assert_rejected(&check_big("legacy map at u64::MAX", &b, ALLOC_LIMIT), "malformed", "truncated");
}

#[test]
fn regression_map_value_size_overflows_64_bits() {
    // a map value of 0xffffffff arrays of 0xffffffff arrays made the size computation
    // overflow u64 (elf/btf.rs size_of)
    let b = sample("maps_btf.bpf.o");
    let elf = parse_elf(&b);
    let btf = parse_btf(&b, elf.section(".BTF").unwrap(), elf.le);
    let m = nested_huge_arrays(&b, &btf, elf.le).unwrap();
    check_big("nested arrays of 0xffffffff", &m, ALLOC_LIMIT);
}

#[test]
fn regression_struct_containing_itself_twice() {
    // a map value struct whose members are the struct itself: the walk for special fields
    // (bpf_spin_lock, kptrs, ...) was exponential (2^64 visits, an abort on memory)
    let b = sample("maps_btf.bpf.o");
    let elf = parse_elf(&b);
    let btf = parse_btf(&b, elf.section(".BTF").unwrap(), elf.le);
    let mut m = b.clone();
    for t in btf.of_kind(&[BTF_KIND_STRUCT]) {
        for i in 0..t.vlen {
            wr(&mut m, t.off + 12 + i * 12 + 4, 4, elf.le, u64::from(t.id));
        }
    }
    // and a hand-made one: struct s { struct s a, b; } as the value of a .maps map
    let mut strings = vec![0u8];
    let mut name = |s: &str| {
        let o = strings.len() as u32;
        strings.extend(s.as_bytes());
        strings.push(0);
        o
    };
    let (n_int, n_s, n_a, n_b, n_def, n_type, n_value, n_m, n_maps) = (
        name("int"),
        name("s"),
        name("a"),
        name("b"),
        name("def"),
        name("type"),
        name("value"),
        name("m"),
        name(".maps"),
    );
    #[rustfmt::skip]
    let types = [
        n_int, btf_info(BTF_KIND_INT, 0), 4, 32,                                   // [1] int
        n_s, btf_info(BTF_KIND_STRUCT, 2), 8, n_a, 2, 0, n_b, 2, 32,               // [2] struct s { s a; s b; }
        0, btf_info(BTF_KIND_PTR, 0), 2,                                           // [3] s *
        0, btf_info(BTF_KIND_ARRAY, 0), 0, 1, 1, 2,                                // [4] int[2]
        0, btf_info(BTF_KIND_PTR, 0), 4,                                           // [5] int (*)[2]: __uint(type, 2)
        n_def, btf_info(BTF_KIND_STRUCT, 2), 16, n_type, 5, 0, n_value, 3, 64,     // [6] struct def
        n_m, btf_info(BTF_KIND_VAR, 0), 6, 1,                                      // [7] def m
        n_maps, btf_info(BTF_KIND_DATASEC, 1), 16, 7, 0, 16,                       // [8] .maps
    ];
    let mut e = ElfBuilder::new();
    let x = e.exec("xdp", &[EXIT]);
    e.func("p", x, 0, 8);
    let maps = e.section(".maps", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, vec![0; 16]);
    e.object("m", maps, 0, 16);
    e.section(".BTF", SHT_PROGBITS, 0, btf_blob(&types, &strings));
    let built = e.build();
    assert_analysed(&check_big("hand-made struct s { struct s a, b; }", &built, ALLOC_LIMIT));
    check_big("every struct of maps_btf contains itself", &m, ALLOC_LIMIT);
}

// ---------------------------------------------------------------------------------------------
// Scale: inputs a mutant of a small sample cannot express. Each must be rejected or read
// quickly, within a bounded allocation.

#[test]
fn scale_overlapping_functions() {
    // 20000 functions all covering the same 64 KiB: 1.3 G instructions decoded (2 GB, 44 s)
    // before the reader bounded the decoded bytes by the object size
    let mut b = ElfBuilder::new();
    let mut code = vec![insn(0xb7, 0, 0, 0); 8191];
    code.push(EXIT);
    let x = b.exec("xdp", &code);
    for i in 0..20000 {
        b.func(&format!("f{i}"), x, 0, 65536);
    }
    let o = check_big("20000 overlapping 64 KiB functions", &b.build(), BIG_ALLOC_LIMIT);
    assert_rejected(&o, "too_complex", "overlap");
}

/// An object with `n` executable sections of one function each.
fn many_sections(n: usize) -> Vec<u8> {
    let mut b = ElfBuilder::new();
    let secs: Vec<usize> = (0..n).map(|i| b.exec(&format!("xdp/p{i}"), &[EXIT])).collect();
    for (i, s) in secs.iter().enumerate() {
        b.func(&format!("p{i}"), *s, 0, 8);
    }
    b.build()
}

#[test]
fn scale_many_sections_many_symbols() {
    // sections × symbols: 20000 of each took 66 s in the reader alone
    let max = bpfcap::elf::MAX_FUNCTIONS;
    assert_analysed(&check_big(&format!("{max} sections with a program each"), &many_sections(max), BIG_ALLOC_LIMIT));
    let o = check_big("20000 sections with a program each", &many_sections(20000), BIG_ALLOC_LIMIT);
    assert_rejected(&o, "too_complex", "functions");
}

#[test]
fn scale_many_relocations() {
    // relocations × functions: the owner of each relocation was searched linearly
    let n = bpfcap::elf::MAX_FUNCTIONS;
    let mut b = ElfBuilder::new();
    let code: Vec<u64> = (0..8 * n).map(|_| EXIT).collect();
    let x = b.exec("xdp", &code);
    let syms: Vec<u32> = (0..n).map(|i| b.func(&format!("p{i}"), x, 64 * i as u64, 64)).collect();
    let relocs: Vec<(u64, u32, u32)> = (0..8 * n).map(|i| (8 * i as u64, syms[(i / 8 + 1) % n], 10)).collect();
    b.rel(x, &relocs);
    assert_analysed(&check_big(&format!("{n} functions with 8 relocations each"), &b.build(), BIG_ALLOC_LIMIT));
}

#[test]
fn scale_repeated_relocations() {
    // 1024 programs calling one subprogram that has 200000 relocations on one instruction:
    // every walk through the subprogram indexed all of them
    let mut b = ElfBuilder::new();
    let t = b.exec(".text", &[insn(0x18, 0, 0, 0), 0, EXIT]);
    b.func("sub", t, 0, 24);
    programs_calling_text(&mut b, t, 1024);
    let name = b.name("ext");
    b.syms.push((name, 0x10, 0, 0, 0)); // an undefined global
    let ext = b.syms.len() as u32 - 1;
    b.rel(t, &vec![(0, ext, 1); 200_000]);
    let bytes = b.build();
    assert_analysed(&check_big("1024 programs × a subprogram with 200000 relocations", &bytes, BIG_ALLOC_LIMIT));
    let obj = read_object(&bytes, "relocs").unwrap();
    assert_eq!(obj.subprograms[0].relocs.len(), 1);
}

#[test]
fn scale_call_chain() {
    // programs that all call into a chain of subprograms: the analysis walks the chain for
    // each program (n² function visits; 2048 × 2048 took 41 s)
    let (n, max) = (2048, bpfcap::analysis::calls::MAX_ANALYSIS_WORK);
    let o =
        check_big(&format!("{n} programs calling a chain of {n} subprograms"), &chain_object(n, n, 2), BIG_ALLOC_LIMIT);
    assert_rejected(&o, "too_complex", &format!("takes more than {max} steps"));
    // within the limit: analysed, and the chain is followed to its end
    let n = 256;
    let bytes = chain_object(n, n, 2);
    assert_analysed(&check_big(&format!("{n} programs calling a chain of {n} subprograms"), &bytes, BIG_ALLOC_LIMIT));
    let obj = read_object(&bytes, "chain").unwrap();
    let infos = bpfcap::analysis::programs::analyse_programs(&obj, rules().libbpf(), Version(1, 7), rules());
    assert_eq!(infos[0].uses.subprograms.len(), n);
    assert_eq!(infos[0].uses.helpers.len(), 1);
}

#[test]
fn scale_shared_subprogram() {
    // programs that all call one big subprogram: each program's analysis decodes it
    let o = check_big(
        "1024 programs calling one 40000-instruction subprogram",
        &chain_object(1024, 1, 40_000),
        BIG_ALLOC_LIMIT,
    );
    assert_rejected(&o, "too_complex", "takes more than");
    let o = check_big(
        "128 programs calling one 100000-instruction subprogram",
        &chain_object(128, 1, 100_000),
        BIG_ALLOC_LIMIT,
    );
    assert_analysed(&o);
}

#[test]
fn scale_programs_that_share_a_start() {
    // p0 (one instruction) and 4000 programs of two instructions all start at xdp+0; those call
    // a 200000-instruction function: the work bound must walk each program from its own
    // function, not from the first that starts there (it let this through: 24 times the bound)
    let (n, s) = (4000usize, 200_000usize);
    let mut b = ElfBuilder::new();
    let mut x = vec![insn(0xb7, 0, 0, 0), call_rel(0)];
    x.extend(std::iter::repeat_n(insn(0xb7, 0, 0, 0), s - 1));
    x.push(EXIT);
    let sec = b.exec("xdp", &x);
    b.func("p0", sec, 0, 8);
    for i in 1..n {
        b.func(&format!("p{i}"), sec, 0, 16);
    }
    b.func("q", sec, 16, 8 * s as u64);
    let o = check_big(
        &format!("{n} programs at one start calling a {s}-instruction function"),
        &b.build(),
        BIG_ALLOC_LIMIT,
    );
    assert_rejected(&o, "too_complex", "takes more than");
}

#[test]
fn scale_shared_call_sites() {
    // programs that all call one subprogram of 100000 helper calls, named by a 4000-byte
    // name: every program's analysis lists every call site with the subprogram's name (50 GB)
    let o = check_big(
        "128 programs × 100000 call sites of a long-named subprogram",
        &shared_call_sites(128, 100_000),
        BIG_ALLOC_LIMIT,
    );
    assert_rejected(&o, "too_complex", "takes more than");
    // just within the limit: 32 MB of call sites
    let o = check_big(
        "8 programs × 1000 call sites of a long-named subprogram",
        &shared_call_sites(8, 1000),
        BIG_ALLOC_LIMIT,
    );
    assert_analysed(&o);
}

fn shared_call_sites(progs: usize, calls: usize) -> Vec<u8> {
    let mut b = ElfBuilder::new();
    let mut text = vec![call_helper(1); calls];
    text.push(EXIT);
    let t = b.exec(".text", &text);
    b.func(&"s".repeat(4000), t, 0, 8 * text.len() as u64);
    programs_calling_text(&mut b, t, progs);
    b.build()
}

/// Adds `progs` xdp programs, each a call through the section symbol of `.text` (section
/// index `t`) to `.text+0`, then exit.
fn programs_calling_text(b: &mut ElfBuilder, t: usize, progs: usize) {
    let x = b.exec("xdp", &(0..progs).flat_map(|_| [call_rel(-1), EXIT]).collect::<Vec<_>>());
    for i in 0..progs {
        b.func(&format!("p{i}"), x, 16 * i as u64, 16);
    }
    let name = b.name(".text");
    b.syms.push((name, 0x03, t as u16, 0, 0)); // STT_SECTION
    let text_sym = b.syms.len() as u32 - 1;
    b.rel(x, &(0..progs).map(|i| (16 * i as u64, text_sym, 10)).collect::<Vec<_>>());
}

/// `progs` programs calling the first of a chain of `chain` subprograms of `sub_insns`
/// instructions each (the last calls a helper).
fn chain_object(progs: usize, chain: usize, sub_insns: usize) -> Vec<u8> {
    let sub_insns = sub_insns.max(2);
    let mut b = ElfBuilder::new();
    let mut text = Vec::new();
    for i in 0..chain {
        text.extend(std::iter::repeat_n(insn(0xb7, 0, 0, 0), sub_insns - 2));
        // call the next subprogram (just after this one's exit)
        text.push(if i + 1 < chain { call_rel(1) } else { call_helper(1) });
        text.push(EXIT);
    }
    let t = b.exec(".text", &text);
    let size = 8 * sub_insns as u64;
    for i in 0..chain {
        b.func(&format!("sub{i}"), t, size * i as u64, size);
    }
    programs_calling_text(&mut b, t, progs);
    b.build()
}

/// A .BTF.ext with one line-info block for `section` (string offset) of `records` (insn_off,
/// file name offset, line).
fn btf_ext_lines(section: u32, records: &[(u32, u32, u32)]) -> Vec<u8> {
    let mut line = Vec::new();
    line.extend(16u32.to_le_bytes());
    line.extend(section.to_le_bytes());
    line.extend((records.len() as u32).to_le_bytes());
    for &(off, file, l) in records {
        for w in [off, file, file, l << 10] {
            line.extend(w.to_le_bytes());
        }
    }
    let mut ext = Vec::new();
    ext.extend([0x9f, 0xeb, 1, 0]);
    for w in [32u32, 0, 0, 0, line.len() as u32, 0, 0] {
        ext.extend(w.to_le_bytes());
    }
    ext.extend(line);
    ext
}

#[test]
fn scale_line_info_strings() {
    // one xdp program whose line info names the file at each record's string offset
    let mut strings = b"\0xdp\0".to_vec();
    let file_off = strings.len() as u32;
    strings.extend(std::iter::repeat_n(b'a', 256 << 10));
    strings.push(0);
    let object = |file_offsets: &mut dyn Iterator<Item = u32>| {
        let mut b = ElfBuilder::new();
        let x = b.exec("xdp", &[EXIT]);
        b.func("p", x, 0, 8);
        b.section(".BTF", SHT_PROGBITS, 0, btf_blob(&[], &strings));
        let recs: Vec<(u32, u32, u32)> = file_offsets.map(|f| (0, f, 1)).collect();
        b.section(".BTF.ext", SHT_PROGBITS, 0, btf_ext_lines(1, &recs));
        b.build()
    };
    // 20000 line records naming 20000 different tails of one 256 KiB string: 5 GB of names
    // before the budget
    let o = check_big(
        "20000 line records naming 20000 long file names",
        &object(&mut (0..20000).map(|i| file_off + i)),
        BIG_ALLOC_LIMIT,
    );
    assert_rejected(&o, "btf", "line info file names exceed");
    // the same name 20000 times is decoded once
    let o = check_big(
        "20000 line records naming one 256 KiB file",
        &object(&mut std::iter::repeat_n(file_off, 20000)),
        BIG_ALLOC_LIMIT,
    );
    assert_analysed(&o);
}

#[test]
fn scale_line_info_per_function() {
    // 4096 functions over the same instruction, 60000 records for that instruction: every
    // function took a copy of every record before records were kept once per instruction
    let mut b = ElfBuilder::new();
    let x = b.exec("xdp", &[EXIT]);
    for i in 0..bpfcap::elf::MAX_FUNCTIONS {
        b.func(&format!("p{i}"), x, 0, 8);
    }
    let strings = b"\0xdp\0file.c\0".to_vec();
    b.section(".BTF", SHT_PROGBITS, 0, btf_blob(&[], &strings));
    let recs: Vec<(u32, u32, u32)> = (0..60000).map(|i| (i % 8, 5, i)).collect();
    b.section(".BTF.ext", SHT_PROGBITS, 0, btf_ext_lines(1, &recs));
    let bytes = b.build();
    let o = check_big("4096 functions × 60000 records on one instruction", &bytes, BIG_ALLOC_LIMIT);
    assert_analysed(&o);
    // the last record of the instruction is the one reported
    let obj = read_object(&bytes, "lines").unwrap();
    assert_eq!(obj.programs[0].function.lines.len(), 1);
    assert_eq!(obj.programs[0].function.line_of(0).unwrap().line, 59999);
}

#[test]
fn scale_btf_names() {
    // 100000 types named by one 1 MiB string: 100 GB of names before the budget
    let mut strings = vec![0u8];
    strings.extend(std::iter::repeat_n(b'n', 1 << 20));
    strings.push(0);
    let types: Vec<u32> = (0..100_000).flat_map(|_| [1, btf_info(BTF_KIND_INT, 0), 4, 32]).collect();
    let mut b = ElfBuilder::new();
    let x = b.exec("xdp", &[EXIT]);
    b.func("p", x, 0, 8);
    b.section(".BTF", SHT_PROGBITS, 0, btf_blob(&types, &strings));
    let o = check_big("100000 types named by a 1 MiB string", &b.build(), BIG_ALLOC_LIMIT);
    assert_rejected(&o, "btf", "names exceed");
}

#[test]
fn scale_map_definitions() {
    // 65535 maps in .maps sharing one definition of 65535 members: 4 G member visits, and as
    // many struct_ops members, before the work budget
    let v = 0xffffu32;
    let mut strings = b"\0int\0x\0def\0m\0.maps\0.struct_ops\0".to_vec();
    let at = |s: &[u8], n: &str| {
        s.windows(n.len() + 2)
            .position(|w| w[0] == 0 && &w[1..=n.len()] == n.as_bytes() && w[n.len() + 1] == 0)
            .unwrap() as u32
            + 1
    };
    let (n_int, n_x, n_def, n_m, n_maps, n_so) = (
        at(&strings, "int"),
        at(&strings, "x"),
        at(&strings, "def"),
        at(&strings, "m"),
        at(&strings, ".maps"),
        at(&strings, ".struct_ops"),
    );
    strings.push(0);
    let mut types = vec![n_int, btf_info(BTF_KIND_INT, 0), 4, 32]; // [1]
    types.extend([n_def, btf_info(BTF_KIND_STRUCT, v), 8 * v]); // [2] def
    for i in 0..v {
        types.extend([n_x, 1, i * 32]);
    }
    types.extend([n_m, btf_info(BTF_KIND_VAR, 0), 2, 1]); // [3] m
    for ds in [n_maps, n_so] {
        types.extend([ds, btf_info(BTF_KIND_DATASEC, v), 8]);
        for _ in 0..v {
            types.extend([3, 0, 8]);
        }
    }
    for (sec, name) in [(".maps", "maps"), (".struct_ops", "struct_ops")] {
        let mut b = ElfBuilder::new();
        let x = b.exec("xdp", &[EXIT]);
        b.func("p", x, 0, 8);
        b.section(sec, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, vec![0; 8]);
        b.section(".BTF", SHT_PROGBITS, 0, btf_blob(&types, &strings));
        let o = check_big(&format!("65535 {name} of 65535 members"), &b.build(), BIG_ALLOC_LIMIT);
        assert_rejected(&o, "too_complex", "steps");
    }
}

/// `progs` programs and a .struct_ops DATASEC of `vars` variables, all at offset 0, of a
/// struct of `members` members all at offset 0, with a relocation at 0 to program p0: every
/// member of every variable references p0.
fn struct_ops_members(progs: usize, vars: u32, members: u32) -> Vec<u8> {
    let strings = b"\0int\0ops\0v\0.struct_ops\0".to_vec();
    let mut types = vec![1, btf_info(BTF_KIND_INT, 0), 4, 32]; // [1] int
    types.extend([5, btf_info(BTF_KIND_STRUCT, members), 8]); // [2] struct ops
    for _ in 0..members {
        types.extend([0, 1, 0]);
    }
    types.extend([9, btf_info(BTF_KIND_VAR, 0), 2, 1]); // [3] v
    types.extend([11, btf_info(BTF_KIND_DATASEC, vars), 8]); // [4] .struct_ops
    for _ in 0..vars {
        types.extend([3, 0, 8]);
    }
    let mut b = ElfBuilder::new();
    let x = b.exec("xdp", &vec![EXIT; progs]);
    let syms: Vec<u32> = (0..progs).map(|i| b.func(&format!("p{i}"), x, 8 * i as u64, 8)).collect();
    let so = b.section(".struct_ops", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, vec![0; 8]);
    b.rel(so, &[(0, syms[0], 2)]);
    b.section(".BTF", SHT_PROGBITS, 0, btf_blob(&types, &strings));
    b.build()
}

#[test]
fn scale_struct_ops_members() {
    // struct_ops members that reference programs were looked up once per program (4096
    // programs × 4 M members), and held 56 bytes each
    let o =
        check_big("60 struct_ops variables × 65535 members", &struct_ops_members(4096, 60, 0xffff), BIG_ALLOC_LIMIT);
    assert_rejected(&o, "too_complex", "steps");
    let bytes = struct_ops_members(bpfcap::elf::MAX_FUNCTIONS, 2, 30000);
    let o = check_big("4096 programs, 2 struct_ops variables × 30000 members", &bytes, BIG_ALLOC_LIMIT);
    assert_analysed(&o);
    let infos = bpfcap::analysis::programs::analyse_programs(
        &read_object(&bytes, "so").unwrap(),
        rules().libbpf(),
        Version(1, 7),
        rules(),
    );
    assert_eq!(infos[0].uses.struct_ops_member.as_deref(), Some("ops."));
}

#[test]
fn scale_many_legacy_maps_and_externs() {
    // more legacy maps than the limit; and 30000 undefined symbols (externs were deduplicated
    // with a linear search each)
    let mut b = ElfBuilder::new();
    let x = b.exec("xdp", &[EXIT]);
    b.func("p", x, 0, 8);
    let n = bpfcap::elf::MAX_MAPS + 1;
    let maps = b.section("maps", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, vec![1; 20 * n]);
    for i in 0..n {
        b.object(&format!("m{i}"), maps, 20 * i as u64, 20);
    }
    let o = check_big(&format!("{n} legacy maps"), &b.build(), BIG_ALLOC_LIMIT);
    assert_rejected(&o, "too_complex", "maps");

    let mut b = ElfBuilder::new();
    let x = b.exec("xdp", &[EXIT]);
    b.func("p", x, 0, 8);
    for i in 0..30000 {
        let name = b.name(&format!("ext{i}"));
        b.syms.push((name, 0x10, 0, 0, 0)); // STB_GLOBAL, STT_NOTYPE, undefined
    }
    assert_analysed(&check_big("30000 undefined symbols", &b.build(), BIG_ALLOC_LIMIT));
}

#[test]
fn regression_embedded_object_with_header_size_past_the_end() {
    // junk, then an object whose e_ehsize (0xffff) is past the end of the file: the search
    // for embedded objects sliced out of range (`bpfcap analyze FILE` panicked); found by
    // fuzz/ (the `embedded` target), reproducer in fuzz/regressions/embedded/
    let mut x = sample("xdp.bpf.o");
    wr(&mut x, 52, 2, true, 0xffff);
    let mut b = b"junk....".to_vec();
    b.extend(x);
    install_quiet_panic_hook();
    let r = catch_unwind(|| bpfcap::input::embedded::extract("junk.bin", &b).candidates);
    assert!(r.is_ok(), "bpfcap::input::embedded::extract panicked");
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = cli_analyze(&write(dir.path(), "junk.bin", &b));
    assert_eq!(code, Some(2), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The basic rejects: wrong inputs through the library and the CLI.

/// A minimal relocatable x86-64 ELF header (no sections): a host object, not a BPF one.
fn x86_relocatable() -> Vec<u8> {
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    wr(&mut b, 16, 2, true, 1); // ET_REL
    wr(&mut b, 18, 2, true, 62); // EM_X86_64
    wr(&mut b, 20, 4, true, 1);
    wr(&mut b, 52, 2, true, 64);
    wr(&mut b, 58, 2, true, 64);
    b
}

/// Runs `bpfcap analyze PATH`; returns the exit code and stderr with whitespace and the
/// report's box-drawing collapsed (miette wraps long lines).
fn cli_analyze(path: &Path) -> (Option<i32>, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_bpfcap")).arg("analyze").arg(path).env("NO_COLOR", "1").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let words: Vec<&str> =
        err.split(|c: char| c.is_whitespace() || "│×╰─▶╭".contains(c)).filter(|w| !w.is_empty()).collect();
    (out.status.code(), words.join(" "))
}

fn assert_cli_rejects(path: &Path, names: &[&str]) {
    let (code, err) = cli_analyze(path);
    assert_eq!(code, Some(2), "{}: exit code; stderr: {err}", path.display());
    for n in names {
        assert!(err.contains(n), "{}: stderr does not name {n:?}: {err}", path.display());
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn basic_rejects_through_the_library() {
    let host_exe = std::env::current_exe().unwrap();
    let exe = std::fs::read(&host_exe).unwrap();
    assert!(matches!(read_object(&exe, "x"), Err(ElfError::NotBpf { .. })), "this test binary");
    if let Ok(t) = std::fs::read("/bin/true") {
        assert!(matches!(read_object(&t, "x"), Err(ElfError::NotBpf { .. })), "/bin/true");
    }
    let e = read_object(&x86_relocatable(), "x").unwrap_err();
    assert!(matches!(&e, ElfError::NotBpf { machine } if machine.contains("X86_64")), "{e:?}");
    let xdp = sample("xdp.bpf.o");
    assert!(matches!(read_object(&xdp[..xdp.len() / 2], "x"), Err(ElfError::Malformed(_))), "truncated");
    assert!(matches!(read_object(&xdp[..40], "x"), Err(ElfError::Malformed(_))), "truncated header");
    assert!(matches!(read_object(b"hello, world\n", "x"), Err(ElfError::NotElf(_))), "text");
    assert!(matches!(read_object(b"", "x"), Err(ElfError::NotElf(_))), "empty");
    assert!(matches!(read_object(b"\x7fEL", "x"), Err(ElfError::NotElf(_))), "3 bytes");

    // explicit files that are not BPF objects and embed none
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("text.txt", &b"hello, world\n"[..]), ("empty", &b""[..]), ("host.o", &x86_relocatable()[..])]
    {
        let r = load_inputs(&[write(dir.path(), name, bytes)]).map(|(objects, _)| objects);
        assert!(matches!(r, Err(InputError::NotBpf { .. })), "{name}: {r:?}");
    }
    let r = load_inputs(std::slice::from_ref(&host_exe)).map(|(objects, _)| objects);
    assert!(matches!(r, Err(InputError::NotBpf { .. })), "this test binary: {r:?}");
    let r = load_inputs(&[write(dir.path(), "cut.bpf.o", &xdp[..xdp.len() / 2])]).map(|(objects, _)| objects);
    assert!(matches!(r, Err(InputError::Object { source: ElfError::Malformed(_), .. })), "{r:?}");

    // directories: one without objects, one with a truncated object (it looks like one)
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "notes.txt", b"not an object\n");
    let r = load_inputs(&[dir.path().to_path_buf()]).map(|(objects, _)| objects);
    assert!(matches!(r, Err(InputError::NoObjects { .. })), "{r:?}");
    // a truncated object inside a directory is skipped with a warning naming it: alone, the
    // directory gives no object (an error); beside a good object, the rest is analysed
    let bad = tempfile::tempdir().unwrap();
    write(bad.path(), "cut.bpf.o", &xdp[..xdp.len() / 2]);
    let r = load_inputs(&[bad.path().to_path_buf()]).map(|(objects, _)| objects);
    assert!(matches!(r, Err(InputError::NoObjects { .. })), "{r:?}");
    write(bad.path(), "good.bpf.o", &xdp);
    let (objects, warnings) = bpfcap::input::load_inputs(&[bad.path().to_path_buf()]).unwrap();
    assert_eq!(objects.len(), 1);
    assert!(warnings.iter().any(|w| w.contains("cut.bpf.o") && w.contains("malformed")), "{warnings:?}");
    let good = tempfile::tempdir().unwrap();
    write(good.path(), "xdp.bpf.o", &xdp);
    write(good.path(), "README", b"text\n");
    assert_eq!(load_inputs(&[good.path().to_path_buf()]).map(|(objects, _)| objects).unwrap().len(), 1);
    let r = load_inputs(&[dir.path().join("missing.o")]).map(|(objects, _)| objects);
    assert!(matches!(r, Err(InputError::Io { .. })), "{r:?}");
    // every error is one line
    for e in [
        read_object(b"", "x").unwrap_err(),
        read_object(&exe, "x").unwrap_err(),
        read_object(&xdp[..100], "x").unwrap_err(),
    ] {
        assert!(!e.to_string().contains('\n'), "{e}");
    }
}

#[test]
fn basic_rejects_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let xdp = sample("xdp.bpf.o");
    let not_bpf = ["bpfcap::input::not_bpf", "is not a BPF object and embeds none"];
    assert_cli_rejects(&std::env::current_exe().unwrap(), &not_bpf);
    assert_cli_rejects(&write(dir.path(), "host.o", &x86_relocatable()), &not_bpf);
    assert_cli_rejects(&write(dir.path(), "notes.txt", b"hello\n"), &not_bpf);
    assert_cli_rejects(&write(dir.path(), "empty.o", b""), &[not_bpf[0], not_bpf[1], "empty.o"]);
    assert_cli_rejects(
        &write(dir.path(), "cut.bpf.o", &xdp[..xdp.len() / 2]),
        &["bpfcap::elf::malformed", "malformed ELF", "cut.bpf.o"],
    );
    let empty_dir = dir.path().join("nothing-here");
    std::fs::create_dir(&empty_dir).unwrap();
    assert_cli_rejects(&empty_dir, &["bpfcap::input::empty_dir", "no BPF objects found", "nothing-here"]);
    assert_cli_rejects(&dir.path().join("missing.o"), &["bpfcap::input::io", "cannot read", "missing.o"]);
    // hostile objects: clean errors, not crashes
    let mut m = xdp.clone();
    wr(&mut m, 40, 8, true, u64::MAX); // e_shoff
    assert_cli_rejects(&write(dir.path(), "shoff.bpf.o", &m), &["bpfcap::elf::malformed"]);
    assert_cli_rejects(
        &write(dir.path(), "many.bpf.o", &many_sections(20000)),
        &["bpfcap::elf::too_complex", "more than"],
    );
    // an object whose analysis would take too long: an error when it is all there is, ...
    let alone = tempfile::tempdir().unwrap();
    let chain = write(alone.path(), "chain.bpf.o", &chain_object(2048, 2048, 2));
    assert_cli_rejects(&chain, &["bpfcap::analyze::too_complex", "chain.bpf.o", "steps"]);
    // ... and left out, with a warning naming it, beside other objects
    std::fs::copy(testdata().join("xdp.bpf.o"), alone.path().join("xdp.bpf.o")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpfcap"))
        .args(["analyze", "--format", "json"])
        .arg(alone.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["objects"].as_array().unwrap().len(), 1);
    let warnings = doc["warnings"].to_string();
    assert!(warnings.contains("chain.bpf.o: too complex"), "{warnings}");
}

// ---------------------------------------------------------------------------------------------
// The search for embedded objects and their skeleton names: linear in the file.

/// Runs `f` on a thread and fails when it takes longer than [`BIG_TIME_LIMIT`] (a hang
/// detector: the inputs below took minutes before the fixes, about a second after).
fn within_time_limit<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    let r = rx.recv_timeout(BIG_TIME_LIMIT).unwrap_or_else(|_| panic!("{what}: not done after {BIG_TIME_LIMIT:?}"));
    println!("{what}: {:?}", t.elapsed());
    r
}

/// `count` distinct short C identifiers, each NUL-terminated, after a NUL.
fn many_strings(count: usize) -> Vec<u8> {
    let mut v = vec![0u8];
    for i in 0..count {
        let mut n = i;
        v.push(b'a' + (n % 26) as u8);
        n /= 26;
        while n > 0 {
            v.push(b'a' + (n % 26) as u8);
            n /= 26;
        }
        v.push(0);
    }
    v
}

/// A small object with one xdp program, `xdp_prog`.
fn one_xdp_program() -> Vec<u8> {
    let mut b = ElfBuilder::new();
    let x = b.exec("xdp", &[insn(0xb7, 0, 0, 0), EXIT]);
    b.func("xdp_prog", x, 0, 16);
    b.section("license", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, b"GPL\0".to_vec());
    b.build()
}

/// Pads `file` with zeros to a multiple of 8 bytes (where skeletons place their objects).
fn pad_to_8(file: &mut Vec<u8>) {
    while !file.len().is_multiple_of(8) {
        file.push(0);
    }
}

#[test]
fn scale_skeleton_names_among_a_million_strings() {
    // 256 objects with global data (each one's skeleton name is looked for) in a file of a
    // million strings that hold their program names: the name search read every string once
    // per object (50 s in a release build).
    let obj = sample("globals.bpf.o");
    let object = read_object(&obj, "globals").unwrap();
    assert!(object.maps.iter().any(|m| m.section == ".rodata"), "globals.bpf.o has .rodata");
    let mut file = Vec::new();
    for p in &object.programs {
        file.push(0);
        file.extend(p.name.as_bytes());
    }
    file.extend(many_strings(1_000_000));
    for _ in 0..256 {
        pad_to_8(&mut file);
        file.extend(&obj);
    }
    let size = file.len();
    let found =
        within_time_limit("256 objects among 1M strings", move || bpfcap::input::embedded::extract("blob", &file));
    println!("{size} bytes: {} objects, warnings {:?}", found.objects.len(), found.warnings);
    assert_eq!(found.objects.len(), 256);
}

#[test]
fn scale_embedded_objects_past_the_per_file_limit() {
    // 5000 small objects: the scan stops at 4096, and the unread rest of the file (900
    // objects) joined the strings searched for skeleton names (79 s in a release build)
    let one = one_xdp_program();
    let mut file = many_strings(100_000);
    for _ in 0..5000 {
        pad_to_8(&mut file);
        file.extend(b"\0xdp_prog\0");
        pad_to_8(&mut file);
        file.extend(&one);
    }
    let found = within_time_limit("5000 objects", move || bpfcap::input::embedded::extract("blob", &file));
    assert_eq!(found.objects.len(), bpfcap::input::embedded::MAX_EMBEDDED_PER_FILE);
    assert!(found.warnings.iter().any(|w| w.contains("per-file limit")), "{:?}", found.warnings.last());
}

#[test]
fn scale_skeleton_names_stop_at_their_work_limit() {
    // 1000 objects whose program name follows 200000 strings that are no C identifier: each
    // object's search would look at all of them. The work per file is bounded: the search
    // stops, the remaining objects are read and stay unnamed, and a warning says so.
    let one = one_xdp_program();
    let mut file = vec![0u8];
    for _ in 0..200_000 {
        file.extend(b"1a\0xdp_prog\0");
    }
    for _ in 0..1000 {
        pad_to_8(&mut file);
        file.extend(&one);
    }
    let found = within_time_limit("1000 objects, a name after 200000 strings", move || {
        bpfcap::input::embedded::extract("blob", &file)
    });
    assert_eq!(found.objects.len(), 1000);
    assert!(found.objects.iter().all(|o| o.skeleton_name.is_none()));
    assert!(found.warnings.iter().any(|w| w.contains("skeleton names not searched")), "{:?}", found.warnings);
}
