//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub mod builder;

/// bpfcap with `args`, run in the project's directory: (exit code, stdout, stderr), stderr
/// piped.
pub fn bpfcap(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpfcap"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every sample object in testdata/ (`*.bpf.o`), sorted.
pub fn sample_objects() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("testdata/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .collect();
    v.sort();
    assert!(v.len() >= 10, "expected the sample objects in testdata/, found {}", v.len());
    v
}

/// Samples with legacy `maps` sections, which libbpf 1.x refuses to open.
pub fn is_legacy(p: &Path) -> bool {
    let n = p.to_string_lossy();
    n.contains("maps_legacy") || n.contains("maps_iproute2")
}

/// Whether a test that needs `what` may run; without it the test is skipped with a printed
/// reason, unless BPFCAP_REQUIRE_TOKEN_TESTS=1 makes a missing precondition a failure.
pub fn require(available: Result<(), String>, what: &str) -> bool {
    match available {
        Ok(()) => true,
        Err(e) => {
            if std::env::var("BPFCAP_REQUIRE_TOKEN_TESTS").as_deref() == Ok("1") {
                panic!("{what} required but cannot run: {e}");
            }
            eprintln!("SKIPPED {what}: {e}");
            false
        }
    }
}

/// The Debian packages of the sid chroot (`./dev test` provides it as BPFCAP_SYSTEMD_ROOT)
/// whose files carry BPF objects built by others: systemd's libsystemd-core, the libbpf-tools
/// executables, bpftool, and xdp-tools with libxdp (object files and executables).
pub const PACKAGES_BUILT_BY_OTHERS: [&str; 6] =
    ["libsystemd-shared", "systemd", "libbpf-tools", "bpftool", "xdp-tools", "libxdp1"];

/// Every regular file of those packages, from dpkg's file lists. BPFCAP_EVALUATION_PACKAGES
/// (comma-separated, installed in the chroot) names other packages instead, for measuring
/// bpfcap on objects its tests have never seen.
pub fn files_built_by_others(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = std::collections::BTreeSet::new();
    let chosen = std::env::var("BPFCAP_EVALUATION_PACKAGES").ok();
    let packages: Vec<&str> = match &chosen {
        Some(list) => list.split(',').map(str::trim).filter(|p| !p.is_empty()).collect(),
        None => PACKAGES_BUILT_BY_OTHERS.to_vec(),
    };
    for pkg in packages {
        let info = root.join("var/lib/dpkg/info");
        let list = [format!("{pkg}:amd64.list"), format!("{pkg}.list")]
            .iter()
            .map(|l| info.join(l))
            .find(|l| l.is_file())
            .unwrap_or_else(|| panic!("package {pkg} is not installed in {}", root.display()));
        for line in std::fs::read_to_string(list).expect("dpkg file list").lines() {
            let p = root.join(line.trim_start_matches('/'));
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
                files.insert(p);
            }
        }
    }
    files.into_iter().collect()
}

/// The sid chroot of `./dev test` (BPFCAP_SYSTEMD_ROOT), or why a test that needs it cannot run.
pub fn sid_root() -> Result<PathBuf, String> {
    match std::env::var_os("BPFCAP_SYSTEMD_ROOT").map(PathBuf::from) {
        Some(r) if r.join("var/lib/dpkg/info").is_dir() => Ok(r),
        _ => Err("BPFCAP_SYSTEMD_ROOT (the Debian sid chroot of ./dev test) is not set".to_string()),
    }
}

/// Every BPF object of the objects built by others (files that are or embed one), as inputs
/// name them: (display path, object), in file order.
pub fn objects_built_by_others(root: &Path) -> Vec<(String, bpfcap::model::Object)> {
    // (files that neither are nor embed a BPF object are errors when named: left out)
    files_built_by_others(root)
        .into_iter()
        .filter_map(|f| bpfcap::input::load_inputs(&[f]).ok())
        .flat_map(|(objects, _)| objects)
        .collect()
}

/// Where the bytes of an object that inputs read are: the reference its model carries.
pub fn source_of(o: &bpfcap::model::Object) -> &bpfcap::model::ObjectRef {
    o.source.as_ref().expect("an object read from a file knows where its bytes are")
}

/// The bytes `source` points at.
pub fn bytes_of(source: &bpfcap::model::ObjectRef) -> Vec<u8> {
    bpfcap::input::read_object_ref(source).unwrap_or_else(|e| panic!("{}: {e}", source.display))
}

/// The object `source` points at (a file, or an object embedded in an executable) in a file of
/// its own in `dir`, readable by every user (the sandbox and the Go loaders take files; one
/// file per display path: several objects of a file can have one name).
pub fn object_file(dir: &Path, source: &bpfcap::model::ObjectRef) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let unique: String = source.display.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let path = dir.join(format!("{unique}.o"));
    std::fs::write(&path, bytes_of(source)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

/// Whether libbpf loads the object `source` points at (all its programs, or `program` alone)
/// in this process, as host root, without a token (the tests that call it run as root), with
/// the same sizing of max_entries-0 maps as the sandbox: what the kernel takes at all. Err:
/// libbpf cannot open it.
pub fn libbpf_loads_as_root(source: &bpfcap::model::ObjectRef, program: Option<&str>) -> Result<bool, String> {
    let display = &source.display;
    let bytes = bpfcap::input::read_object_ref(source).map_err(|e| e.to_string())?;
    let mut open = libbpf_rs::ObjectBuilder::default()
        .name(&source.name)
        .and_then(|b| b.open_memory(&bytes))
        .map_err(|e| format!("{display}: libbpf cannot open it: {e}"))?;
    if let Some(program) = program {
        for mut p in open.progs_mut() {
            let keep = p.name().to_string_lossy() == program;
            p.set_autoload(keep);
        }
    }
    bpfcap::sandbox::size_runtime_sized_maps(&mut open);
    bpfcap::sandbox::without_pinning(&mut open);
    Ok(open.load().is_ok())
}

/// BPFCAP_EVALUATION=full: measure every program, not a sample.
pub fn full_evaluation() -> bool {
    std::env::var("BPFCAP_EVALUATION").as_deref() == Ok("full")
}

/// The numbers of capabilities, by their names in rules/kernel/capabilities.toml.
pub fn caps(names: &[&str]) -> Vec<u32> {
    let r = bpfcap::rules::rules();
    names.iter().map(|n| r.capability_value(n).unwrap_or_else(|| panic!("unknown capability {n}"))).collect()
}
