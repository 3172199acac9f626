//! `bpfcap record`: runs a command in the sandbox under a delegation of everything, observes
//! the kernel's token checks it causes (whichever loader asks), and with `minimize` re-runs it
//! with each item dropped in turn until every item left is needed.
//!
//! Like `verify`, this touches the running kernel: the sandbox (crate::sandbox) and the
//! observer ([`observer`]), attached only while the recording runs.

pub mod document;
pub mod observer;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::delegation::Delegation;
use crate::rules::Rules;
use crate::sandbox::{self, LoadOutcome, SandboxError};
use crate::verify::{self, Target, VerifyOptions};
use crate::vocab::{ListKind, Masks, Need};
use observer::{Call, Observer};

/// Default time limit of one run of the command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Rounds of the confirmation pass (see [`minimize`]); each round only runs when the one before
/// dropped an item.
const MAX_CONFIRM_ROUNDS: usize = 4;

#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// The sandbox's limits (`timeout` is per run, `deadline` for the whole recording).
    pub sandbox: VerifyOptions,
    /// Counts a command still running after this long as working (a daemon); it is then stopped.
    pub ready_after: Option<Duration>,
    pub minimize: bool,
}

/// Who asked for an item: one bpf() command, from one process name, how often.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Request {
    /// The bpf() command that carried the token (`prog_load`), or `token_create`.
    pub command: String,
    /// For program and attach types: the program type and the attach type the kernel checked
    /// (after its fixup of 0), asked for together.
    pub program: Option<(String, String)>,
    pub process: String,
    pub count: u64,
    /// Of `count`, how many calls failed, and with which errors.
    pub failed: u64,
    pub errors: Vec<String>,
}

/// An item or capability the command asked for: the items with each request that carried
/// them; the capabilities with the items the kernel checks them for.
#[derive(Debug, Clone)]
pub struct Asked {
    pub need: Need,
    pub requests: Vec<Request>,
    /// A capability, on a kernel where capability checks are not observed (before Linux
    /// 6.14): the items of this recording the kernel checks it for
    /// (rules/kernel/privileges.toml), or token creation.
    pub implied_by: Vec<String>,
}

/// What minimising found about one item.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub need: Need,
    pub needed: bool,
    /// Needed: how the command failed without it.
    pub failure: Option<String>,
    /// Not needed: what the command lost without it, where it can be told: the checks the
    /// kernel refused it, and the messages it wrote that it did not write with everything.
    pub lost: Vec<String>,
    /// A run without it that ran out of time or memory: whether it is needed is not known.
    pub undecided: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Minimization {
    /// Every item asked for and each candidate capability, in the order they were tried.
    pub verdicts: Vec<Verdict>,
    /// True when the answer was run without each of its items and failed every time;
    /// `None` when a run was cut short; false when dropping items kept changing what the
    /// program needs, or when it did not work with what it asked for (`problem`).
    pub one_minimal: Option<bool>,
    /// How many times the command ran (the recording run included).
    pub runs: usize,
    /// Why minimising could not start: the program failed with only what it asked for.
    pub problem: Option<String>,
    /// The answer: what was left.
    pub answer: Delegation,
}

#[derive(Debug, Clone)]
pub struct Recording {
    pub command: Vec<String>,
    /// The run under a delegation of everything, observed.
    pub run: LoadOutcome,
    /// Every item and capability asked for, with who asked.
    pub asked: Vec<Asked>,
    /// What was asked for, as a delegation.
    pub asked_delegation: Delegation,
    pub minimization: Option<Minimization>,
    /// The answer: the minimised delegation, or without `minimize` what was asked for.
    pub delegation: Delegation,
    /// Whether the capability checks were observed (Linux 6.14+, the capability:cap_capable
    /// tracepoint); if not, the capabilities asked for are those the rules say are checked.
    pub observed_capabilities: bool,
}

impl Recording {
    /// The recording run worked (exit 0, or still running after `ready_after`).
    pub fn worked(&self) -> bool {
        self.run.loaded
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RecordError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Observer(#[from] observer::ObserverError),
    #[error("the program asked for {what} {value}, which bpfcap's rules do not name (a kernel newer than the rules)")]
    #[diagnostic(
        code(bpfcap::record::unknown_value),
        help(
            "bpfcap cannot write a delegation that grants it; regenerate rules/kernel/enums.toml from this kernel's uapi (rules/gen/README.md)"
        )
    )]
    UnknownValue { what: &'static str, value: String },
}

/// The four lists with every bit set: everything delegated.
fn everything() -> Masks {
    Masks::ALL
}

/// Runs the command, observed.
struct Runs<'a> {
    loader: verify::Loader<'a>,
    target: Target,
    observer: &'a Observer,
    rules: &'a Rules,
    count: usize,
}

impl Runs<'_> {
    fn run(&mut self, masks: Masks, caps: &[String]) -> Result<(LoadOutcome, Vec<Call>), SandboxError> {
        let values: Vec<u32> = caps.iter().filter_map(|c| self.rules.capability_value(c)).collect();
        sandbox::check_stop()?;
        self.count += 1;
        let outcome = self.loader.load(&self.target, masks, values)?;
        // (a signal during the run ends the recording: the run's failure says nothing)
        sandbox::check_stop()?;
        let calls = outcome.user_namespace.map(|ns| self.observer.take(ns)).unwrap_or_default();
        Ok((outcome, calls))
    }

    fn run_with(&mut self, d: &Delegation) -> Result<(LoadOutcome, Vec<Call>), SandboxError> {
        let masks = d.masks(self.rules);
        self.run(masks, &d.capabilities)
    }
}

/// A name of `kind` for a kernel value: its name in the rules, else the number (a kernel
/// newer than the rules).
fn name_of(kind: ListKind, value: u32, rules: &Rules) -> String {
    rules.enums.name_of(kind, value).map(String::from).unwrap_or_else(|| value.to_string())
}

/// What the kernel's token checks look at in a call that carried a token: the command (when
/// it consults the token), the map type of map_create, the program type and expected attach
/// type of prog_load (after the kernel's fixup of 0). `token_create` stands for itself.
fn checked(call: &Call, rules: &Rules) -> (String, Vec<Need>, Option<(String, String)>) {
    let cmd = name_of(ListKind::Commands, call.cmd, rules);
    let consults = rules.privileges.token_command.iter().any(|t| t.command == cmd);
    if !call.token || !consults {
        return (cmd, Vec::new(), None);
    }
    let mut needs = vec![Need::List(ListKind::Commands, cmd.clone())];
    let mut program = None;
    match cmd.as_str() {
        "map_create" => needs.push(Need::List(ListKind::Maps, name_of(ListKind::Maps, call.kind, rules))),
        "prog_load" => {
            let prog = name_of(ListKind::Programs, call.kind, rules);
            let fixup = rules.privileges.attach_fixup.iter().find(|f| f.prog_type == prog && call.attach == 0);
            let attach = match fixup {
                Some(f) => f.attach.clone(),
                None => name_of(ListKind::Attachments, call.attach, rules),
            };
            needs.push(Need::List(ListKind::Programs, prog.clone()));
            needs.push(Need::List(ListKind::Attachments, attach.clone()));
            program = Some((prog, attach));
        }
        _ => {}
    }
    (cmd, needs, program)
}

/// Every item the calls asked for, with its requests merged, then the capabilities the kernel
/// checks for them.
fn asked(calls: &[Call], observed_caps: bool, rules: &Rules) -> Vec<Asked> {
    // (command, map or program with its attach type, process) -> (calls, failed calls, errnos)
    type RequestKey = (String, Option<(String, String)>, String);
    type Counts = (u64, u64, Vec<String>);
    let mut by_need: BTreeMap<Need, BTreeMap<RequestKey, Counts>> = BTreeMap::new();
    let mut implied: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.token) {
        let (cmd, needs, program) = checked(c, rules);
        let needs = match c.cap {
            // a capability checked during the call, against the token's user namespace
            Some(cap) => vec![Need::Cap(capability_name(cap, rules))],
            None => needs,
        };
        if !observed_caps && c.cap.is_none() {
            // not observed on this kernel: the capabilities the rules say are checked
            if cmd == "token_create" {
                for cap in &rules.privileges.token_create.caps {
                    implied.entry(cap.clone()).or_default().push("token_create".into());
                }
            }
            for need in &needs {
                if let Need::List(k, name) = need {
                    for cap in rules.item_caps(*k, name) {
                        implied.entry(cap.clone()).or_default().push(need.to_string());
                    }
                }
            }
        }
        for need in needs {
            let e =
                by_need.entry(need).or_default().entry((cmd.clone(), program.clone(), c.process.clone())).or_default();
            e.0 += c.count;
            if c.errno != 0 {
                e.1 += c.count;
                let name = sandbox::errno_name(c.errno);
                if !e.2.contains(&name) {
                    e.2.push(name);
                }
            }
        }
    }
    let mut out: Vec<Asked> = by_need
        .into_iter()
        .map(|(need, requests)| Asked {
            need,
            requests: requests
                .into_iter()
                .map(|((command, program, process), (count, failed, errors))| Request {
                    command,
                    program,
                    process,
                    count,
                    failed,
                    errors,
                })
                .collect(),
            implied_by: Vec::new(),
        })
        .collect();
    for (cap, mut by) in implied {
        by.sort();
        by.dedup();
        match out.iter_mut().find(|a| a.need == Need::Cap(cap.clone())) {
            Some(a) => a.implied_by = by,
            None => out.push(Asked { need: Need::Cap(cap), requests: Vec::new(), implied_by: by }),
        }
    }
    out
}

/// A capability's name, by its number.
fn capability_name(value: u32, rules: &Rules) -> String {
    rules
        .capabilities
        .iter()
        .find(|c| c.value == value)
        .map(|c| c.name.clone())
        .unwrap_or_else(|| format!("CAP_{value}"))
}

/// The calls that failed in a run and did not fail in the recording run (`baseline`), in words.
fn failures(calls: &[Call], baseline: &[Call], rules: &Rules) -> Vec<String> {
    let key = |c: &Call| (c.cmd, c.kind, c.attach, c.cap, c.errno, c.process.clone());
    let known: std::collections::HashSet<_> = baseline.iter().filter(|c| c.errno != 0).map(key).collect();
    let mut out = Vec::new();
    for c in calls.iter().filter(|c| c.token && c.errno != 0 && !known.contains(&key(c))) {
        let (cmd, _, program) = checked(c, rules);
        let what = match (&program, cmd.as_str()) {
            (Some((p, a)), _) => format!("{cmd} of a {p} program ({a})"),
            (None, "map_create") => format!("{cmd} of a {} map", name_of(ListKind::Maps, c.kind, rules)),
            _ => cmd.clone(),
        };
        let line = match c.cap {
            Some(cap) => format!("{} refused in {what} ({}x, by {})", capability_name(cap, rules), c.count, c.process),
            None => format!("{what} failed with {} ({}x, by {})", sandbox::errno_name(c.errno), c.count, c.process),
        };
        out.push(line);
    }
    out.dedup();
    out
}

/// Lines the command wrote in `run` that it did not write in `baseline` (stderr, then stdout),
/// at most `max`.
fn new_messages(run: &LoadOutcome, baseline: &LoadOutcome, max: usize) -> Vec<String> {
    let seen: std::collections::HashSet<&String> = baseline.libbpf_log.iter().chain(&baseline.output).collect();
    let mut out: Vec<String> = Vec::new();
    for line in run.libbpf_log.iter().chain(&run.output) {
        if !seen.contains(line) && !line.trim().is_empty() && !out.contains(line) {
            out.push(line.clone());
            if out.len() == max {
                break;
            }
        }
    }
    out
}

/// Records `argv` (argv[0] an absolute path).
pub fn record(argv: &[String], opts: &RecordOptions, rules: &Rules) -> Result<Recording, RecordError> {
    sandbox::preflight()?;
    let observer = Observer::attach()?;
    let target = Target {
        object: crate::model::ObjectRef::whole(&argv[0], ""),
        programs: Vec::new(),
        declared_memory: (0, None),
        runner: sandbox::Runner::Command { argv: argv.to_vec(), ready_after: opts.ready_after },
    };
    let mut runs = Runs { loader: verify::Loader::new(&opts.sandbox), target, observer: &observer, rules, count: 0 };
    let all_caps = rules.token_capabilities();
    let (run, calls) = runs.run(everything(), &all_caps)?;
    let asked = asked(&calls, observer.capabilities, rules);
    for a in &asked {
        if let Need::List(k, name) = &a.need
            && rules.enums.value_of(*k, name).is_none()
        {
            return Err(RecordError::UnknownValue { what: k.mount_option(), value: name.clone() });
        }
    }
    let asked_delegation = Delegation::from_needs(asked.iter().map(|a| &a.need), rules);
    let mut delegation = asked_delegation.clone();
    let minimization = if opts.minimize && run.loaded {
        let m = minimize(&mut runs, &asked_delegation, &all_caps, (&run, &calls))?;
        // (in kernel order, as every delegation is written)
        delegation = Delegation::from_needs(&m.answer.needs(), rules);
        Some(m)
    } else {
        None
    };
    Ok(Recording {
        command: argv.to_vec(),
        run,
        asked,
        asked_delegation,
        minimization,
        delegation,
        observed_capabilities: observer.capabilities,
    })
}

/// Drops each item in turn, keeping it dropped when the command still works (a greedy pass),
/// then runs the result without each item it kept: an item whose removal now works is dropped
/// too and the confirmation repeats. What is left failed without each of its items in its
/// final form: 1-minimal by construction. Capabilities are candidates too (every one the
/// kernel may check through a token), the substitute first.
fn minimize(
    runs: &mut Runs<'_>,
    asked: &Delegation,
    all_caps: &[String],
    (baseline, baseline_calls): (&LoadOutcome, &[Call]),
) -> Result<Minimization, SandboxError> {
    let rules = runs.rules;
    let mut current = asked.clone();
    current.capabilities = all_caps.to_vec();
    // capabilities first (the substitute before the others), then attach types, program
    // types, map types and commands
    let mut order: Vec<Need> = all_caps.iter().map(|c| Need::Cap(c.clone())).collect();
    for k in [ListKind::Attachments, ListKind::Programs, ListKind::Maps, ListKind::Commands] {
        order.extend(current.list(k).iter().map(|n| Need::List(k, n.clone())));
    }
    let mut verdicts: Vec<Verdict> = Vec::new();
    let mut cut_short = false;
    // what was asked for must work on its own (everything the observer did not see is missing
    // from it): else nothing can be dropped from it, and nothing is claimed
    let (start, _) = runs.run_with(&current)?;
    if !start.loaded {
        let why = start.message.clone().unwrap_or_else(|| verify::describe(&start));
        let problem = if verify::inconclusive(&start) {
            format!("the run with only what it asked for was cut short: {why}")
        } else {
            format!("it does not work with only what it asked for (and every capability): {why}")
        };
        let one_minimal = if verify::inconclusive(&start) { None } else { Some(false) };
        return Ok(Minimization { verdicts, one_minimal, runs: runs.count, problem: Some(problem), answer: current });
    }
    let try_without = |runs: &mut Runs<'_>, current: &Delegation, need: &Need| -> Result<Verdict, SandboxError> {
        let (o, calls) = runs.run_with(&current.without(need))?;
        let mut v = Verdict { need: need.clone(), needed: !o.loaded, failure: None, lost: Vec::new(), undecided: None };
        if verify::inconclusive(&o) {
            v.needed = true; // kept: not shown to be unneeded
            v.undecided = Some(o.message.clone().unwrap_or_else(|| "the run was cut short".into()));
        } else if o.loaded {
            v.lost = failures(&calls, baseline_calls, rules);
            v.lost.extend(new_messages(&o, baseline, 3).into_iter().map(|l| format!("new message: {l}")));
        } else {
            let mut why = o.message.clone().unwrap_or_else(|| verify::describe(&o));
            if let Some(r) = failures(&calls, baseline_calls, rules).first() {
                why.push_str(&format!(" [{r}]"));
            }
            v.failure = Some(why);
        }
        Ok(v)
    };
    // (on a terminal, while it works)
    let progress = crate::progress::Progress::new("minimising", order.len());
    for need in order {
        let v = try_without(runs, &current, &need)?;
        cut_short |= v.undecided.is_some();
        if !v.needed {
            current = current.without(&need);
        }
        verdicts.push(v);
        progress.tick();
    }
    progress.finish();
    // confirmation: each kept item, dropped from the final answer
    for _ in 0..MAX_CONFIRM_ROUNDS {
        let mut dropped = false;
        for verdict in verdicts.iter_mut() {
            if !verdict.needed || verdict.undecided.is_some() {
                continue;
            }
            let need = verdict.need.clone();
            let v = try_without(runs, &current, &need)?;
            cut_short |= v.undecided.is_some();
            if !v.needed {
                current = current.without(&need);
                dropped = true;
            }
            *verdict = v;
        }
        if !dropped {
            let one_minimal = if cut_short { None } else { Some(true) };
            return Ok(Minimization { verdicts, one_minimal, runs: runs.count, problem: None, answer: current });
        }
    }
    let one_minimal = if cut_short { None } else { Some(false) };
    Ok(Minimization { verdicts, one_minimal, runs: runs.count, problem: None, answer: current })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::rules;

    fn call(cmd: &str, kind: (ListKind, &str), attach: u32, token: bool, errno: i32) -> Call {
        let r = rules();
        Call {
            cmd: r.enums.value_of(ListKind::Commands, cmd).unwrap(),
            kind: r.enums.value_of(kind.0, kind.1).unwrap_or(0),
            attach,
            token,
            cap: None,
            errno,
            process: "loader".into(),
            count: 2,
        }
    }

    fn needs(asked: &[Asked]) -> Vec<String> {
        asked.iter().map(|a| a.need.to_string()).collect()
    }

    #[test]
    fn a_call_without_a_token_asks_for_nothing() {
        let c = call("prog_load", (ListKind::Programs, "xdp"), 0, false, 0);
        assert!(asked(&[c], false, rules()).is_empty());
    }

    #[test]
    fn prog_load_asks_for_its_command_type_and_attach_type() {
        let xdp = rules().enums.value_of(ListKind::Attachments, "xdp").unwrap();
        let a = asked(&[call("prog_load", (ListKind::Programs, "xdp"), xdp, true, 0)], false, rules());
        let n = needs(&a);
        for want in ["delegate_cmds prog_load", "delegate_progs xdp", "delegate_attachs xdp"] {
            assert!(n.contains(&want.to_string()), "{n:?}");
        }
        let req = &a.iter().find(|a| a.need.to_string() == "delegate_progs xdp").unwrap().requests[0];
        assert_eq!((req.command.as_str(), req.count, req.failed), ("prog_load", 2, 0));
        assert_eq!(req.program, Some(("xdp".into(), "xdp".into())));
        // the capabilities the rules check for an xdp program, implied by it
        let net_admin = a.iter().find(|a| a.need == Need::Cap("CAP_NET_ADMIN".into())).unwrap();
        assert_eq!(net_admin.implied_by, vec!["delegate_progs xdp".to_string()]);
    }

    #[test]
    fn the_kernel_fixes_up_attach_type_zero_before_its_checks() {
        let a = asked(&[call("prog_load", (ListKind::Programs, "cgroup_sock"), 0, true, 0)], false, rules());
        let n = needs(&a);
        assert!(n.contains(&"delegate_attachs cgroup_inet_sock_create".to_string()), "{n:?}");
        assert!(!n.contains(&"delegate_attachs cgroup_inet_ingress".to_string()), "{n:?}");
        // no fixup for other types: 0 is cgroup_inet_ingress
        let a = asked(&[call("prog_load", (ListKind::Programs, "kprobe"), 0, true, 0)], false, rules());
        assert!(needs(&a).contains(&"delegate_attachs cgroup_inet_ingress".to_string()));
    }

    #[test]
    fn commands_that_never_consult_a_token_ask_for_nothing() {
        // (link_create carries no token: the kernel checks nothing of the delegation)
        let c = call("link_create", (ListKind::Programs, "xdp"), 0, true, 0);
        assert!(asked(&[c], false, rules()).is_empty());
    }

    #[test]
    fn token_creation_implies_its_capability_and_failures_are_counted() {
        let a = asked(
            &[
                call("token_create", (ListKind::Maps, "none"), 0, true, 0),
                call("map_create", (ListKind::Maps, "ringbuf"), 0, true, libc::EPERM),
            ],
            false,
            rules(),
        );
        let bpf = a.iter().find(|a| a.need == Need::Cap("CAP_BPF".into())).unwrap();
        assert!(bpf.implied_by.contains(&"token_create".to_string()), "{:?}", bpf.implied_by);
        let ringbuf = a.iter().find(|a| a.need.to_string() == "delegate_maps ringbuf").unwrap();
        assert_eq!((ringbuf.requests[0].failed, ringbuf.requests[0].errors.clone()), (2, vec!["EPERM".to_string()]));
    }

    #[test]
    fn failures_name_only_what_the_recording_run_did_not_see_fail() {
        let probe = call("prog_load", (ListKind::Programs, "kprobe"), 0, true, libc::EPERM);
        let map = call("map_create", (ListKind::Maps, "hash"), 0, true, libc::EPERM);
        let f = failures(&[probe.clone(), map], std::slice::from_ref(&probe), rules());
        assert_eq!(f, vec!["map_create of a hash map failed with EPERM (2x, by loader)".to_string()]);
    }

    #[test]
    fn observed_capability_checks_are_the_capabilities_asked_for() {
        let xdp = rules().enums.value_of(ListKind::Attachments, "xdp").unwrap();
        let load = call("prog_load", (ListKind::Programs, "xdp"), xdp, true, 0);
        let net_admin = Call { cap: Some(12), ..load.clone() };
        let perfmon_refused = Call { cap: Some(38), errno: libc::EPERM, ..load.clone() };
        let a = asked(&[load, net_admin, perfmon_refused], true, rules());
        let caps: Vec<&Asked> = a.iter().filter(|a| matches!(a.need, Need::Cap(_))).collect();
        // observed: exactly the capabilities checked, with their requests; none implied
        assert_eq!(caps.len(), 2, "{caps:?}");
        let perfmon = caps.iter().find(|a| a.need == Need::Cap("CAP_PERFMON".into())).unwrap();
        assert_eq!((perfmon.requests[0].command.as_str(), perfmon.requests[0].failed), ("prog_load", 2));
        assert!(caps.iter().all(|a| a.implied_by.is_empty()));
        let f = failures(
            &[Call { cap: Some(39), errno: libc::EPERM, ..call("map_create", (ListKind::Maps, "hash"), 0, true, 0) }],
            &[],
            rules(),
        );
        assert_eq!(f, vec!["CAP_BPF refused in map_create of a hash map (2x, by loader)".to_string()]);
    }

    #[test]
    fn token_capabilities_put_the_substitute_first() {
        let caps = rules().token_capabilities();
        assert_eq!(caps[0], rules().privileges.capable.substitute);
        for c in ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"] {
            assert!(caps.contains(&c.to_string()), "{caps:?}");
        }
    }
}
