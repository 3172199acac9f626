//! Per-program facts: the program and attach type libbpf gives it (from the section rules)
//! and what its instructions use (helpers, kfuncs, tail calls, maps, subprograms), found by
//! decoding the program and every subprogram it reaches.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::calls::Functions;
use super::gates::{self, GateSite};
use crate::elf::uapi::{BPF_JMP_CALL, BPF_LD_IMM64, BPF_PSEUDO_CALL, BPF_PSEUDO_KFUNC_CALL};
use crate::model::{ExternKind, Function, MapOrigin, Object, RelocTarget, SharedStr, SourceLine};
use crate::rules::{LoaderModel, Rules, Version};
use crate::vocab::ListKind;

/// A use of a helper or kfunc, with where it happens.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallSite {
    pub name: SharedStr,
    /// The function (program or subprogram) containing the call.
    pub function: SharedStr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<SharedStr>,
}

/// What a program's instructions use: the same whichever libbpf version opens the object, so
/// computed once per object and shared by every version's [`ProgramInfo`].
#[derive(Debug, Clone, Serialize, Default)]
pub struct ProgramUses {
    /// Helper calls by name (sorted, unique), with every call site in `helper_calls` (in the
    /// order the instructions were walked).
    pub helpers: Vec<SharedStr>,
    #[serde(skip)]
    pub helper_calls: Vec<CallSite>,
    pub kfuncs: Vec<SharedStr>,
    #[serde(skip)]
    pub kfunc_calls: Vec<CallSite>,
    pub tail_calls: bool,
    pub maps: Vec<String>,
    pub subprograms: Vec<String>,
    /// The callbacks it passes to helpers and kfuncs (ld_imm64 of a function's address, which
    /// the loader turns into BPF_PSEUDO_FUNC): name of the callback, where.
    #[serde(skip)]
    pub callbacks: Vec<CallSite>,
    /// For struct_ops programs: the struct_ops map member that references the program.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub struct_ops_member: Option<String>,
    /// That member's index in its struct.
    #[serde(skip)]
    pub struct_ops_index: Option<u32>,
    /// The verifier's gates the subprograms it reaches show (whatever they are passed).
    #[serde(skip)]
    pub subprogram_gates: Vec<GateSite>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProgramInfo {
    pub name: String,
    pub section: String,
    pub autoload: bool,
    /// None when no SEC rule of the chosen libbpf version matches.
    pub prog_type: Option<String>,
    /// The expected attach type libbpf assigns when it opens the object.
    pub expected_attach_type: Option<String>,
    /// The expected attach type libbpf sends to the kernel at load time, which the token
    /// checks. Differs from `expected_attach_type` for struct_ops programs, which libbpf loads
    /// with the index of the struct member they implement (libbpf.c
    /// bpf_map__init_kern_struct_ops).
    #[serde(skip)]
    pub load_attach_type: Option<String>,
    /// The SEC_DEF gives no expected attach type (0, read by the kernel as cgroup_inet_ingress).
    pub attach_zero: bool,
    /// libbpf sec_def_flags of the matching rule.
    pub sec_flags: Vec<String>,
    pub sec_pattern: Option<String>,
    pub sleepable: bool,
    #[serde(flatten)]
    pub uses: std::sync::Arc<ProgramUses>,
    /// The verifier's privilege gates its instructions show, for its program type
    /// (analysis::gates).
    #[serde(rename = "verifier_gates", skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateSite>,
}

impl ProgramInfo {
    /// What decides the derivation for this program besides its uses: its classification.
    pub fn class(&self) -> (&Option<String>, &Option<String>, bool, &[String], &Option<String>) {
        (&self.prog_type, &self.load_attach_type, self.attach_zero, &self.sec_flags, &self.sec_pattern)
    }
}

fn location(l: &SourceLine) -> SharedStr {
    l.to_string().into()
}

/// Walks a program and every function it reaches (`calls::check_work` has bounded the total
/// of these walks before the object is analysed).
fn reachable<'a>(functions: &Functions<'a>, root: &'a Function) -> Vec<&'a Function> {
    let mut seen: BTreeSet<(&str, u64)> = BTreeSet::new();
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(f) = stack.pop() {
        if !seen.insert((f.section.as_str(), f.offset)) {
            continue;
        }
        out.push(f);
        stack.extend(functions.callees(f));
    }
    out
}

/// Analyses every program of `obj` as loader `model` of `version` sees it.
pub fn analyse_programs(obj: &Object, model: &LoaderModel, version: Version, rules: &Rules) -> Vec<ProgramInfo> {
    classify_programs(obj, &program_uses(obj, rules), model, version, rules)
}

/// What each program of `obj` uses (in `obj.programs` order), found by decoding the program
/// and every subprogram it reaches.
pub fn program_uses(obj: &Object, rules: &Rules) -> Vec<std::sync::Arc<ProgramUses>> {
    let functions = Functions::new(&obj.programs, &obj.subprograms);
    let kconfig_externs: BTreeSet<&str> =
        obj.externs.iter().filter(|e| e.kind == ExternKind::Kconfig).map(|e| e.name.as_str()).collect();
    let kconfig_map = obj.maps.iter().find(|m| m.section == ".kconfig");
    // the first struct_ops member that references each program (struct type, member): one
    // pass, not one per program
    let mut struct_ops_of: BTreeMap<&str, (&str, &crate::model::StructOpsMember)> = BTreeMap::new();
    for so in obj.maps.iter().filter_map(|m| m.struct_ops.as_ref()) {
        for mm in &so.members {
            struct_ops_of.entry(mm.program.as_str()).or_insert((so.type_name.as_str(), mm));
        }
    }
    let tail_call_id = rules.enums.helper_id("tail_call");
    let maps = map_shapes(obj);
    let known = gates::Known { maps: &maps, reads: &rules.verifier.stack_read, helper_args: &rules.enums.helper_args };
    // a subprogram's gates, found once however many programs reach it
    let mut gates_of: HashMap<(&str, u64), Vec<GateSite>> = HashMap::default();
    // names shared by every call site and program of the object (keyed by what the object
    // says: std's hashing, which a crafted object cannot make collide)
    let mut helper_names: HashMap<u32, SharedStr> = HashMap::default();
    let mut function_names: HashMap<(&str, u64), SharedStr> = HashMap::default();
    // (keyed by function and line-info entry: the entries of one function are numbered)
    let mut locations: HashMap<(&str, u64, usize), SharedStr> = HashMap::default();
    obj.programs
        .iter()
        .map(|p| {
            let mut helpers = BTreeSet::new();
            let mut helper_calls = Vec::new();
            let mut callbacks = Vec::new();
            let mut kfuncs = BTreeSet::new();
            let mut kfunc_calls = Vec::new();
            let mut maps = BTreeSet::new();
            let mut subprograms = Vec::new();
            let mut subprogram_gates = Vec::new();
            let mut tail_calls = false;
            for f in reachable(&functions, &p.function) {
                if f.name != p.function.name || f.section != p.function.section {
                    subprograms.push(f.name.clone());
                    let found = gates_of
                        .entry((f.section.as_str(), f.offset))
                        .or_insert_with(|| gates::subprogram_gates(f, known));
                    subprogram_gates.extend(found.iter().cloned());
                }
                let fname = function_names
                    .entry((f.section.as_str(), f.offset))
                    .or_insert_with(|| f.name.as_str().into())
                    .clone();
                let mut site = |i: usize| {
                    let entry = f.line_entry_of(i)?;
                    // one string per line-info entry of the object
                    Some(
                        locations
                            .entry((f.section.as_str(), f.offset, entry))
                            .or_insert_with(|| location(&f.lines[entry].1))
                            .clone(),
                    )
                };
                for (i, insn) in f.insns.iter().enumerate() {
                    if insn.code != BPF_JMP_CALL {
                        continue;
                    }
                    if insn.src == 0 {
                        tail_calls |= tail_call_id == Some(insn.imm as u32);
                        let name = helper_names
                            .entry(insn.imm as u32)
                            .or_insert_with(|| match rules.enums.helper_name(insn.imm as u32) {
                                Some(n) => n.into(),
                                None => format!("helper#{}", insn.imm).into(),
                            })
                            .clone();
                        helpers.insert(name.clone());
                        helper_calls.push(CallSite { name, function: fname.clone(), location: site(i) });
                    } else if insn.src == BPF_PSEUDO_KFUNC_CALL
                        && !matches!(f.reloc_at(i), Some(RelocTarget::Extern(_)))
                    {
                        let name: SharedStr = format!("kfunc#{}", insn.imm).into();
                        kfuncs.insert(name.clone());
                        kfunc_calls.push(CallSite { name, function: fname.clone(), location: site(i) });
                    }
                }
                // relocations (sorted by instruction, one per instruction: the reader keeps them so)
                for r in &f.relocs {
                    let Some(insn) = f.insns.get(r.insn) else { continue };
                    if insn.code == BPF_JMP_CALL && insn.src == 0 {
                        continue; // a helper call: its relocation, if any, is not the program's
                    }
                    match &r.target {
                        // clang emits a kfunc call as a pseudo call relocated against the extern
                        // function; libbpf turns it into BPF_PSEUDO_KFUNC_CALL
                        RelocTarget::Extern(n)
                            if insn.code == BPF_JMP_CALL
                                && (insn.src == BPF_PSEUDO_KFUNC_CALL || insn.src == BPF_PSEUDO_CALL) =>
                        {
                            let name: SharedStr = n.as_str().into();
                            kfuncs.insert(name.clone());
                            kfunc_calls.push(CallSite { name, function: fname.clone(), location: site(r.insn) });
                        }
                        RelocTarget::Extern(n) => {
                            if insn.code == BPF_LD_IMM64
                                && kconfig_externs.contains(n.as_str())
                                && let Some(km) = kconfig_map
                            {
                                maps.insert(km.name.clone());
                            }
                        }
                        RelocTarget::Map(m) => {
                            if let Some(map) = obj.maps.get(*m) {
                                maps.insert(map.name.clone());
                            }
                        }
                        // the address of a function: a callback (libbpf and cilium/ebpf load it
                        // as BPF_PSEUDO_FUNC)
                        RelocTarget::Function { section, sym_offset, .. } if insn.code == BPF_LD_IMM64 => {
                            let target = functions.at(section, *sym_offset as i64 + i64::from(insn.imm));
                            let name: SharedStr = target.map_or("?", |t| t.name.as_str()).into();
                            callbacks.push(CallSite { name, function: fname.clone(), location: site(r.insn) });
                        }
                        _ => {}
                    }
                }
            }
            subprograms.sort();
            subprograms.dedup();
            // (call sites stay in instruction order: their reasons are sorted with the rest)
            let so = struct_ops_of.get(p.name.as_str());
            std::sync::Arc::new(ProgramUses {
                helpers: helpers.into_iter().collect(),
                helper_calls,
                kfuncs: kfuncs.into_iter().collect(),
                kfunc_calls,
                tail_calls,
                maps: maps.into_iter().collect(),
                subprograms,
                callbacks,
                struct_ops_member: so.map(|(t, mm)| format!("{t}.{}", mm.member)),
                struct_ops_index: so.map(|(_, mm)| mm.index),
                subprogram_gates,
            })
        })
        .collect()
}

/// Per map of `obj`, what the gates' walk needs: whether an ld_imm64 of its address loads a
/// pointer into the map's value (global data), and its key and value sizes. (`.kconfig` externs
/// and arena variables are relocated as symbols, not as a map: the gates do not track them.)
fn map_shapes(obj: &Object) -> Vec<gates::MapShape> {
    obj.maps
        .iter()
        .map(|m| gates::MapShape {
            global_data: m.origin == MapOrigin::GlobalData,
            key_size: m.key_size,
            value_size: m.value_size,
        })
        .collect()
}

/// The section rule (index in the model's `sections`) each program of `obj` matches in loader
/// `model` of `version`. Versions that match the same rules classify the programs alike.
pub fn section_rules_of(obj: &Object, model: &LoaderModel, version: Version) -> Vec<Option<usize>> {
    obj.programs
        .iter()
        .map(|p| model.section_rule_index(p.section.strip_prefix('?').unwrap_or(&p.section), version))
        .collect()
}

/// The programs of `obj` as loader `model` of `version` classifies them, with their `uses`
/// (from [`program_uses`]).
pub fn classify_programs(
    obj: &Object,
    uses: &[std::sync::Arc<ProgramUses>],
    model: &LoaderModel,
    version: Version,
    rules: &Rules,
) -> Vec<ProgramInfo> {
    classify_matched(obj, uses, model, &section_rules_of(obj, model, version), rules)
}

/// [`classify_programs`] with the section rule each program matches (from
/// [`section_rules_of`]).
pub fn classify_matched(
    obj: &Object,
    uses: &[std::sync::Arc<ProgramUses>],
    model: &LoaderModel,
    matched: &[Option<usize>],
    rules: &Rules,
) -> Vec<ProgramInfo> {
    let maps = map_shapes(obj);
    let known = gates::Known { maps: &maps, reads: &rules.verifier.stack_read, helper_args: &rules.enums.helper_args };
    obj.programs
        .iter()
        .zip(uses)
        .zip(matched)
        .map(|((p, uses), rule)| {
            let rule = rule.map(|i| &model.sections[i]);
            let (prog_type, attach) = match rule {
                Some(r) => (Some(r.prog_type.clone()), Some(r.expected_attach_type.clone())),
                None => (None, None),
            };
            let mut attach_zero = rule.is_some_and(|r| r.attach_zero);
            let mut load_attach = attach.clone();
            // struct_ops programs: libbpf loads them with the member index of the function
            // pointer they implement as expected attach type (libbpf.c
            // bpf_map__init_kern_struct_ops), and the token checks that number as an attach type.
            if prog_type.as_deref() == Some("struct_ops")
                && let Some(idx) = uses.struct_ops_index
            {
                load_attach =
                    rules.enums.name_of(ListKind::Attachments, idx).map(String::from).or(Some(format!("{idx}")));
                attach_zero = idx == 0;
            }
            // (the main function's, with the context's packet fields, and its subprograms')
            let gates = match prog_type.as_deref() {
                Some(t) => {
                    let mut g = gates::gates(&p.function, rules.ctx_packet(t), known);
                    g.extend(uses.subprogram_gates.iter().cloned());
                    g.sort();
                    g.dedup();
                    g
                }
                None => Vec::new(),
            };
            ProgramInfo {
                name: p.name.clone(),
                section: p.section.clone(),
                autoload: p.autoload,
                prog_type,
                expected_attach_type: attach,
                load_attach_type: load_attach,
                attach_zero,
                sec_flags: rule.map(|r| r.flags.clone()).unwrap_or_default(),
                sec_pattern: rule.map(|r| match r.match_kind {
                    crate::rules::SectionMatch::Plus => format!("{}+", r.pattern),
                    _ => r.pattern.clone(),
                }),
                sleepable: rule.is_some_and(|r| r.has_flag("SEC_SLEEPABLE")),
                gates,
                uses: uses.clone(),
            }
        })
        .collect()
}
