//! For scripts/bench-commands.sh: writes every BPF object found under the given paths (files,
//! and objects embedded in executables and libraries) to OUT_DIR as a file of its own, so that
//! bpfcap and libbpf can be timed on the same files.
//!
//! Usage: extract_objects OUT_DIR PATH...

fn main() {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().expect("usage: extract_objects OUT_DIR PATH..."));
    let paths: Vec<std::path::PathBuf> = args.map(Into::into).collect();
    let (inputs, _) = bpfcap::input::load_inputs(&paths).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(&out).expect("create OUT_DIR");
    for (i, (_, object)) in inputs.iter().enumerate() {
        let source = object.source.as_ref().expect("an object read from a file knows where its bytes are");
        let (bytes, name) = (bpfcap::input::read_object_ref(source).unwrap_or_else(|e| panic!("{e}")), &source.name);
        std::fs::write(out.join(format!("{i:04}.{name}.bpf.o")), bytes).expect("write object");
    }
    println!("{} objects written to {}", inputs.len(), out.display());
}
