//! Baseline for scripts/bench-commands.sh: opens every BPF object under the given paths with
//! libbpf's own `bpf_object__open` (through libbpf-rs), the work libbpf does before loading,
//! and prints how many it opened.

fn walk(p: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    if p.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(p).unwrap().flatten().map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            walk(&e, out);
        }
    } else if p.to_string_lossy().ends_with(".o") {
        out.push(p.to_path_buf());
    }
}

fn main() {
    libbpf_rs::set_print(None);
    let mut files = Vec::new();
    for a in std::env::args().skip(1) {
        walk(std::path::Path::new(&a), &mut files);
    }
    let mut opened = 0;
    for f in &files {
        if libbpf_rs::ObjectBuilder::default().open_file(f).is_ok() {
            opened += 1;
        }
    }
    println!("libbpf opened {opened} of {} objects", files.len());
}
