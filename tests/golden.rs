//! Expected-output files: for every sample object, `bpfcap analyze --format json` must print
//! exactly testdata/<name>.expected.json, and its needs alone (the document without its reason
//! texts and warnings) must be testdata/<name>.needs.json. A change of wording changes only the
//! first; the second pins what is needed, so that a reviewer sees at once whether a change
//! moved an item. The files are reviewed like code; to regenerate them after a deliberate
//! change, run `BPFCAP_BLESS=1 cargo test --test golden` and review the diff.

use std::process::Command;

mod common;
use common::sample_objects as objects;

#[test]
fn analyze_json_matches_expected_files() {
    let bless = std::env::var_os("BPFCAP_BLESS").is_some();
    let mut failures = Vec::new();
    for obj in objects() {
        let file = obj.file_name().unwrap().to_string_lossy().into_owned();
        let rel = format!("testdata/{file}");
        let out = Command::new(env!("CARGO_BIN_EXE_bpfcap"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["analyze", "--format", "json", &rel])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{rel}: {}", String::from_utf8_lossy(&out.stderr));
        let got = String::from_utf8(out.stdout).unwrap();
        let needs = serde_json::to_string_pretty(&needs_of(serde_json::from_str(&got).unwrap())).unwrap() + "\n";
        for (suffix, got) in [(".needs.json", &needs), (".expected.json", &got)] {
            let path = obj.with_file_name(file.replace(".bpf.o", suffix));
            if bless {
                std::fs::write(&path, got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!("{} is missing; create it with BPFCAP_BLESS=1 and review it", path.display())
            });
            if *got != want {
                failures.push(format!("{rel}: output differs from {}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An `analyze` document's needs: what is delegated and why in kind, not in words (the reasons
/// and warnings go; an optional entry keeps its items and loader steps).
fn needs_of(mut doc: serde_json::Value) -> serde_json::Value {
    let d = doc.as_object_mut().expect("a JSON object");
    d.remove("reasons");
    d.remove("warnings");
    for o in d.get_mut("optional").and_then(|o| o.as_array_mut()).into_iter().flatten() {
        let o = o.as_object_mut().expect("an optional entry");
        o.retain(|k, _| k == "items" || k == "loader_step");
    }
    for o in d.get_mut("objects").and_then(|o| o.as_array_mut()).into_iter().flatten() {
        o.as_object_mut().expect("an object").remove("warnings");
    }
    doc
}

#[test]
fn needs_leave_out_words_alone() {
    let doc = serde_json::json!({
        "delegation": {"commands": ["map_create"]},
        "reasons": {"commands": {}},
        "warnings": ["w"],
        "optional": [{"items": [1], "loader_step": "s", "lost": "l", "reason": {}}],
        "objects": [{"path": "p", "warnings": ["w"], "programs": []}],
    });
    let want = serde_json::json!({
        "delegation": {"commands": ["map_create"]},
        "optional": [{"items": [1], "loader_step": "s"}],
        "objects": [{"path": "p", "programs": []}],
    });
    assert_eq!(needs_of(doc), want);
}

/// The output does not depend on how the work was spread over threads, on a process's hash
/// seeds, or on the order of the inputs: the same bytes from a run on one core and a run on
/// every core; with the inputs reversed, the same answer (delegation, capabilities, reasons,
/// optional items) and the same objects, listed in the order given.
#[test]
fn output_is_deterministic() {
    let files: Vec<String> =
        objects().iter().map(|o| format!("testdata/{}", o.file_name().unwrap().to_string_lossy())).collect();
    assert!(files.len() >= 20, "{files:?}");
    let run = |prefix: &[&str], files: &[String]| -> Vec<u8> {
        let (program, first) = match prefix {
            [] => (env!("CARGO_BIN_EXE_bpfcap"), None),
            [p, rest @ ..] => (*p, Some(rest)),
        };
        let mut cmd = Command::new(program);
        if let Some(rest) = first {
            cmd.args(rest).arg(env!("CARGO_BIN_EXE_bpfcap"));
        }
        let out = cmd
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["analyze", "--format", "json", "testdata"])
            .args(files)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let parallel = run(&[], &[]);
    assert!(!parallel.is_empty());
    // (util-linux taskset: the process may run on CPU 0 only, so bpfcap starts one worker)
    let serial = run(&["taskset", "-c", "0"], &[]);
    assert!(parallel == serial, "the output on one core differs from the output on all cores");
    let forward: serde_json::Value = serde_json::from_slice(&run(&[], &files)).unwrap();
    let reversed_files: Vec<String> = files.iter().rev().cloned().collect();
    let reversed: serde_json::Value = serde_json::from_slice(&run(&[], &reversed_files)).unwrap();
    for key in ["delegation", "capabilities", "mount_options", "reasons", "optional", "host_capabilities"] {
        assert_eq!(forward[key], reversed[key], "{key} depends on the order of the inputs");
    }
    let objects = |v: &serde_json::Value| -> Vec<serde_json::Value> { v["objects"].as_array().unwrap().clone() };
    let mut back = objects(&reversed);
    back.reverse();
    // the directory's objects come first in both runs, then the files in the order given
    let dir = objects(&forward).len() - files.len();
    assert_eq!(
        objects(&forward)[dir..],
        back[..files.len()],
        "an object's analysis depends on the order of the inputs"
    );
}

fn analyze_json(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_bpfcap")).current_dir(env!("CARGO_MANIFEST_DIR")).args(args).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), v, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn raw_loader_leaves_out_libbpf_probes() {
    let (_, libbpf, _) = analyze_json(&["analyze", "--format", "json", "testdata/kprobe.bpf.o"]);
    let (_, raw, _) = analyze_json(&["analyze", "--format", "json", "--loader", "raw", "testdata/kprobe.bpf.o"]);
    assert_eq!(raw["loader"], "raw");
    // libbpf's probe_loading needs socket_filter; the object itself has only kprobe programs
    assert!(libbpf["delegation"]["programs"].as_array().unwrap().iter().any(|p| p == "socket_filter"));
    assert!(!raw["delegation"]["programs"].as_array().unwrap().iter().any(|p| p == "socket_filter"));
    assert!(raw["delegation"]["programs"].as_array().unwrap().iter().any(|p| p == "kprobe"));
}

#[test]
fn program_selection_narrows_programs_not_maps() {
    let (code, v, err) =
        analyze_json(&["analyze", "--format", "json", "--program", "sock_plain", "testdata/socket.bpf.o"]);
    assert_eq!(code, Some(0), "{err}");
    // sock_perfmon (probe_read_kernel, perfmon helpers) is not selected: no tracepoint, no CAP_PERFMON
    assert!(!v["delegation"]["programs"].as_array().unwrap().iter().any(|p| p == "tracepoint"));
    assert!(!v["capabilities"].as_array().unwrap().iter().any(|c| c == "CAP_PERFMON"));
    // every map is still created
    assert!(v["delegation"]["maps"].as_array().unwrap().iter().any(|m| m == "array"));
    let progs = v["objects"][0]["programs"].as_array().unwrap();
    assert!(progs.iter().any(|p| p["name"] == "sock_perfmon" && p["selected"] == false));
}

#[test]
fn bad_input_exits_2_with_a_diagnostic() {
    let (code, _, err) = analyze_json(&["analyze", "--program", "sock_plian", "testdata/socket.bpf.o"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("sock_plain"), "suggestion expected: {err}");
    let (code, _, err) = analyze_json(&["analyze", "--libbpf", "0.3", "testdata/socket.bpf.o"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = analyze_json(&["analyze", "Cargo.toml"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("Cargo.toml"), "{err}");
    let (code, _, _) = analyze_json(&["analyze", "/nonexistent/x.o"]);
    assert_eq!(code, Some(2));
}

#[test]
fn kfunc_calls_are_found_with_their_source_line() {
    let (_, v, _) = analyze_json(&["analyze", "--format", "json", "testdata/kfunc.bpf.o"]);
    let progs = v["objects"][0]["programs"].as_array().unwrap();
    let task = progs.iter().find(|p| p["name"] == "kfunc_task_ref").unwrap();
    assert!(task["kfuncs"].as_array().unwrap().iter().any(|k| k == "bpf_task_acquire"), "{task}");
    let reasons = v["reasons"]["capabilities"]["CAP_BPF"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r["kfunc"] == "bpf_task_acquire"
                && r["location"].as_str().is_some_and(|l| l.contains("kfunc.bpf.c:"))),
        "{reasons:?}"
    );
}
