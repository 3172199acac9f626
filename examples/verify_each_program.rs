//! Each program of the objects under the given paths, alone, through a real BPF token: the
//! answer `bpfcap analyze --program P` gives loads it, and every item of that answer is
//! required (`bpfcap verify --minimize --program P`). A program the kernel refuses even as
//! root without a token is counted apart ("not a delegation problem").
//!
//! Usage (root, a kernel with BPF tokens):
//!   cargo build --release && cargo run --release --example verify_each_program -- PATH...
//! (the sid chroot of `./dev test`: PATH = /var/tmp/bpfcap-sid/usr/sbin; about 3 minutes for
//! its 600 programs). BPFCAP_BIN names the bpfcap binary to run (default: the one built beside
//! this example). Exit status 1 when a program does not load with its own answer or loads
//! without an item of it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// `bpfcap ARGS...` with `--format json`, parsed.
fn bpfcap(bin: &PathBuf, args: &[&str]) -> Value {
    let out = Command::new(bin).args(args).args(["--format", "json"]).output().expect("run bpfcap");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("bpfcap {}: no JSON ({e}): {}", args.join(" "), String::from_utf8_lossy(&out.stderr))
    })
}

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    assert!(!paths.is_empty(), "usage: verify_each_program PATH...");
    let bin = std::env::var_os("BPFCAP_BIN").map(PathBuf::from).unwrap_or_else(|| {
        // target/<profile>/examples/verify_each_program -> target/<profile>/bpfcap
        let exe = std::env::current_exe().expect("this example's path");
        exe.parent().and_then(|d| d.parent()).expect("target/<profile>").join("bpfcap")
    });
    // each file that holds objects, with the programs that have a program type
    let mut programs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in &paths {
        let analysis = bpfcap(&bin, &["analyze", path]);
        for object in analysis["objects"].as_array().into_iter().flatten() {
            let file = object["path"].as_str().unwrap_or_default();
            let file = file.split_once('#').map_or(file, |(f, _)| f).to_string();
            let names = object["programs"].as_array().into_iter().flatten().filter(|p| !p["prog_type"].is_null());
            programs.entry(file).or_default().extend(names.filter_map(|p| p["name"].as_str().map(String::from)));
        }
    }
    let (mut minimal, mut refused, mut wrong) = (0, 0, Vec::new());
    for (file, names) in &mut programs {
        names.sort();
        names.dedup();
        for name in names.iter() {
            let v = bpfcap(&bin, &["verify", "--minimize", "--program", name, file]);
            let extra: Vec<String> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["required"] == Value::Bool(false))
                .map(|i| i["item"].to_string())
                .collect();
            let diagnosis: Vec<&str> =
                v["targets"].as_array().into_iter().flatten().filter_map(|t| t["diagnosis"].as_str()).collect();
            let verdict = if v["loaded"] == Value::Bool(true) && extra.is_empty() {
                minimal += 1;
                "minimal".to_string()
            } else if v["loaded"] != Value::Bool(true)
                && !diagnosis.is_empty()
                && diagnosis.iter().all(|d| d.starts_with(bpfcap::verify::NOT_THE_TOKEN))
            {
                refused += 1;
                "refused by the kernel even as root".to_string()
            } else {
                let why = if extra.is_empty() { diagnosis.join("; ") } else { format!("loads without {extra:?}") };
                wrong.push(format!("{file} {name}: {why}"));
                format!("WRONG: {why}")
            };
            println!("{file} {name}: {verdict}");
        }
    }
    println!("{minimal} programs minimal, {refused} refused by the kernel even as root, {} wrong answers", wrong.len());
    for w in &wrong {
        println!("wrong: {w}");
    }
    std::process::exit(i32::from(!wrong.is_empty()));
}
