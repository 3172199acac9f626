//! Every input committed under corpus/ and regressions/, replayed through its fuzz target's
//! body: the corpus keeps covering what the fuzzers reached, and each minimised reproducer of
//! a bug stays fixed.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{}: the {target} target fails on it", f.display());
            n += 1;
        }
    }
    assert!(n > 0, "no committed input for the {target} target");
    println!("{target}: {n} inputs");
}

#[test]
fn read_object() {
    replay("read_object", bpfcap_fuzz::read_object);
}

#[test]
fn embedded() {
    replay("embedded", bpfcap_fuzz::embedded);
}

#[test]
fn config_parsers() {
    replay("config_parsers", bpfcap_fuzz::config_parsers);
}

#[test]
fn emit_comments() {
    replay("emit_comments", bpfcap_fuzz::emit_comments);
}

#[test]
fn images() {
    replay("images", bpfcap_fuzz::images);
}
