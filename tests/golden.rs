//! Expected-output files: for every sample object, `bpfcap analyze --format json` must print
//! exactly testdata/<name>.expected.json. The files are reviewed like code; to regenerate them
//! after a deliberate change, run `BPFCAP_BLESS=1 cargo test --test golden` and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

fn objects() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .collect();
    v.sort();
    v
}

#[test]
fn analyze_json_matches_expected_files() {
    let bless = std::env::var_os("BPFCAP_BLESS").is_some();
    let mut failures = Vec::new();
    let objs = objects();
    assert!(objs.len() >= 10);
    for obj in objs {
        let file = obj.file_name().unwrap().to_string_lossy().into_owned();
        let rel = format!("testdata/{file}");
        let out = Command::new(env!("CARGO_BIN_EXE_bpfcap"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["analyze", "--format", "json", &rel])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{rel}: {}", String::from_utf8_lossy(&out.stderr));
        let got = String::from_utf8(out.stdout).unwrap();
        let expected_path = obj.with_file_name(file.replace(".bpf.o", ".expected.json"));
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} is missing; create it with BPFCAP_BLESS=1 and review it", expected_path.display()));
        if got != want {
            failures.push(format!("{rel}: output differs from {}", expected_path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn output_is_deterministic() {
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_bpfcap"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["analyze", "--format", "json", "testdata"])
            .output()
            .unwrap()
            .stdout
    };
    let a = run();
    assert!(!a.is_empty());
    assert_eq!(a, run());
}
