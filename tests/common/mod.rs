//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub mod builder;

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
