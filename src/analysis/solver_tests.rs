//! The solver on small synthetic loader tables: real objects (testdata/, compiled from
//! bpf-samples/) and the kernel's real rules, but a loader of a few steps written here, so that
//! each test shows one behaviour of the solver: a probe that fails, a fatal step, a fallback
//! that changes a program's expected attach type, one that drops the global-data maps, and
//! objects solved together as a union.

use std::collections::BTreeSet;

use super::{Analysis, LoaderChoice, Options, analyse};
use crate::rules::{LoaderFile, LoaderModel, Rules, Version, libbpf_sections};
use crate::vocab::{ListKind, Need};

/// A loader named libbpf (so that a bare object is analysed for it) with libbpf's section
/// table, one version (1.7), and `steps`: TOML `[[step]]` and `[[effect]]` tables.
fn loader(steps: &str) -> Rules {
    let text = format!(
        r#"
[loader]
name = "libbpf"
title = "libbpf"
versions = ["1.7"]
default_versions = "1.7"
verified_by = "libbpf"
token = "explicit_path"
maps = "all"
{steps}
"#
    );
    let file: LoaderFile = toml::from_str(&text).unwrap_or_else(|e| panic!("synthetic loader: {e}"));
    Rules::with_loaders(vec![LoaderModel::new(file, libbpf_sections())])
}

fn object(name: &str) -> (String, crate::model::Object) {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (name.to_string(), crate::elf::read_object(&bytes, &crate::elf::object_name(&path)).unwrap())
}

fn analyse_with(rules: &Rules, objects: &[&str]) -> Analysis {
    analyse_programs(rules, objects, &[])
}

/// [`analyse_with`], the programs named (`--program`; none: all).
fn analyse_programs(rules: &Rules, objects: &[&str], programs: &[&str]) -> Analysis {
    let opts = Options {
        programs: programs.iter().map(|p| p.to_string()).collect(),
        loader: LoaderChoice::libbpf(vec![Version(1, 7)]),
        with_optional: false,
    };
    analyse(objects.iter().map(|o| object(o)).collect(), &opts, rules).unwrap()
}

fn required(a: &Analysis, k: ListKind) -> BTreeSet<String> {
    a.requirements
        .required
        .keys()
        .filter_map(|n| match n {
            Need::List(kind, name) if *kind == k => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn optional(a: &Analysis) -> BTreeSet<Need> {
    a.requirements.optional.iter().flat_map(|o| o.items.iter().cloned()).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A probe with one way through the token, `on_failure` as given.
fn probe(on_failure: &str, fallback: &str, programs: &str) -> String {
    format!(
        r#"
[[step]]
id = "probe"
min = "1.7"
when = "always"
on_failure = "{on_failure}"
fallback = "{fallback}"
lost = "the probe's feature"
[[step.alternative]]
commands = ["prog_load"]
programs = [{programs}]
attachments = ["cgroup_inet_ingress"]
maps = []
"#
    )
}

/// Without any step, an object needs what the kernel checks for its own programs.
#[test]
fn without_steps_an_object_needs_its_own_programs() {
    let a = analyse_with(&loader(""), &["kprobe.bpf.o"]);
    assert_eq!(required(&a, ListKind::Programs), set(&["kprobe"]));
    assert!(optional(&a).is_empty());
}

/// A probe that may fail is optional: its items are not required, and what is lost without
/// them is said. The same probe made fatal is required.
#[test]
fn a_probe_that_fails_is_optional_and_a_fatal_one_required() {
    let may_fail = loader(&probe("fallback", "none", r#""tracepoint""#));
    let a = analyse_with(&may_fail, &["kprobe.bpf.o"]);
    assert_eq!(required(&a, ListKind::Programs), set(&["kprobe"]));
    assert!(optional(&a).contains(&Need::list(ListKind::Programs, "tracepoint")), "{:?}", optional(&a));
    assert!(a.requirements.optional.iter().any(|o| o.losses.iter().any(|l| l.contains("the probe's feature"))));

    let fatal = loader(&probe("fatal", "", r#""tracepoint""#));
    let a = analyse_with(&fatal, &["kprobe.bpf.o"]);
    assert_eq!(required(&a, ListKind::Programs), set(&["kprobe", "tracepoint"]));
    // (kprobe programs are loaded with expected attach type 0 already: cgroup_inet_ingress)
    let attachments = required(&analyse_with(&loader(""), &["kprobe.bpf.o"]), ListKind::Attachments);
    assert!(attachments.contains("cgroup_inet_ingress"), "{attachments:?}");
    assert_eq!(required(&a, ListKind::Attachments), attachments);
    assert!(optional(&a).is_empty());
}

/// A fatal step with two ways through the token takes the one the object already needs.
#[test]
fn a_fatal_step_takes_the_alternative_already_delegated() {
    let steps = format!(
        "{}[[step.alternative]]\ncommands = [\"prog_load\"]\nprograms = [\"kprobe\"]\nattachments = []\nmaps = []\n",
        probe("fatal", "", r#""socket_filter""#)
    );
    let a = analyse_with(&loader(&steps), &["kprobe.bpf.o"]);
    assert_eq!(required(&a, ListKind::Programs), set(&["kprobe"]));
    // a socket filter object takes the first way: socket_filter is what it has
    let a = analyse_with(&loader(&steps), &["socket.bpf.o"]);
    assert!(!required(&a, ListKind::Programs).contains("kprobe"), "{:?}", required(&a, ListKind::Programs));
}

/// libbpf's FEAT_EXP_ATTACH_TYPE, written small: a probe for the programs whose section allows
/// an expected attach type, whose failure makes libbpf load them with attach type 0
/// (cgroup_inet_ingress). With that fallback the probe is optional, and each way of loading
/// the programs is named; changed to a fallback that changes nothing, the probe's failure
/// costs nothing and the programs keep their own attach types only.
#[test]
fn a_fallback_that_changes_the_attach_type() {
    let step = |fallback: &str| {
        format!(
            r#"
[[step]]
id = "exp_attach_type"
min = "1.7"
when = "program_sec_flag:SEC_EXP_ATTACH_OPT"
on_failure = "fallback"
fallback = "{fallback}"
lost = "expected attach type"
[[step.alternative]]
commands = ["prog_load"]
programs = ["cgroup_sock"]
attachments = ["cgroup_inet_sock_release"]
maps = []

[[effect]]
fallback = "reset_expected_attach_type"
attach = "zero"
why = "loaded with expected attach type 0"
"#
        )
    };
    let reset = analyse_with(&loader(&step("reset_expected_attach_type")), &["cgroup_sock.bpf.o"]);
    let none = analyse_with(&loader(&step("none")), &["cgroup_sock.bpf.o"]);
    let own = required(&analyse_with(&loader(""), &["cgroup_sock.bpf.o"]), ListKind::Attachments);
    assert!(own.contains("cgroup_inet_sock_create") && !own.contains("cgroup_inet_ingress"), "{own:?}");
    let release = BTreeSet::from([Need::list(ListKind::Attachments, "cgroup_inet_sock_release")]);
    // a fallback that changes nothing: the probe's item is optional, the programs keep their
    // attach types
    assert_eq!(required(&none, ListKind::Attachments), own);
    assert_eq!(optional(&none), release);
    // the reset: without the probe's item, the program whose section makes its attach type
    // optional (cgroup/sock) is loaded with 0, which the kernel reads as cgroup_inet_ingress;
    // cgroup/sock_create, whose attach type is mandatory, keeps cgroup_inet_sock_create
    let mut with_zero = own.clone();
    with_zero.insert("cgroup_inet_ingress".into());
    assert_eq!(required(&reset, ListKind::Attachments), with_zero);
    assert_eq!(optional(&reset), release);
    let why = &reset.requirements.required[&Need::list(ListKind::Attachments, "cgroup_inet_ingress")];
    assert!(
        why.iter().any(|r| r.loader_step.as_deref() == Some("exp_attach_type")
            && r.program.as_deref() == Some("cgroup_sock_legacy")
            && r.text.contains("expected attach type 0")),
        "{why:?}"
    );
}

/// Objects are solved as one: an optional item one object's loader would like is not asked
/// for when another object already needs it, and a fatal probe of one object is satisfied by
/// what another needs.
#[test]
fn two_objects_are_solved_as_a_union() {
    let steps = format!(
        "{}[[step.alternative]]\ncommands = [\"prog_load\"]\nprograms = [\"tracepoint\"]\nattachments = []\nmaps = []\n",
        probe("fatal", "", r#""socket_filter""#)
    );
    let rules = loader(&steps);
    let alone = analyse_with(&rules, &["xdp.bpf.o"]);
    assert!(required(&alone, ListKind::Programs).contains("socket_filter"));
    let both = analyse_with(&rules, &["xdp.bpf.o", "tracepoint.bpf.o"]);
    let programs = required(&both, ListKind::Programs);
    assert!(programs.contains("tracepoint") && programs.contains("xdp"), "{programs:?}");
    assert!(
        !programs.contains("socket_filter"),
        "the union asks for the probe's first way although tracepoint serves: {programs:?}"
    );
    // (and it settles: each object keeps to what it covers itself)
    assert!(!both.requirements.warnings.iter().any(|w| w.contains("rounds")), "{:?}", both.requirements.warnings);
}

/// libbpf's FEAT_GLOBAL_DATA, written small: a probe that creates an array, whose failure
/// makes libbpf skip the global-data maps and breaks the programs that use them. A program
/// that uses the object's global variable needs the maps, so the probe too; one that does not
/// is loaded without them, and neither the maps nor the probe are required (the least answer,
/// not the one where the maps' own needs let the probe succeed).
#[test]
fn a_fallback_that_drops_the_global_data_maps() {
    let rules = loader(
        r#"
[[step]]
id = "global_data"
min = "1.7"
when = "object_has_global_data"
on_failure = "fallback"
fallback = "skip_global_data_maps"
lost = "the global-data maps"
[[step.alternative]]
commands = ["map_create", "prog_load"]
programs = ["socket_filter"]
attachments = []
maps = ["array"]

[[effect]]
fallback = "skip_global_data_maps"
breaks = ["references_global_data"]
drops = "internal_maps"
why = "the program's global data is missing"
"#,
    );
    // (pointer32.bpf.o: global_low_half reads the global `counter`, stack_low_half does not)
    let uses = analyse_programs(&rules, &["pointer32.bpf.o"], &["global_low_half"]);
    assert_eq!(required(&uses, ListKind::Maps), set(&["array"]));
    assert!(required(&uses, ListKind::Commands).contains("map_create"));
    let why = &uses.requirements.required[&Need::list(ListKind::Maps, "array")];
    assert!(why.iter().any(|r| r.loader_step.as_deref() == Some("global_data")), "{why:?}");
    let not = analyse_programs(&rules, &["pointer32.bpf.o"], &["stack_low_half"]);
    assert!(required(&not, ListKind::Maps).is_empty(), "{:?}", required(&not, ListKind::Maps));
    assert_eq!(required(&not, ListKind::Commands), set(&["prog_load"]));
    assert!(optional(&not).contains(&Need::list(ListKind::Maps, "array")), "{:?}", optional(&not));
}
