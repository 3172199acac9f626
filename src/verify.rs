//! Verification: loads objects through a real BPF token with a given delegation (see
//! [`crate::sandbox`]), diagnoses which category is short when a load fails, and with
//! `minimize` proves that every delegated item and capability is required.
//! The only module besides `sandbox` that touches the running kernel.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::analysis::requirements::Need;
use crate::delegation::Delegation;
use crate::rules::{ListKind, Rules};
use crate::sandbox::{self, LoadOutcome, LoadRequest, SandboxError};

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The bpfcap binary, re-executed as the sandbox child.
    pub helper_exe: PathBuf,
    pub uid: u32,
    pub timeout: Duration,
}

impl VerifyOptions {
    pub fn new(helper_exe: impl Into<PathBuf>) -> Self {
        VerifyOptions { helper_exe: helper_exe.into(), uid: sandbox::DEFAULT_UID, timeout: sandbox::DEFAULT_TIMEOUT }
    }
}

/// One object to load: its path and the programs to load (all others get autoload off).
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub path: PathBuf,
    pub programs: Vec<String>,
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

/// The kernel bit masks of a delegation, as the sandbox takes them.
pub fn sandbox_delegation(d: &Delegation, rules: &Rules) -> sandbox::Delegation {
    sandbox::Delegation {
        cmds: d.mask(ListKind::Commands, rules),
        maps: d.mask(ListKind::Maps, rules),
        progs: d.mask(ListKind::Programs, rules),
        attachs: d.mask(ListKind::Attachments, rules),
    }
}

/// Loads one target through a token built from `masks` and `caps`.
pub fn load(
    target: &Target,
    masks: sandbox::Delegation,
    caps: Vec<u32>,
    opts: &VerifyOptions,
) -> Result<LoadOutcome, SandboxError> {
    let req = LoadRequest {
        object: target.path.clone(),
        programs: if target.programs.is_empty() { None } else { Some(target.programs.clone()) },
        delegation: masks,
        caps,
        uid: opts.uid,
        timeout: opts.timeout,
    };
    sandbox::load_in_sandbox(&opts.helper_exe, &req)
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

/// Every capability bpfcap may grant in the sandbox.
const WIDE_CAPS: &[&str] = &["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"];

/// For a failed load: which single category, widened to `any` (or which capability),
/// makes it load, narrowed to the missing items where one item alone suffices.
fn diagnose(target: &Target, d: &Delegation, rules: &Rules, opts: &VerifyOptions) -> Result<String, SandboxError> {
    let base = sandbox_delegation(d, rules);
    let caps = d.capability_values(rules);
    for k in ListKind::ALL {
        let mut wide = base.clone();
        *mask_mut(&mut wide, k) = u64::MAX;
        if load(target, wide, caps.clone(), opts)?.loaded {
            // find single items that suffice
            let mut fixes = Vec::new();
            for e in rules.enums.list(k).iter().filter(|e| e.alias_of.is_none() && e.value < 64) {
                if d.list(k).contains(&e.name) {
                    continue;
                }
                let mut one = base.clone();
                *mask_mut(&mut one, k) |= 1u64 << e.value;
                if load(target, one, caps.clone(), opts)?.loaded {
                    fixes.push(e.name.clone());
                }
            }
            return Ok(if fixes.is_empty() {
                format!("{} is short: it loads with {}=any", k.mount_option(), k.mount_option())
            } else {
                format!("{} lacks {}", k.mount_option(), fixes.join(" or "))
            });
        }
    }
    for c in WIDE_CAPS {
        if d.capabilities.iter().any(|x| x == c) {
            continue;
        }
        let mut with = caps.clone();
        with.extend(rules.capability_value(c));
        if load(target, base.clone(), with, opts)?.loaded {
            return Ok(format!("the capabilities lack {c}"));
        }
    }
    let all = sandbox::Delegation { cmds: u64::MAX, maps: u64::MAX, progs: u64::MAX, attachs: u64::MAX };
    let all_caps: Vec<u32> = WIDE_CAPS.iter().filter_map(|c| rules.capability_value(c)).collect();
    if load(target, all, all_caps, opts)?.loaded {
        Ok("more than one category is short: it loads only with everything delegated".into())
    } else {
        Ok("it does not load even with every item delegated and CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN: this kernel refuses it through a token".into())
    }
}

fn mask_mut(d: &mut sandbox::Delegation, k: ListKind) -> &mut u64 {
    match k {
        ListKind::Commands => &mut d.cmds,
        ListKind::Maps => &mut d.maps,
        ListKind::Programs => &mut d.progs,
        ListKind::Attachments => &mut d.attachs,
    }
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
    let masks = sandbox_delegation(d, rules);
    let caps = d.capability_values(rules);
    let mut results = Vec::new();
    for t in targets {
        let outcome = load(t, masks.clone(), caps.clone(), opts)?;
        let diagnosis = if outcome.loaded { None } else { Some(diagnose(t, d, rules, opts)?) };
        results.push(TargetResult { path: t.path.clone(), programs: t.programs.clone(), outcome, diagnosis });
    }
    let loaded = results.iter().all(|r| r.outcome.loaded);
    let mut items = Vec::new();
    let mut minimal = None;
    if minimize && loaded {
        for need in d.needs() {
            let smaller = d.without(&need);
            let m = sandbox_delegation(&smaller, rules);
            let c = smaller.capability_values(rules);
            let mut failure = None;
            for t in targets {
                let o = load(t, m.clone(), c.clone(), opts)?;
                if !o.loaded {
                    failure = Some(format!("{}: {}", t.path.display(), describe(&o)));
                    break;
                }
            }
            items.push(ItemResult { item: need, required: failure.is_some(), failure });
        }
        minimal = Some(items.iter().all(|i| i.required));
    }
    Ok(Verification { loaded, targets: results, items, minimal })
}

/// The path of the running bpfcap binary, for use as the sandbox helper.
pub fn current_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| Path::new("bpfcap").to_path_buf())
}
