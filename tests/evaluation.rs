//! bpfcap's answer measured per program on objects built by others (the packages of the sid
//! chroot of `./dev test`): for each program libbpf 1.7 loads as root, the delegation of
//! `analyze --loader libbpf@1.7 --program P OBJ` must be sufficient (P loads through a token
//! with exactly that delegation, from a fresh user namespace) and 1-minimal (dropping any one
//! item or capability makes the load fail), and unions of several such objects must load with
//! their one delegation, every item needed by some object.
//!
//! CI runs a deterministic sample (every k-th program of the sorted list). With
//! BPFCAP_EVALUATION=full every program is measured (about ten minutes) and the figures are
//! written to target/evaluation/libbpf-1.7.json.

use std::collections::BTreeSet;

use bpfcap::analysis::{LoaderChoice, Options, analyse};
use bpfcap::rules::{Version, rules};
use bpfcap::sandbox;
use bpfcap::verify::{Target, VerifyOptions, describe, verify};

mod common;

/// Programs measured in CI: about this many, spread over the sorted list.
const SAMPLE: usize = 48;

/// Every (object, program) of the objects built by others, sorted.
fn programs_built_by_others(root: &std::path::Path) -> Vec<(String, bpfcap::model::Object, String)> {
    let mut out = Vec::new();
    for (display, obj) in common::objects_built_by_others(root) {
        for p in &obj.programs {
            out.push((display.clone(), obj.clone(), p.name.clone()));
        }
    }
    out.sort_by(|a, b| (&a.0, &a.2).cmp(&(&b.0, &b.2)));
    out
}

#[derive(Default, serde::Serialize)]
struct Figures {
    programs: usize,
    root_loadable: usize,
    sufficient: usize,
    minimal: usize,
    insufficient: Vec<String>,
    not_minimal: Vec<String>,
}

#[test]
fn libbpf_answers_are_sufficient_and_minimal_per_program() {
    let ok = sandbox::preflight().map_err(|e| e.to_string()).and_then(|()| common::sid_root().map(|_| ()));
    if !common::require(ok, "per-program evaluation on objects built by others") {
        return;
    }
    libbpf_rs::set_print(None);
    let all = programs_built_by_others(&common::sid_root().unwrap());
    let step = if common::full_evaluation() { 1 } else { all.len().div_ceil(SAMPLE).max(1) };
    let r = rules();
    let opts = VerifyOptions::new(env!("CARGO_BIN_EXE_bpfcap"));
    let mut f = Figures::default();
    for (display, obj, program) in all.into_iter().step_by(step) {
        f.programs += 1;
        if !common::libbpf_loads_as_root(common::source_of(&obj), Some(&program)).unwrap_or(false) {
            continue;
        }
        f.root_loadable += 1;
        let a = analyse(
            vec![(display.clone(), obj)],
            &Options {
                programs: vec![program.clone()],
                loader: LoaderChoice::libbpf(vec![Version(1, 7)]),
                with_optional: false,
            },
            r,
        )
        .unwrap();
        let target = Target::of(a.objects[0].source(), vec![program.clone()]);
        let v = verify(std::slice::from_ref(&target), &a.delegation, true, r, &opts).unwrap();
        let case = format!("{display} --program {program}");
        if !v.loaded {
            f.insufficient.push(format!(
                "{case}: {} — {}",
                describe(&v.targets[0].outcome),
                v.targets[0].diagnosis.clone().unwrap_or_default()
            ));
            continue;
        }
        f.sufficient += 1;
        let spare: BTreeSet<String> = v.items.iter().filter(|i| !i.required).map(|i| i.item.to_string()).collect();
        if spare.is_empty() && v.minimal == Some(true) {
            f.minimal += 1;
        } else {
            f.not_minimal.push(format!("{case}: not needed {spare:?}"));
        }
    }
    eprintln!(
        "libbpf 1.7, {} programs measured ({}): {} load as root; sufficient {}/{}, 1-minimal {}/{}",
        f.programs,
        if common::full_evaluation() { "all" } else { "a sample" },
        f.root_loadable,
        f.sufficient,
        f.root_loadable,
        f.minimal,
        f.root_loadable
    );
    eprintln!("insufficient: {:#?}\nnot minimal: {:#?}", f.insufficient, f.not_minimal);
    if common::full_evaluation() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/evaluation");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("libbpf-1.7.json"), serde_json::to_string_pretty(&f).unwrap()).unwrap();
    }
    if std::env::var_os("BPFCAP_EVALUATION_PACKAGES").is_none() {
        assert!(
            f.root_loadable >= if common::full_evaluation() { 350 } else { SAMPLE / 2 },
            "too few programs measured: {}",
            f.root_loadable
        );
    }
    assert!(f.insufficient.is_empty(), "insufficient answers:\n{}", f.insufficient.join("\n"));
    // at least 98% 1-minimal
    assert!(f.minimal * 100 >= f.root_loadable * 98, "1-minimal for only {} of {}", f.minimal, f.root_loadable);
}

/// Objects analysed together: the one delegation loads all of them, and every item is needed by
/// some object (dropping it makes one of them fail). The sets: the objects of one file
/// (systemd's libsystemd-core, an xdp-tools executable), and groups of four libbpf-tools
/// objects; CI takes the first of each kind and every k-th group.
#[test]
fn unions_load_with_one_delegation_and_need_every_item() {
    let ok = sandbox::preflight().map_err(|e| e.to_string()).and_then(|()| common::sid_root().map(|_| ()));
    if !common::require(ok, "union evaluation on objects built by others") {
        return;
    }
    libbpf_rs::set_print(None);
    let root = common::sid_root().unwrap();
    let mut objects: Vec<(String, bpfcap::model::Object)> = common::objects_built_by_others(&root)
        .into_iter()
        .filter(|(_, o)| common::libbpf_loads_as_root(common::source_of(o), None).unwrap_or(false))
        .collect();
    objects.sort_by(|a, b| a.0.cmp(&b.0));
    let file_of = |o: &bpfcap::model::Object| common::source_of(o).file.display().to_string();
    let mut sets: Vec<Vec<(String, bpfcap::model::Object)>> = Vec::new();
    // the objects of one file: systemd's, and each xdp-tools file's
    let mut by_file: std::collections::BTreeMap<String, Vec<(String, bpfcap::model::Object)>> = Default::default();
    for (d, o) in &objects {
        by_file.entry(file_of(o)).or_default().push((d.clone(), o.clone()));
    }
    let tools: Vec<(String, bpfcap::model::Object)> =
        objects.iter().filter(|(d, _)| d.contains("-libbpf#")).cloned().collect();
    let systemd = by_file.iter().find(|(f, _)| f.contains("libsystemd-core")).map(|(_, v)| v.clone());
    sets.extend(systemd);
    sets.extend(by_file.values().filter(|v| v.len() > 1 && v[0].0.contains("/xdp")).cloned());
    sets.extend(tools.chunks(4).map(|c| c.to_vec()));
    let step = if common::full_evaluation() { 1 } else { sets.len().div_ceil(6).max(1) };
    let r = rules();
    let opts = VerifyOptions::new(env!("CARGO_BIN_EXE_bpfcap"));
    let (mut measured, mut failures) = (0, Vec::new());
    for set in sets.into_iter().step_by(step) {
        let names: Vec<String> = set.iter().map(|(d, _)| d.clone()).collect();
        let a = analyse(
            set,
            &Options { programs: vec![], loader: LoaderChoice::libbpf(vec![Version(1, 7)]), with_optional: false },
            r,
        )
        .unwrap();
        let targets: Vec<Target> =
            a.objects.iter().map(|o| Target::of(o.source(), o.selected.iter().cloned().collect())).collect();
        let v = verify(&targets, &a.delegation, true, r, &opts).unwrap();
        measured += 1;
        if !v.loaded {
            let why: Vec<String> = v
                .targets
                .iter()
                .filter(|t| !t.outcome.loaded)
                .map(|t| {
                    format!(
                        "{}: {} — {}",
                        t.path.display(),
                        describe(&t.outcome),
                        t.diagnosis.clone().unwrap_or_default()
                    )
                })
                .collect();
            failures.push(format!("{names:?} do not load with {}: {why:?}", a.delegation.mount_options(r)));
            continue;
        }
        let spare: Vec<String> = v.items.iter().filter(|i| !i.required).map(|i| i.item.to_string()).collect();
        if !spare.is_empty() {
            failures.push(format!("{names:?}: no object needs {spare:?}"));
        }
    }
    eprintln!("unions: {measured} sets measured, {} failed", failures.len());
    assert!(measured >= if common::full_evaluation() { 15 } else { 5 }, "too few sets: {measured}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
