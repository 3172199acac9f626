//! Speed, measured as ratios within one run (timings on shared machines are noisy; the
//! ratios are what matter):
//!
//! 1. analysis: bpfcap reading + analysing each sample object, against libbpf's own
//!    `bpf_object__open` of the same bytes (target: bpfcap is cheaper);
//! 2. verify: the cost of one sandboxed reload through a real token (what `--minimize` pays
//!    per item), against an in-process libbpf load of the same object as root.
//!
//! Run: `cargo bench --bench speed` (part 2 needs root and BPF tokens; it is skipped otherwise).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bpfcap::analysis::{LoaderChoice, Options, analyse};

// as the bpfcap binary does (src/main.rs)
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use bpfcap::rules::{Version, rules};

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

fn time<F: FnMut()>(iters: u32, mut f: F) -> Duration {
    f(); // warm up
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed() / iters
}

fn main() {
    let r = rules();
    let opts = Options {
        programs: vec![],
        loader: LoaderChoice::Libbpf(vec![Version(1, 5), Version(1, 6), Version(1, 7)]),
        with_optional: false,
    };
    libbpf_rs::set_print(None);
    println!("{:<28} {:>12} {:>14} {:>7}", "object", "bpfcap", "libbpf open", "ratio");
    let (mut total_ours, mut total_theirs) = (Duration::ZERO, Duration::ZERO);
    for path in objects() {
        let bytes = std::fs::read(&path).unwrap();
        let name = bpfcap::elf::object_name(&path.display().to_string());
        let ours = time(200, || {
            if let Ok(o) = bpfcap::elf::read_object(&bytes, &name) {
                let _ = analyse(vec![(String::new(), o)], &opts, r);
            }
        });
        let opened_ok = libbpf_rs::ObjectBuilder::default().open_memory(&bytes).is_ok();
        if !opened_ok {
            continue; // libbpf refuses it (legacy maps): nothing to compare
        }
        let theirs = time(200, || {
            let _ = libbpf_rs::ObjectBuilder::default().open_memory(&bytes);
        });
        total_ours += ours;
        total_theirs += theirs;
        println!(
            "{:<28} {:>10.1}µs {:>12.1}µs {:>7.2}",
            path.file_name().unwrap().to_string_lossy(),
            ours.as_secs_f64() * 1e6,
            theirs.as_secs_f64() * 1e6,
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    }
    println!("all objects: bpfcap/libbpf-open = {:.2}", total_ours.as_secs_f64() / total_theirs.as_secs_f64());

    // 2. sandboxed reload cost
    if bpfcap::sandbox::preflight().is_err() {
        println!("verify reload: skipped (needs root and BPF tokens)");
        return;
    }
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/bpfcap");
    let exe = if exe.exists() { exe } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debug/bpfcap") };
    if !exe.exists() {
        println!("verify reload: skipped (build the bpfcap binary first)");
        return;
    }
    let obj = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kprobe.bpf.o");
    let bytes = std::fs::read(&obj).unwrap();
    let a = analyse(vec![(obj.display().to_string(), bpfcap::elf::read_object(&bytes, "kprobe").unwrap())], &opts, r)
        .unwrap();
    let target =
        bpfcap::verify::Target { path: obj.clone(), programs: a.objects[0].selected.iter().cloned().collect() };
    let vopts = bpfcap::verify::VerifyOptions::new(&exe);
    let masks = bpfcap::verify::sandbox_delegation(&a.delegation, r);
    let caps = a.delegation.capability_values(r);
    let sandboxed = time(20, || {
        let o = bpfcap::verify::load(&target, masks.clone(), caps.clone(), &vopts).unwrap();
        assert!(o.loaded);
    });
    let direct = time(20, || {
        let mut o = libbpf_rs::ObjectBuilder::default().open_memory(&bytes).unwrap();
        let _ = &mut o;
        let _loaded = o.load().unwrap();
    });
    println!(
        "verify reload (kprobe.bpf.o, {} items): sandboxed {:.1} ms, in-process load as root {:.1} ms, ratio {:.1}; --minimize ≈ {:.2} s",
        a.delegation.needs().len(),
        sandboxed.as_secs_f64() * 1e3,
        direct.as_secs_f64() * 1e3,
        sandboxed.as_secs_f64() / direct.as_secs_f64(),
        sandboxed.as_secs_f64() * (a.delegation.needs().len() + 1) as f64
    );
}
