//! cilium/ebpf 0.22 through real BPF tokens: the answers bpfcap derives for cilium/ebpf must let
//! cilium/ebpf itself load the objects from a fresh user namespace (it finds the token on its
//! own, among the process's bpffs mounts), and dropping any one item must make the load fail.
//!
//! The loaders are real: tools/cilium-loader (what bpf2go's generated `loadXObjects` does, for
//! any object) and Go programs built the way bpf2go output is built, embedding objects built by
//! others. `./dev test` builds them in its Debian sid chroot from Debian's
//! golang-github-cilium-ebpf-dev 0.22.0 (offline) and passes their directory as
//! BPFCAP_GO_TOOLS; with BPFCAP_REQUIRE_TOKEN_TESTS=1 a missing precondition fails the tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bpfcap::analysis::{LoaderChoice, LoaderSpec, Options, analyse};
use bpfcap::rules::{Version, rules};
use bpfcap::sandbox::{self, Runner};
use bpfcap::verify::{Target, VerifyOptions, describe, verify};
use bpfcap::vocab::Masks;

mod common;

/// The Go tools' directory and the sid chroot, or None when a test that needs them may not run
/// (it is then skipped, or fails under BPFCAP_REQUIRE_TOKEN_TESTS=1).
fn go_tools_and_sid(what: &str) -> Option<(PathBuf, PathBuf)> {
    match go_tools().and_then(|t| common::sid_root().map(|r| (t, r))) {
        Ok(t) => Some(t),
        Err(e) => {
            common::require(Err(e), what);
            None
        }
    }
}

/// The directory of the Go tools (`cilium-loader`), or why the tests cannot run.
fn go_tools() -> Result<PathBuf, String> {
    sandbox::preflight().map_err(|e| e.to_string())?;
    let dir = std::env::var_os("BPFCAP_GO_TOOLS")
        .map(PathBuf::from)
        .ok_or("BPFCAP_GO_TOOLS (the Go tools ./dev test builds) is not set")?;
    if !dir.join("cilium-loader").is_file() {
        return Err(format!("{} has no cilium-loader", dir.display()));
    }
    Ok(dir)
}

fn cilium() -> LoaderChoice {
    LoaderChoice::Loader(LoaderSpec { name: "cilium".into(), versions: vec![Version(0, 22)], token: true })
}

/// Whether cilium/ebpf loads `object` (a file) as host root, without a token: all that bpf2go
/// would request, or `program` alone.
fn cilium_loads_as_root(loader: &Path, object: &Path, program: Option<&str>) -> bool {
    let mut cmd = std::process::Command::new(loader);
    cmd.arg(object).args(program);
    cmd.output().is_ok_and(|o| o.status.success())
}

/// Whether cilium/ebpf loads `object` through a token that delegates everything, with
/// CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN: some objects the kernel takes from root only (a
/// verifier check that wants CAP_SYS_ADMIN), which no delegation can serve.
fn loads_through_a_wide_token(loader: &Path, object: &Path) -> bool {
    let opts = VerifyOptions::new(env!("CARGO_BIN_EXE_bpfcap"));
    let mut target = Target::new(object, vec![]);
    target.runner = Runner::CiliumLoader(loader.to_path_buf());
    let all = Masks::ALL;
    let caps = common::caps(&["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"]);
    bpfcap::verify::Loader::new(&opts).load(&target, all, caps).is_ok_and(|o| o.loaded)
}

enum Verdict {
    Minimal,
    NotMinimal(String),
    Insufficient(String),
}

/// Analyses `objects` for `loader`, loads them with `runner` through the derived delegation and
/// drops every item in turn.
fn prove(
    objects: Vec<(String, bpfcap::model::Object)>,
    programs: Vec<String>,
    loader: LoaderChoice,
    runner: Runner,
) -> Verdict {
    let r = rules();
    let a = analyse(objects, &Options { programs: programs.clone(), loader, with_optional: false }, r).unwrap();
    let opts = VerifyOptions::new(env!("CARGO_BIN_EXE_bpfcap"));
    let targets: Vec<Target> = a
        .objects
        .iter()
        .filter(|o| !o.selected.is_empty())
        .map(|o| {
            let mut t = Target::of(o.source(), programs.clone());
            t.runner = runner.clone();
            t
        })
        .collect();
    let v = verify(&targets, &a.delegation, true, r, &opts).unwrap();
    let shown = format!("{} + {:?}", a.delegation.mount_options(r), a.delegation.capabilities);
    if !v.loaded {
        let t = v.targets.iter().find(|t| !t.outcome.loaded).unwrap();
        return Verdict::Insufficient(format!(
            "does not load with {shown}: {} {} — {}",
            describe(&t.outcome),
            t.outcome.message.clone().unwrap_or_default(),
            t.diagnosis.clone().unwrap_or_default()
        ));
    }
    let spare: BTreeSet<String> = v.items.iter().filter(|i| !i.required).map(|i| i.item.to_string()).collect();
    if spare.is_empty() && v.minimal == Some(true) {
        Verdict::Minimal
    } else {
        Verdict::NotMinimal(format!("{shown}: not needed {spare:?}"))
    }
}

/// Every sample object cilium/ebpf loads as root: `--loader cilium` is sufficient and minimal.
#[test]
fn cilium_answers_for_the_samples_load_and_need_every_item() {
    let tools = match go_tools() {
        Ok(t) => t,
        Err(e) => {
            common::require(Err(e), "cilium/ebpf token tests");
            return;
        }
    };
    let loader = tools.join("cilium-loader");
    let (mut proved, mut failures) = (Vec::new(), Vec::new());
    for path in common::sample_objects().into_iter().filter(|p| !common::is_legacy(p)) {
        if !cilium_loads_as_root(&loader, &path, None) {
            continue;
        }
        let display = path.display().to_string();
        let obj =
            bpfcap::elf::read_object(&std::fs::read(&path).unwrap(), &bpfcap::elf::object_name(&display)).unwrap();
        match prove(vec![(display.clone(), obj)], vec![], cilium(), Runner::CiliumLoader(loader.clone())) {
            Verdict::Minimal => proved.push(display),
            Verdict::NotMinimal(e) | Verdict::Insufficient(e) => failures.push(format!("{display}: {e}")),
        }
    }
    eprintln!("cilium/ebpf, proved minimal: {proved:#?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(proved.len() >= 10, "too few samples proved: {proved:?}");
}

/// A sample of the programs of objects built by others that cilium/ebpf loads as root:
/// `--loader cilium --program P` is sufficient for all and 1-minimal for all but at most one.
#[test]
fn cilium_answers_per_program_on_objects_built_by_others() {
    let Some((tools, root)) = go_tools_and_sid("cilium/ebpf evaluation on objects built by others") else { return };
    let loader = tools.join("cilium-loader");
    let tmp = tempfile::tempdir().unwrap();
    let mut cases: Vec<(String, bpfcap::model::Object, String)> = common::objects_built_by_others(&root)
        .into_iter()
        .flat_map(|(d, o)| o.programs.iter().map(|p| (d.clone(), o.clone(), p.name.clone())).collect::<Vec<_>>())
        .collect();
    cases.sort_by(|a, b| (&a.0, &a.2).cmp(&(&b.0, &b.2)));
    let step = if common::full_evaluation() { 1 } else { cases.len().div_ceil(40).max(1) };
    let (mut measured, mut minimal, mut insufficient, mut not_minimal) = (0, 0, Vec::new(), Vec::new());
    for (display, obj, program) in cases.into_iter().step_by(step) {
        let file = common::object_file(tmp.path(), common::source_of(&obj));
        if !cilium_loads_as_root(&loader, &file, Some(&program)) {
            continue;
        }
        measured += 1;
        let case = format!("{display} --program {program}");
        match prove(vec![(display, obj)], vec![program], cilium(), Runner::CiliumLoader(loader.clone())) {
            Verdict::Minimal => minimal += 1,
            Verdict::NotMinimal(e) => not_minimal.push(format!("{case}: {e}")),
            Verdict::Insufficient(e) => insufficient.push(format!("{case}: {e}")),
        }
    }
    eprintln!(
        "cilium/ebpf 0.22, {measured} programs of objects built by others that load as root: sufficient {}, 1-minimal {minimal}\ninsufficient: {insufficient:#?}\nnot minimal: {not_minimal:#?}",
        measured - insufficient.len()
    );
    if std::env::var_os("BPFCAP_EVALUATION_PACKAGES").is_none() {
        assert!(measured >= if common::full_evaluation() { 200 } else { 15 }, "too few programs measured: {measured}");
    }
    assert!(insufficient.is_empty(), "{}", insufficient.join("\n"));
    assert!(not_minimal.len() <= 1, "{}", not_minimal.join("\n"));
}

/// Builds Go programs the way bpf2go output is built, each embedding one object (`module`: a
/// Go module with cilium/ebpf v0.22.0 vendored, whose build info lists it; `gopath`: GOPATH
/// mode, as Debian builds Go programs, without module information).
fn build_go_programs(out: &Path, objects: &[(String, PathBuf, &str)]) {
    let root = common::sid_root().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-go-tools");
    let mut cmd = std::process::Command::new(script);
    cmd.arg("--root").arg(&root).arg("--out").arg(out);
    for (name, object, mode) in objects {
        cmd.arg("--embed").arg(object).arg(name).arg(mode);
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "scripts/build-go-tools failed");
}

/// Go programs built as bpf2go output is, embedding objects built by others: `bpfcap analyze
/// PROGRAM`, with no flag, recognises cilium/ebpf 0.22 from the binary and derives a
/// delegation under which the program starts from a fresh user namespace; dropping any item
/// or capability makes it fail.
#[test]
fn go_programs_embedding_objects_built_by_others_start_with_the_answer() {
    let Some((tools, root)) = go_tools_and_sid("Go programs embedding objects built by others") else { return };
    let loader = tools.join("cilium-loader");
    let tmp = tempfile::tempdir().unwrap();
    // objects built by others that cilium/ebpf loads whole as root and through a token that
    // delegates everything
    let mut candidates: Vec<(String, PathBuf)> = Vec::new();
    for (display, o) in common::objects_built_by_others(&root) {
        let file = common::object_file(tmp.path(), common::source_of(&o));
        if cilium_loads_as_root(&loader, &file, None) && loads_through_a_wide_token(&loader, &file) {
            candidates.push((display, file));
        }
    }
    let wanted = if common::full_evaluation() { 8 } else { 3 };
    let step = candidates.len().div_ceil(wanted).max(1);
    let chosen: Vec<(String, PathBuf)> = candidates.into_iter().step_by(step).collect();
    assert!(chosen.len() >= wanted.min(3), "too few objects cilium/ebpf loads: {chosen:?}");
    let mut builds: Vec<(String, PathBuf, &str)> =
        chosen.iter().enumerate().map(|(i, (_, f))| (format!("goprog{i}"), f.clone(), "module")).collect();
    builds.push(("goprog_gopath".into(), chosen[0].1.clone(), "gopath"));
    let out = tmp.path().join("bin");
    build_go_programs(&out, &builds);
    let mut failures = Vec::new();
    for (name, _, mode) in &builds {
        let program = out.join(name);
        // what `bpfcap analyze PROGRAM` finds, with no flag
        let (objects, _) = bpfcap::input::load_inputs(std::slice::from_ref(&program)).unwrap();
        let r = rules();
        let a = analyse(
            objects.clone(),
            &Options {
                programs: vec![],
                loader: LoaderChoice::Auto { libbpf: vec![Version(1, 5), Version(1, 6), Version(1, 7)] },
                with_optional: false,
            },
            r,
        )
        .unwrap();
        let described = a.loader_description(r);
        if described != "cilium/ebpf 0.22" {
            failures.push(format!("{name} ({mode}): analysed for {described}: {}", a.objects[0].loader.why));
            continue;
        }
        match prove(
            objects,
            vec![],
            LoaderChoice::Auto { libbpf: vec![Version(1, 7)] },
            Runner::Program(program.clone()),
        ) {
            Verdict::Minimal => {
                eprintln!("{name} ({mode}): starts with the answer, every item needed ({})", a.objects[0].loader.why)
            }
            Verdict::NotMinimal(e) | Verdict::Insufficient(e) => failures.push(format!("{name} ({mode}): {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
