//! Verification: loads objects through a real BPF token with a given delegation (see
//! [`crate::sandbox`]), diagnoses which category is short when a load fails, and with
//! `minimize` proves that every delegated item and capability is required.
//! The only module besides `sandbox` that touches the running kernel.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::delegation::Delegation;
use crate::model::ObjectRef;
use crate::rules::Rules;
use crate::sandbox::{self, LoadOutcome, LoadRequest, SandboxError};
use crate::vocab::{ListKind, Masks, Need};

/// Default time limit of a whole verification (every load, diagnosis and --minimize included).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The bpfcap binary, re-executed as the sandbox child.
    pub helper_exe: PathBuf,
    pub uid: u32,
    /// Time limit of one load.
    pub timeout: Duration,
    /// Time limit of the whole verification.
    pub deadline: Duration,
    /// Memory budget of one load, in bytes.
    pub memory: u64,
}

impl VerifyOptions {
    pub fn new(helper_exe: impl Into<PathBuf>) -> Self {
        VerifyOptions {
            helper_exe: helper_exe.into(),
            uid: sandbox::DEFAULT_UID,
            timeout: sandbox::DEFAULT_TIMEOUT,
            deadline: DEFAULT_DEADLINE,
            memory: sandbox::DEFAULT_MEMORY,
        }
    }
}

/// One object to load: where its bytes are and the programs to load (all others get autoload
/// off). For a program that runs itself (`Runner::Command`), `object` names the program.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub object: ObjectRef,
    pub programs: Vec<String>,
    /// What its maps declare (analysis::memory): bytes in all, and the map that asks most.
    #[serde(skip)]
    pub declared_memory: (u64, Option<(String, u64)>),
    /// Who loads it: libbpf, a cilium/ebpf loader, or the program that embeds it.
    #[serde(skip)]
    pub runner: sandbox::Runner,
}

impl Target {
    /// Every program of the object file at `path`, its maps declaring nothing.
    pub fn new(path: impl Into<PathBuf>, programs: Vec<String>) -> Target {
        Target::of(crate::elf::object_file(path), programs)
    }

    /// The object `object` refers to, loaded by libbpf, its maps declaring nothing.
    pub fn of(object: ObjectRef, programs: Vec<String>) -> Target {
        Target { object, programs, declared_memory: (0, None), runner: sandbox::Runner::Libbpf }
    }
}

/// The machine's possible CPUs (per-CPU maps take memory for each): /sys/devices/system/cpu/possible.
pub fn possible_cpus() -> u64 {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap_or_default();
    let n: u64 = text
        .trim()
        .split(',')
        .filter_map(|r| match r.split_once('-') {
            Some((a, b)) => Some(b.parse::<u64>().ok()? - a.parse::<u64>().ok()? + 1),
            None => r.parse::<u64>().ok().map(|_| 1),
        })
        .sum();
    n.max(1)
}

/// Whether an outcome says nothing about the delegation: the load ran out of time or memory.
pub fn inconclusive(o: &LoadOutcome) -> bool {
    matches!(o.step.as_deref(), Some("timeout" | "deadline" | "memory_limit"))
}

/// Result of loading one target with one delegation.
#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    pub path: PathBuf,
    pub programs: Vec<String>,
    pub outcome: LoadOutcome,
    /// When the load failed: what widening made it load ("delegate_attachs lacks
    /// cgroup_inet_ingress"), or that nothing does (the kernel refuses it anyway).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemResult {
    pub item: Need,
    pub required: bool,
    /// How the load failed without the item (first failing target), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Why the load without the item said nothing (it ran out of time or memory): whether
    /// the item is required is not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undecided: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub loaded: bool,
    pub targets: Vec<TargetResult>,
    /// With minimize: each delegated item and capability, required or not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemResult>,
    pub minimal: Option<bool>,
}

/// Loads targets in the sandbox within a verification's limits: each load within its own
/// time limit and the verification's deadline, and no object whose maps declare more than the
/// memory budget.
pub struct Loader<'o> {
    opts: &'o VerifyOptions,
    end: Instant,
}

impl<'o> Loader<'o> {
    pub fn new(opts: &'o VerifyOptions) -> Self {
        Loader { opts, end: Instant::now() + opts.deadline }
    }

    /// Loads one target through a token built from `masks` and `caps`.
    pub fn load(&self, target: &Target, masks: Masks, caps: Vec<u32>) -> Result<LoadOutcome, SandboxError> {
        let opts = self.opts;
        if let (declared, Some((map, bytes))) = &target.declared_memory
            && *declared > opts.memory
        {
            return Ok(LoadOutcome {
                step: Some("memory_limit".into()),
                errno: Some(libc::ENOMEM),
                message: Some(format!(
                    "its maps declare {} MiB (map {} alone {} MiB), more than the sandbox's memory limit of {} MiB (--memory); it was not loaded",
                    declared >> 20,
                    crate::text::Escaped(map),
                    bytes >> 20,
                    opts.memory >> 20
                )),
                ..Default::default()
            });
        }
        let left = self.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(deadline_outcome(opts.deadline));
        }
        let req = LoadRequest {
            object: target.object.clone(),
            programs: if target.programs.is_empty() { None } else { Some(target.programs.clone()) },
            delegation: masks,
            caps,
            uid: opts.uid,
            timeout: opts.timeout.min(left),
            memory: opts.memory,
            runner: target.runner.clone(),
        };
        let outcome = sandbox::load_in_sandbox(&opts.helper_exe, &req)?;
        // a load cut short by the verification's deadline, not by its own time limit
        if outcome.step.as_deref() == Some("timeout") && left < opts.timeout {
            return Ok(deadline_outcome(opts.deadline));
        }
        Ok(outcome)
    }
}

fn deadline_outcome(deadline: Duration) -> LoadOutcome {
    LoadOutcome {
        step: Some("deadline".into()),
        message: Some(format!("the verification's time limit of {deadline:?} (--deadline) was reached")),
        ..Default::default()
    }
}

/// Describes a failed outcome in one line.
pub fn describe(o: &LoadOutcome) -> String {
    let mut s = format!("failed at {}", o.step.as_deref().unwrap_or("load"));
    if let Some(e) = o.errno {
        s.push_str(&format!(" ({})", sandbox::errno_name(e)));
    }
    if let Some(p) = o.programs.iter().find(|p| p.errno.is_some()) {
        s.push_str(&format!(", program {}", p.name));
    }
    s
}

/// For a failed load: which single category, widened to `any` (or which capability),
/// makes it load, narrowed to the missing items where one item alone suffices. A load that
/// ran out of time or memory says nothing about the delegation: the diagnosis says so
/// instead of going on.
fn diagnose(
    target: &Target,
    first: &LoadOutcome,
    d: &Delegation,
    rules: &Rules,
    loader: &Loader,
) -> Result<String, SandboxError> {
    let cut_short = |o: &LoadOutcome| {
        format!(
            "not diagnosed: {} ({}); whether the delegation suffices is not known",
            o.message.as_deref().unwrap_or("the load was cut short"),
            o.step.as_deref().unwrap_or("")
        )
    };
    if inconclusive(first) {
        return Ok(cut_short(first));
    }
    // not the token's doing when it does not load as root without one either
    if target.runner == sandbox::Runner::Libbpf
        && let Err(line) = loads_as_root(target)
    {
        return Ok(format!("{NOT_THE_TOKEN}: {line}"));
    }
    // a trial load: Err(diagnosis) when it was cut short
    let loads = |masks: Masks, caps: Vec<u32>| -> Result<Result<bool, String>, SandboxError> {
        let o = loader.load(target, masks, caps)?;
        Ok(if inconclusive(&o) { Err(cut_short(&o)) } else { Ok(o.loaded) })
    };
    let base = d.masks(rules);
    let caps = d.capability_values(rules);
    // the capabilities a token can be asked for, less the one that stands in for all the others
    // (it would hide which one is missing)
    let narrow: Vec<String> =
        rules.token_capabilities().into_iter().filter(|c| *c != rules.privileges.capable.substitute).collect();
    for k in ListKind::ALL {
        let mut wide = base;
        wide[k] = u64::MAX;
        match loads(wide, caps.clone())? {
            Err(why) => return Ok(why),
            Ok(false) => continue,
            Ok(true) => {}
        }
        // find single items that suffice
        let mut fixes = Vec::new();
        for e in rules.enums.list(k).iter().filter(|e| e.alias_of.is_none() && e.value < 64) {
            if d.list(k).contains(&e.name) {
                continue;
            }
            let mut one = base;
            one[k] |= 1u64 << e.value;
            match loads(one, caps.clone())? {
                Err(why) => return Ok(why),
                Ok(true) => fixes.push(e.name.clone()),
                Ok(false) => {}
            }
        }
        return Ok(if fixes.is_empty() {
            format!("{} is short: it loads with {}=any", k.mount_option(), k.mount_option())
        } else {
            format!("{} lacks {}", k.mount_option(), fixes.join(" or "))
        });
    }
    for c in &narrow {
        if d.capabilities.iter().any(|x| x == c) {
            continue;
        }
        let mut with = caps.clone();
        with.extend(rules.capability_value(c));
        match loads(base, with)? {
            Err(why) => return Ok(why),
            Ok(true) => return Ok(format!("the capabilities lack {c}")),
            Ok(false) => {}
        }
    }
    let all = Masks::ALL;
    let all_caps: Vec<u32> = narrow.iter().filter_map(|c| rules.capability_value(c)).collect();
    Ok(match loads(all, all_caps)? {
        Err(why) => why,
        Ok(true) => "more than one category is short: it loads only with everything delegated".into(),
        Ok(false) => format!(
            "it does not load even with every item delegated and {}: this kernel refuses it through a token",
            narrow.join(", ")
        ),
    })
}

/// The start of a diagnosis that blames the object or the kernel, not the delegation.
pub const NOT_THE_TOKEN: &str = "not a delegation problem: it does not load as root without a token either";

/// libbpf's messages while [`loads_as_root`] runs (libbpf's print callback is a plain function).
static ROOT_LOAD_LOG: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn collect_root_load_log(_: libbpf_rs::PrintLevel, msg: String) {
    if let Ok(mut log) = ROOT_LOAD_LOG.lock() {
        log.extend(msg.lines().map(String::from));
    }
}

/// Loads the target's programs with libbpf in this process, as host root and without a token,
/// the maps sized as the sandbox sizes them, and closes it again: `Err` carries libbpf's
/// decisive line (the first that says what failed: an unresolved CO-RE relocation, an extern
/// the kernel lacks, a map the kernel refuses) when even that fails.
pub fn loads_as_root(target: &Target) -> Result<(), String> {
    let bytes = crate::input::read_object_ref(&target.object).map_err(|e| e.to_string())?;
    let name = &target.object.name;
    ROOT_LOAD_LOG.lock().map(|mut l| l.clear()).ok();
    let previous = libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Info, collect_root_load_log)));
    let result = (|| {
        let mut open = libbpf_rs::ObjectBuilder::default()
            .name(name)
            .and_then(|b| b.open_memory(&bytes))
            .map_err(|e| format!("libbpf cannot open it: {e}"))?;
        if !target.programs.is_empty() {
            for mut p in open.progs_mut() {
                let keep = target.programs.iter().any(|t| p.name().to_string_lossy() == t.as_str());
                p.set_autoload(keep);
            }
        }
        sandbox::size_runtime_sized_maps(&mut open);
        sandbox::without_pinning(&mut open);
        open.load().map(drop).map_err(|e| e.to_string())
    })();
    libbpf_rs::set_print(previous);
    let log = std::mem::take(&mut *ROOT_LOAD_LOG.lock().unwrap_or_else(|e| e.into_inner()));
    result.map_err(|e| {
        let decisive = log.iter().find(|l| {
            let l = l.to_ascii_lowercase();
            (l.contains("fail") || l.contains("error") || l.contains("not found") || l.contains("invalid"))
                && !l.contains("token")
        });
        decisive.map(|l| l.trim().to_string()).unwrap_or(e)
    })
}

/// Verifies that every target loads with `d`; with `minimize`, also drops each item in turn.
pub fn verify(
    targets: &[Target],
    d: &Delegation,
    minimize: bool,
    rules: &Rules,
    opts: &VerifyOptions,
) -> Result<Verification, SandboxError> {
    sandbox::preflight()?;
    let loader = Loader::new(opts);
    let masks = d.masks(rules);
    let caps = d.capability_values(rules);
    let mut results = Vec::new();
    // (on a terminal, while it works)
    let progress = crate::progress::Progress::new("verifying", targets.len());
    for t in targets {
        let outcome = loader.load(t, masks, caps.clone())?;
        let diagnosis = if outcome.loaded { None } else { Some(diagnose(t, &outcome, d, rules, &loader)?) };
        results.push(TargetResult {
            path: PathBuf::from(&t.object.display),
            programs: t.programs.clone(),
            outcome,
            diagnosis,
        });
        progress.tick();
    }
    progress.finish();
    let loaded = results.iter().all(|r| r.outcome.loaded);
    let mut items = Vec::new();
    let mut minimal = None;
    if minimize && loaded {
        let needs = d.needs();
        let progress = crate::progress::Progress::new("minimising", needs.len());
        for need in needs {
            let smaller = d.without(&need);
            let m = smaller.masks(rules);
            let c = smaller.capability_values(rules);
            let (mut failure, mut undecided) = (None, None);
            for t in targets {
                let o = loader.load(t, m, c.clone())?;
                if inconclusive(&o) {
                    undecided = Some(format!("{}: {}", t.object.display, o.message.as_deref().unwrap_or("cut short")));
                    break;
                }
                if !o.loaded {
                    failure = Some(format!("{}: {}", t.object.display, describe(&o)));
                    break;
                }
            }
            items.push(ItemResult { item: need, required: failure.is_some(), failure, undecided });
            progress.tick();
        }
        progress.finish();
        // (an item whose load was cut short leaves minimality unknown)
        minimal =
            if items.iter().any(|i| i.undecided.is_some()) { None } else { Some(items.iter().all(|i| i.required)) };
    }
    Ok(Verification { loaded, targets: results, items, minimal })
}

/// Who proves an answer for an object analysed for `loader`: libbpf, or a cilium/ebpf loader
/// (`cilium_loader`, else `bpfcap-cilium-loader` beside bpfcap). `None`: the loader takes no
/// token, and there is nothing to prove. A loader bpfcap cannot run here is an error: it never
/// proves an answer with another loader standing in.
pub fn runner_for(
    loader: &crate::analysis::ObjectLoader,
    cilium_loader: Option<&Path>,
    rules: &Rules,
) -> Result<Option<sandbox::Runner>, VerifyError> {
    let Some(spec) = &loader.spec else { return Ok(Some(sandbox::Runner::Libbpf)) };
    let model = rules.loader(&spec.name).expect("the analysis names a loader of the rules");
    if !spec.token {
        return Ok(None);
    }
    match model.header.verified_by {
        crate::rules::VerifiedBy::Libbpf => Ok(Some(sandbox::Runner::Libbpf)),
        crate::rules::VerifiedBy::CiliumLoader => {
            let path = match cilium_loader {
                Some(p) => p.to_path_buf(),
                None => current_exe().with_file_name("bpfcap-cilium-loader"),
            };
            if !path.is_file() {
                return Err(VerifyError::NoLoader {
                    loader: model.header.title.clone(),
                    path: path.display().to_string(),
                });
            }
            Ok(Some(sandbox::Runner::CiliumLoader(path)))
        }
        crate::rules::VerifiedBy::Nothing => Ok(None),
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum VerifyError {
    #[error("cannot prove the answer for {loader} here: no {loader} loader at {path}")]
    #[diagnostic(
        code(bpfcap::verify::no_loader),
        help(
            "build one from tools/cilium-loader (scripts/build-go-tools) and pass --cilium-loader PATH; bpfcap never proves an answer with libbpf standing in for another loader"
        )
    )]
    NoLoader { loader: String, path: String },
}

/// The path of the running bpfcap binary, for use as the sandbox helper.
pub fn current_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| Path::new("bpfcap").to_path_buf())
}
