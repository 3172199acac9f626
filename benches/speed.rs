//! Speed, measured as ratios within one run (timings on shared machines are noisy; the
//! ratios are what matter):
//!
//! 1. per object: bpfcap reading + analysing each sample object, against libbpf's own
//!    `bpf_object__open` of the same bytes (target: bpfcap is cheaper), and bpfcap's reading
//!    alone (the object model without the analysis: the floor of its cost);
//! 2. a corpus of real objects built by others (the BPF objects of the Debian packages in the
//!    sid chroot that `./dev test` builds, BPFCAP_SYSTEMD_ROOT; or any tree in
//!    BPFCAP_BENCH_TREE): libbpf opening every object one after another, against bpfcap
//!    analysing them one after another (the cost per core) and as one analysis on every core
//!    (what `bpfcap analyze` does with a tree);
//! 3. verify: the cost of one sandboxed reload through a real token (what `--minimize` pays
//!    per item), against an in-process libbpf load of the same object as root;
//! 4. hostile inputs grow linearly: for each kind of input that once took quadratic time
//!    (check of a drop-in with many items, with many lines, with many findings; the skeleton
//!    name search among many strings), the time for the input doubled against the time for
//!    the input itself (target: at most about 2).
//!
//! Run: `cargo bench --bench speed` (part 3 needs root and BPF tokens; it is skipped otherwise);
//! `cargo bench --bench speed -- hostile` runs part 4 alone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bpfcap::analysis::{Analyser, LoaderChoice, Options, analyse};
use bpfcap::rules::{Version, rules};

// as the bpfcap binary does (src/main.rs)
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// The middle of several measurements taken in turns with the others of the same run.
fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The objects of a tree of real files (as (name, bytes)): from BPFCAP_BENCH_TREE, or the
/// directories of the sid chroot's packages that carry BPF objects.
/// (libbpf object name, bytes)
type NamedBytes = (String, Vec<u8>);

fn real_objects() -> Option<(String, Vec<NamedBytes>)> {
    let dirs: Vec<PathBuf> = match (std::env::var_os("BPFCAP_BENCH_TREE"), std::env::var_os("BPFCAP_SYSTEMD_ROOT")) {
        (Some(t), _) => vec![t.into()],
        (None, Some(root)) => ["usr/sbin", "usr/lib/x86_64-linux-gnu/bpf", "usr/lib/x86_64-linux-gnu/systemd"]
            .iter()
            .map(|d| Path::new(&root).join(d))
            .filter(|d| d.is_dir())
            .collect(),
        _ => return None,
    };
    let (inputs, _) = bpfcap::input::load_inputs(&dirs).ok()?;
    let objects = inputs
        .iter()
        .filter_map(|(_, o)| o.source.as_ref())
        .filter_map(|s| Some((s.name.clone(), bpfcap::input::read_object_ref(s).ok()?)))
        .filter(|(_, bytes)| libbpf_rs::ObjectBuilder::default().open_memory(bytes).is_ok())
        .collect();
    Some((dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" "), objects))
}

/// The time of `f(2n)` against `f(n)`, each the median of 5 runs taken in turns.
fn doubling_ratio(n: usize, f: impl Fn(usize)) -> (Duration, Duration, f64) {
    let (mut small, mut large) = (Vec::new(), Vec::new());
    f(n);
    for _ in 0..5 {
        small.push(time(1, || f(n)));
        large.push(time(1, || f(2 * n)));
    }
    let (s, l) = (median(small), median(large));
    (s, l, l.as_secs_f64() / s.as_secs_f64())
}

fn hostile_inputs_grow_linearly() {
    let r = rules();
    println!("\n4. hostile inputs: time of the input doubled / time of the input (linear: about 2)");
    let obj = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/xdp.bpf.o")).unwrap();
    let obj = bpfcap::elf::read_object(&obj, "xdp").unwrap();
    let opts = Options { programs: vec![], loader: LoaderChoice::libbpf(vec![Version(1, 7)]), with_optional: false };
    let a = analyse(vec![("xdp.bpf.o".into(), obj)], &opts, r).unwrap();
    let check = |text: String| {
        let cfg = bpfcap::dialect::parse(&text, "bench.conf", None, r).unwrap();
        let report = bpfcap::check::check(
            &cfg,
            &a.delegation,
            &a.requirements,
            &bpfcap::check::CheckOptions { deny_extra: true, kernel: None },
            r,
        );
        std::hint::black_box(bpfcap::check::render::json(&cfg, &report));
        std::hint::black_box(bpfcap::check::render::human(&cfg, &report));
    };
    // (what, size, run at size n)
    type Case<'a> = (&'a str, usize, &'a dyn Fn(usize));
    let cases: [Case; 4] = [
        ("check: items on one line (findings)", 20_000, &|n| {
            check(format!(
                "[Service]\nPrivateBPF=yes\nBPFDelegateCommands={}\n",
                (0..n).map(|i| format!("bogus{i}")).collect::<Vec<_>>().join(",")
            ))
        }),
        ("check: BPFDelegate*= lines", 50_000, &|n| {
            check(format!("[Service]\nPrivateBPF=yes\n{}", "BPFDelegateMaps=BPFMapTypeHash\n".repeat(n)))
        }),
        ("check: mount option items", 50_000, &|n| check(format!("delegate_cmds={}\n", vec!["bogus"; n].join(":")))),
        ("embedded: strings around 64 objects", 200_000, &|n| {
            let mut file = Vec::new();
            for i in 0..n {
                file.extend(format!("\0s{i}").bytes());
            }
            let one = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/globals.bpf.o")).unwrap();
            for _ in 0..64 {
                while file.len() % 8 != 0 {
                    file.push(0);
                }
                file.extend(&one);
            }
            std::hint::black_box(bpfcap::input::embedded::extract("bench.bin", &file));
        }),
    ];
    for (what, n, f) in cases {
        let (s, l, ratio) = doubling_ratio(n, f);
        println!(
            "{what:<40} n={n:<7} {:>9.1} ms  2n: {:>9.1} ms  ratio {ratio:.2}",
            s.as_secs_f64() * 1e3,
            l.as_secs_f64() * 1e3
        );
    }
}

fn main() {
    // `cargo bench --bench speed -- hostile`: part 4 alone
    if !std::env::args().any(|a| a == "hostile") {
        parts_1_to_3();
    }
    hostile_inputs_grow_linearly();
}

fn parts_1_to_3() {
    let r = rules();
    let opts = Options {
        programs: vec![],
        loader: LoaderChoice::libbpf(vec![Version(1, 5), Version(1, 6), Version(1, 7)]),
        with_optional: false,
    };
    // The per-object figures (parts 1 and 2, one object after another) are each object's own
    // cost: what depends on the rules alone is made once, before the clock runs, as bpfcap
    // does once per run (the rules parsed; the analyser's rule-only reason texts). The corpus
    // as one analysis is the command's whole run: a new analyser each time.
    let analyser = Analyser::new(r);
    libbpf_rs::set_print(None);
    println!("1. per object (testdata/)");
    println!("{:<28} {:>12} {:>14} {:>7}", "object", "bpfcap", "libbpf open", "ratio");
    let (mut total_ours, mut total_theirs, mut total_read) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for path in objects() {
        let bytes = std::fs::read(&path).unwrap();
        let name = bpfcap::elf::object_name(&path.display().to_string());
        let ours = time(200, || {
            if let Ok(o) = bpfcap::elf::read_object(&bytes, &name) {
                let _ = analyser.analyse(vec![(String::new(), o)], &opts);
            }
        });
        let opened_ok = libbpf_rs::ObjectBuilder::default().open_memory(&bytes).is_ok();
        if !opened_ok {
            continue; // libbpf refuses it (legacy maps): nothing to compare
        }
        let theirs = time(200, || {
            let _ = libbpf_rs::ObjectBuilder::default().open_memory(&bytes);
        });
        // reading alone (the object model, no analysis): the floor of bpfcap's cost
        let read = time(200, || {
            let _ = std::hint::black_box(bpfcap::elf::read_object(&bytes, &name));
        });
        total_ours += ours;
        total_theirs += theirs;
        total_read += read;
        println!(
            "{:<28} {:>10.1}µs {:>12.1}µs {:>7.2}",
            path.file_name().unwrap().to_string_lossy(),
            ours.as_secs_f64() * 1e6,
            theirs.as_secs_f64() * 1e6,
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    }
    println!(
        "all objects: bpfcap/libbpf-open = {:.2} (reading alone: {:.2})",
        total_ours.as_secs_f64() / total_theirs.as_secs_f64(),
        total_read.as_secs_f64() / total_theirs.as_secs_f64()
    );

    // 2. a corpus of real objects built by others
    match real_objects() {
        None => println!("\n2. corpus of real objects: skipped (set BPFCAP_SYSTEMD_ROOT or BPFCAP_BENCH_TREE)"),
        Some((from, objs)) => {
            let n = objs.len();
            let bytes_total: usize = objs.iter().map(|(_, b)| b.len()).sum();
            let open_all = || {
                for (_, b) in &objs {
                    let _ = libbpf_rs::ObjectBuilder::default().open_memory(b);
                }
            };
            let read_each = || {
                for (name, b) in &objs {
                    std::hint::black_box(bpfcap::elf::read_object(b, name).unwrap());
                }
            };
            let analyse_each = || {
                for (name, b) in &objs {
                    let o = bpfcap::elf::read_object(b, name).unwrap();
                    let _ = analyser.analyse(vec![(name.clone(), o)], &opts);
                }
            };
            // as `bpfcap analyze` does with a tree: read and analyse on every core, one union
            // (the result is kept until the measurement ends: the command does not free it)
            let kept = std::cell::RefCell::new(Vec::new());
            let analyse_corpus = || {
                let load = |i: usize| -> Result<bpfcap::analysis::Loaded, bpfcap::elf::ElfError> {
                    let (name, b) = &objs[i];
                    Ok(bpfcap::analysis::Loaded {
                        objects: vec![(name.clone(), bpfcap::elf::read_object(b, name)?)],
                        warnings: vec![],
                    })
                };
                kept.borrow_mut().push(Analyser::new(r).analyse_stream(n, load, &opts));
            };
            let (mut lib, mut read, mut each, mut corpus) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..7 {
                lib.push(time(3, open_all));
                read.push(time(3, read_each));
                each.push(time(3, analyse_each));
                corpus.push(time(3, analyse_corpus));
                kept.borrow_mut().clear();
            }
            // the spread of each measurement across the rounds, printed beside its median
            let spread = |v: &[Duration]| {
                let ms = |d: &Duration| d.as_secs_f64() * 1e3;
                format!(
                    "(rounds {:.2}-{:.2})",
                    v.iter().map(ms).fold(f64::MAX, f64::min),
                    v.iter().map(ms).fold(0.0, f64::max)
                )
            };
            let spreads = [spread(&lib), spread(&each), spread(&corpus), spread(&read)];
            let (lib, read, each, corpus) = (median(lib), median(read), median(each), median(corpus));
            let cores = std::thread::available_parallelism().map(|c| c.get()).unwrap_or(1);
            println!("\n2. corpus of real objects: {n} objects, {} KiB, found under {from}", bytes_total / 1024);
            println!(
                "   libbpf bpf_object__open, one after another   {:>8.2} ms                            {}",
                lib.as_secs_f64() * 1e3,
                spreads[0]
            );
            println!(
                "   bpfcap reading alone, one after another      {:>8.2} ms   bpfcap/libbpf-open = {:.2}   {}",
                read.as_secs_f64() * 1e3,
                read.as_secs_f64() / lib.as_secs_f64(),
                spreads[3]
            );
            println!(
                "   bpfcap, one object after another (1 core)    {:>8.2} ms   bpfcap/libbpf-open = {:.2}   {}",
                each.as_secs_f64() * 1e3,
                each.as_secs_f64() / lib.as_secs_f64(),
                spreads[1]
            );
            println!(
                "   bpfcap, the corpus as one analysis ({cores} cores) {:>8.2} ms   bpfcap/libbpf-open = {:.2}   {}",
                corpus.as_secs_f64() * 1e3,
                corpus.as_secs_f64() / lib.as_secs_f64(),
                spreads[2]
            );
        }
    }

    // 3. sandboxed reload cost
    if bpfcap::sandbox::preflight().is_err() {
        println!("\n3. verify reload: skipped (needs root and BPF tokens)");
        return;
    }
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/bpfcap");
    let exe = if exe.exists() { exe } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debug/bpfcap") };
    if !exe.exists() {
        println!("\n3. verify reload: skipped (build the bpfcap binary first)");
        return;
    }
    let obj = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kprobe.bpf.o");
    let bytes = std::fs::read(&obj).unwrap();
    let a = analyse(vec![(obj.display().to_string(), bpfcap::elf::read_object(&bytes, "kprobe").unwrap())], &opts, r)
        .unwrap();
    let target = bpfcap::verify::Target::new(obj.clone(), a.objects[0].selected.iter().cloned().collect());
    let vopts = bpfcap::verify::VerifyOptions::new(&exe);
    let masks = a.delegation.masks(r);
    let caps = a.delegation.capability_values(r);
    let sandboxed = time(20, || {
        let o = bpfcap::verify::Loader::new(&vopts).load(&target, masks, caps.clone()).unwrap();
        assert!(o.loaded);
    });
    let direct = time(20, || {
        let mut o = libbpf_rs::ObjectBuilder::default().open_memory(&bytes).unwrap();
        let _ = &mut o;
        let _loaded = o.load().unwrap();
    });
    println!(
        "\n3. verify reload (kprobe.bpf.o, {} items): sandboxed {:.1} ms, in-process load as root {:.1} ms, ratio {:.1}; --minimize ≈ {:.2} s",
        a.delegation.needs().len(),
        sandboxed.as_secs_f64() * 1e3,
        direct.as_secs_f64() * 1e3,
        sandboxed.as_secs_f64() / direct.as_secs_f64(),
        sandboxed.as_secs_f64() * (a.delegation.needs().len() + 1) as f64
    );
}
