//! The fuzz targets' bodies: each takes the fuzzer's input and fails (panics) on a bug. The
//! targets in fuzz_targets/ call them under libFuzzer; tests/regressions.rs replays the
//! committed corpus and every minimised reproducer through them on `cargo test`.

use std::sync::OnceLock;

use bpfcap::analysis::{Analysis, LoaderChoice, Options, analyse};
use bpfcap::rules::{Version, rules};
use bpfcap::vocab::ListKind;

fn options() -> Options {
    Options {
        programs: vec![],
        loader: LoaderChoice::libbpf(vec![Version(1, 5), Version(1, 6), Version(1, 7)]),
        with_optional: false,
    }
}

/// Bytes → `bpfcap::elf::read_object` → (when it reads) the full analysis with the default
/// options, as `bpfcap analyze` runs it. Every malformed input must give an `ElfError` (one
/// line) or a result.
pub fn read_object(data: &[u8]) {
    match bpfcap::elf::read_object(data, "fuzz") {
        Err(e) => assert!(!e.to_string().contains('\n'), "multi-line error: {e}"),
        Ok(obj) => match analyse(vec![("fuzz.bpf.o".into(), obj)], &options(), rules()) {
            Ok(_) => {}
            // the bound on the analysis's work (bpfcap::analysis::calls)
            Err(e @ bpfcap::analysis::AnalysisError::TooComplex { .. }) => {
                assert!(!e.to_string().contains('\n'), "multi-line error: {e}")
            }
            Err(e) => panic!("analysis with default options: {e}"),
        },
    }
}

/// Bytes → the search for BPF objects embedded in executables and libraries
/// (`bpfcap::input::embedded::extract`), which reads every candidate with `read_object`.
pub fn embedded(data: &[u8]) {
    let found = bpfcap::input::embedded::extract("fuzz.bin", data);
    assert!(found.objects.len() <= found.candidates);
}

/// Bytes as a container image or root filesystem archive (`bpfcap analyze IMAGE`):
/// `bpfcap::input::image::load` on them, written to a file (an archive is read from its file,
/// and a plain one's layers from their places in it). Every input must give objects (named
/// inside the image's root) or a one-line error.
pub fn images(data: &[u8]) {
    use std::io::Write as _;
    let mut f = tempfile_in_memory();
    f.as_file_mut().write_all(data).expect("write the input");
    match bpfcap::input::image::load(f.path(), "fuzz.tar", None) {
        Err(e) => assert!(!e.to_string().contains('\n'), "multi-line error: {e}"),
        // (warnings quote paths from the archive as they are; reports escape them)
        Ok((objects, _warnings)) => {
            assert!(objects.iter().all(|(path, _)| path.starts_with('/')), "a path outside the image's root");
        }
    }
}

/// A temporary file, in memory where /dev/shm is there.
fn tempfile_in_memory() -> tempfile::NamedTempFile {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() { tempfile::NamedTempFile::new_in(shm) } else { tempfile::NamedTempFile::new() }.expect("a temporary file")
}

/// An analysis to check configurations against: a sample object with maps, programs of
/// several types and libbpf's probes.
fn analysis() -> &'static Analysis {
    static A: OnceLock<Analysis> = OnceLock::new();
    A.get_or_init(|| {
        // (an include_bytes! array need not be aligned as the reader needs)
        let bytes = bpfcap::input::embedded::aligned_copy(include_bytes!("../../testdata/xdp.bpf.o"));
        let obj = bpfcap::elf::read_object(&bytes, "xdp").expect("testdata/xdp.bpf.o reads");
        analyse(vec![("xdp.bpf.o".into(), obj)], &options(), rules()).expect("analysis")
    })
}

/// Text → every parser of configuration bpfcap reads (`verify --config`, `check`): each
/// dialect, detected and explicit, then `check` against a sample object's needs, with every
/// renderer (the human one panicked on a finding past column 65535). When a parser of
/// untrusted text is added, call it here too.
pub fn config_parsers(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let r = rules();
    let readers = bpfcap::dialect::ALL.iter().copied().filter(|d| d.reads()).map(Some);
    let dialects: Vec<Option<&'static dyn bpfcap::dialect::Dialect>> = std::iter::once(None).chain(readers).collect();
    let opts = bpfcap::check::CheckOptions { deny_extra: true, kernel: None };
    for d in dialects {
        match bpfcap::dialect::parse(text, "fuzz.conf", d, r) {
            Ok(cfg) => {
                let _ = cfg.delegation(r);
                let a = analysis();
                let report = bpfcap::check::check(&cfg, &a.delegation, &a.requirements, &opts, r);
                let human = bpfcap::check::render::human(&cfg, &report);
                assert!(human.lines().all(|l| !l.chars().any(|c| c.is_control() && c != '\t')), "control in output");
                let _ = bpfcap::check::render::json(&cfg, &report);
                let _ = bpfcap::check::render::sarif(&cfg, &report);
                let github = bpfcap::check::render::github(&cfg, &report);
                assert_eq!(github.lines().count(), report.findings.len(), "an annotation spans lines");
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    let _ = bpfcap::dialect::detect(text, r);
    for kind in ListKind::ALL {
        for item in text.split([':', ',', ' ', '\n']).take(64) {
            let _ = bpfcap::names::parse_item(kind, item, r);
        }
    }
}

/// Text → a header and reasons (as object names and paths bring them) in configuration of
/// every dialect: whatever they hold, the emitted lines outside comments are exactly those of
/// the same delegation under a plain header.
pub fn emit_comments(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let r = rules();
    let d = &analysis().delegation;
    let hostile = |_: ListKind, _: &str| text.to_string();
    let plain = |_: ListKind, _: &str| String::from("plain");
    // (every dialect but JSON, which writes no header and no reasons)
    for dialect in bpfcap::dialect::ALL.iter().filter(|d| d.name() != "json") {
        let target = dialect.name();
        let got = dialect.emit(d, &text, &hostile, r).text;
        let want = dialect.emit(d, "plain", &plain, r).text;
        let directives = |s: &str| -> Vec<String> {
            s.lines().filter(|l| !l.trim_start().starts_with('#')).map(String::from).collect()
        };
        assert_eq!(directives(&got), directives(&want), "{target:?}: a line outside the comments");
        assert!(got.lines().all(|l| !l.ends_with('\\')), "{target:?}: a line continues");
    }
}
