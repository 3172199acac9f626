//! Untrusted text never becomes configuration or terminal control: names read from objects
//! (programs, sections, maps) and file names can hold newlines, escape sequences and Unicode
//! controls. Emitted configuration in every dialect holds exactly the lines bpfcap means to
//! write (those of a twin object with plain names: the names live only in escaped comments),
//! and what bpfcap prints for people holds no control character but the line ends.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::builder::*;

const BIN: &str = env!("CARGO_BIN_EXE_bpfcap");

/// A kprobe program calling bpf_ktime_get_ns and a legacy hash map, under the given names.
fn object(section: &str, program: &str, map: &str) -> Vec<u8> {
    let mut b = ElfBuilder::new();
    // r0 = 0; call bpf_ktime_get_ns; exit
    let x = b.exec(section, &[insn(0xb7, 0, 0, 0), call_helper(5), EXIT]);
    b.func(program, x, 0, 24);
    // struct bpf_map_def: BPF_MAP_TYPE_HASH, key 4, value 8, 16 entries, no flags
    let def: Vec<u8> = [1u32, 4, 8, 16, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let m = b.section("maps", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, def);
    b.object(map, m, 0, 20);
    b.section("license", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, b"GPL\0".to_vec());
    b.build()
}

const HOSTILE_FILE: &str = "a\n[Service]\nExecStartPre=sh -c id\n.bpf.o";
const HOSTILE_SECTION: &str = "kprobe/x\n[Service]\nExecStartPre=/tmp/pwn-section\n";
const HOSTILE_PROGRAM: &str = "p\nUser=root\n\x1b]0;owned\x07\u{202e}\\";
const HOSTILE_MAP: &str = "m\r\nExecStartPre=/tmp/pwn-map\\";

/// Two directories: one holding the hostile object under a hostile file name, one its twin
/// with plain names.
fn inputs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let hostile = tmp.path().join("hostile");
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&hostile).unwrap();
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(hostile.join(HOSTILE_FILE), object(HOSTILE_SECTION, HOSTILE_PROGRAM, HOSTILE_MAP)).unwrap();
    std::fs::write(plain.join("b.bpf.o"), object("kprobe/x", "p", "m")).unwrap();
    (tmp, hostile, plain)
}

fn run(args: &[&str], input: &Path) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).arg(input).env("COLUMNS", "200").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("UTF-8 output"),
        String::from_utf8(out.stderr).expect("UTF-8 output"),
    )
}

/// No character that moves the cursor, changes the terminal or reorders text: only line ends
/// (and tabs) among the controls.
fn assert_no_controls(what: &str, s: &str) {
    for (i, l) in s.lines().enumerate() {
        if let Some(c) = l.chars().find(|c| (c.is_control() && *c != '\t') || ('\u{2028}'..='\u{202e}').contains(c)) {
            panic!("{what}: line {} holds the control {c:?}: {l:?}", i + 1);
        }
    }
}

fn is_comment(l: &str) -> bool {
    l.trim_start().starts_with('#')
}

#[test]
fn emitted_configuration_holds_only_the_lines_bpfcap_means_to_write() {
    let (_tmp, hostile, plain) = inputs();
    for target in ["systemd", "mount-options", "mount", "fstab", "mount-unit", "incus", "lxd", "json"] {
        let (code, text, err) = run(&["emit", "--target", target], &hostile);
        assert_eq!(code, 0, "{target}: {err}");
        let (_, twin, _) = run(&["emit", "--target", target], &plain);
        assert_no_controls(target, &text);
        assert_no_controls(&format!("{target} (notes)"), &err);
        if target == "json" {
            let a: serde_json::Value = serde_json::from_str(&text).unwrap();
            let b: serde_json::Value = serde_json::from_str(&twin).unwrap();
            assert_eq!(a, b, "json: the document differs from the plain twin's");
            continue;
        }
        // every line that is not a comment is one the twin has too, in the same order
        let meant: Vec<&str> = twin.lines().filter(|l| !is_comment(l)).collect();
        let got: Vec<&str> = text.lines().filter(|l| !is_comment(l)).collect();
        assert_eq!(got, meant, "{target}: lines outside comments differ from the plain twin's:\n{text}");
        // and no comment continues onto the next line (systemd and shells join a line that
        // ends in a backslash with the next)
        for l in text.lines().filter(|l| is_comment(l)) {
            assert!(!l.ends_with('\\'), "{target}: a comment ends with a backslash: {l:?}");
        }
        // the names are there, escaped, where the twin's are (the comments still say why)
        if target == "systemd" {
            assert!(text.contains("p\\nUser=root\\n\\x1b]0;owned\\x07\\u{202e}\\x5c"), "{text}");
            assert!(text.contains("ExecStartPre=sh -c id\\n"), "{text}");
        }
    }
}

#[test]
fn what_bpfcap_prints_for_people_holds_no_control_characters() {
    let (_tmp, hostile, _plain) = inputs();
    let (code, table, err) = run(&["analyze"], &hostile);
    assert_eq!(code, 0, "{err}");
    assert_no_controls("analyze", &table);
    assert_no_controls("analyze (stderr)", &err);
    for l in table.lines() {
        for injected in ["[Service]", "ExecStartPre=", "User=root"] {
            assert!(!l.trim_start().starts_with(injected), "analyze: a name starts a line: {l:?}");
        }
    }
    // JSON keeps the names exactly (a program reads them back as they are)
    let (_, json, _) = run(&["analyze", "--format", "json"], &hostile);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let progs = doc["objects"][0]["programs"].as_array().unwrap();
    assert_eq!(progs[0]["name"], HOSTILE_PROGRAM);
    // an error that names the file
    let missing = hostile.join("missing\x1b[2J.o");
    let (code, _, err) = run(&["analyze"], &missing);
    assert_eq!(code, 2);
    assert_no_controls("error", &err);
}

#[test]
fn check_findings_hold_no_control_characters_in_any_format() {
    let (_tmp, _hostile, plain) = inputs();
    let cfg = plain.parent().unwrap().join("bpf.conf");
    std::fs::write(
        &cfg,
        "[Service]\nPrivateBPF=yes\nPrivateUsers=self\nBPFDelegateCommands=BPFProgLoad,\x1b[2Jevil\u{202e}x\nBPFDelegateMaps=\x1b]0;t\x07\n",
    )
    .unwrap();
    for format in ["human", "json", "sarif", "github"] {
        let out =
            Command::new(BIN).args(["check", "--format", format, "--config"]).arg(&cfg).arg(&plain).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{format}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert_no_controls(format, &text);
        if format == "json" || format == "sarif" {
            // the documents' strings, decoded, are free of them too where they are shown to people
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            let messages: Vec<String> = if format == "json" {
                doc["findings"].as_array().unwrap().iter().map(|f| f["message"].as_str().unwrap().to_string()).collect()
            } else {
                doc["runs"][0]["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["message"]["text"].as_str().unwrap().to_string())
                    .collect()
            };
            assert!(!messages.is_empty());
            for m in messages {
                assert_no_controls(&format!("{format} message"), &m);
            }
        }
    }
}
