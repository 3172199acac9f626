//! What the kernel checks, as requirements: for every map the loader creates and every program
//! it loads, the commands, map, program and attach types and capabilities
//! (rules/kernel/privileges.toml, verifier.toml), each with its reason, as a draft that the
//! loader's own steps (`analysis::loader`) are decided and explained on ([`derive`]).

use std::collections::BTreeSet;

use super::draft::{Draft, DraftOptional, TextKey, Texts};
use super::loader;
use super::programs::ProgramInfo;
use super::requirements::{Loader, Reason};
use crate::model::{MapOrigin, Object, SharedStr};
use crate::rules::{KfuncWhen, Rules};
use crate::vocab::ListKind;

/// `format!`, into a [`SharedStr`].
macro_rules! shared {
    ($($arg:tt)*) => { SharedStr::from(format!($($arg)*)) };
}

fn reason(obj: &SharedStr, text: String) -> Reason {
    Reason { object: obj.clone(), text: text.into(), ..Reason::default() }
}

/// Per (function, helper): the `bpf_` name and one text per capability.
type CallTexts = crate::rules::HashMap<(SharedStr, SharedStr), (SharedStr, Vec<SharedStr>)>;

/// A selected program with its names shared by all of its reasons.
pub(crate) struct Prog<'a> {
    pub(crate) info: &'a ProgramInfo,
    pub(crate) name: SharedStr,
    pub(crate) section: SharedStr,
}

/// The selected programs of `programs`, each with its names shared by all of its reasons.
pub(crate) fn selected_progs<'a>(programs: &'a [ProgramInfo], selected: &BTreeSet<String>) -> Vec<Prog<'a>> {
    programs
        .iter()
        .filter(|p| selected.contains(&p.name))
        .map(|p| Prog { info: p, name: p.name.as_str().into(), section: p.section.as_str().into() })
        .collect()
}

/// What the kernel checks for one object, for the selected programs `progs` under `loader`:
/// for the maps the loader creates (`created`, per map of the object:
/// [`loader::created_maps`]) and the programs it loads, the commands, map, program and attach
/// types and capabilities, each with its reason. A loader's own steps through the token are
/// decided and explained on top of this draft ([`loader::decide`], [`loader::explain`]); the
/// raw loader has none, and its programs' attach types are here.
pub(crate) fn derive<'r>(
    obj: &Object,
    progs: &[Prog],
    loader: Loader,
    created: &[bool],
    rules: &'r Rules,
    texts: &Texts,
) -> Draft<'r> {
    let title = loader.title();
    let on: SharedStr = obj.name.as_str().into();
    let mut base = Draft::new(rules);
    base.warnings.extend(obj.warnings.iter().map(|w| format!("{}: {w}", obj.name)));

    // The token itself.
    for (i, cap) in rules.privileges.token_create.caps.iter().enumerate() {
        let text = texts.get(TextKey::TokenCap(i), || format!("creating a BPF token from the delegated bpffs needs {cap} in the bpffs's user namespace (kernel/bpf/token.c bpf_token_create)"));
        base.add_cap(cap, Reason { object: on.clone(), text, ..Reason::default() });
    }

    // Programs.
    for prog in progs {
        let p = prog.info;
        let Some(ptype) = &p.prog_type else {
            base.warnings.push(format!(
                "{}: program '{}' in section '{}': no {title} section rule matches this section, so {title} cannot load it without an explicit program type",
                obj.name, p.name, p.section
            ));
            continue;
        };
        let prog_reason = |text: SharedStr| Reason {
            object: on.clone(),
            program: Some(prog.name.clone()),
            section: Some(prog.section.clone()),
            text,
            ..Reason::default()
        };
        base.add_list(ListKind::Commands, "prog_load", prog_reason(shared!("loads program {}", p.name)));
        base.add_list(
            ListKind::Programs,
            ptype,
            prog_reason(shared!(
                "program {} in section '{}' is a {ptype} program ({title} SEC(\"{}\"))",
                p.name,
                p.section,
                p.sec_pattern.as_deref().unwrap_or("?")
            )),
        );
        if let Some(rule) = rules.prog_rule(ptype) {
            let type_id = rules.names.id(Some(ListKind::Programs), ptype);
            for (i, c) in rule.caps.iter().enumerate() {
                let make = || format!("loading a {ptype} program needs {c} ({})", rule.why);
                let text = match type_id {
                    Some(t) => texts.get(TextKey::ProgCap(t, i), make),
                    None => make().into(),
                };
                base.add_cap(c, prog_reason(text));
            }
        }
        // The calls of one helper from one function share their texts (call sites differ only
        // in their location); program_uses gives one string per helper and function name.
        let mut call_texts: CallTexts = Default::default();
        for call in &p.uses.helper_calls {
            if let Some(rule) = rules.privileges.helper_caps(&call.name) {
                let key = (call.function.clone(), call.name.clone());
                let (helper, texts) = call_texts.entry(key).or_insert_with(|| {
                    let texts = rule
                        .caps
                        .iter()
                        .map(|c| {
                            shared!(
                                "{} calls bpf_{}, which the verifier offers only with {c} ({})",
                                call.function,
                                call.name,
                                rule.why
                            )
                        })
                        .collect();
                    (shared!("bpf_{}", call.name), texts)
                });
                for (c, text) in rule.caps.iter().zip(texts.iter()) {
                    base.add_cap(
                        c,
                        Reason {
                            helper: Some(helper.clone()),
                            location: call.location.clone(),
                            ..prog_reason(text.clone())
                        },
                    );
                }
            }
        }
        let uses_arena =
            p.uses.maps.iter().any(|n| obj.maps.iter().any(|m| &m.name == n && loader::is_arena(m, rules)));
        for call in &p.uses.kfunc_calls {
            for rule in &rules.privileges.kfunc_rule {
                let applies = match rule.when {
                    KfuncWhen::AnyKfunc => true,
                    KfuncWhen::Arena => uses_arena,
                    KfuncWhen::Listed => rule.kfuncs.iter().any(|k| **k == *call.name),
                    KfuncWhen::Verifier => false,
                };
                if !applies {
                    continue;
                }
                if rule.when == KfuncWhen::Listed {
                    base.warnings.push(format!(
                        "{}: {} calls kfunc {}, which needs {} in the initial user namespace: no BPF token can grant it ({})",
                        obj.name, call.function, call.name, rule.caps.join(", "), rule.why
                    ));
                    continue;
                }
                for c in &rule.caps {
                    base.add_cap(
                        c,
                        Reason {
                            kfunc: Some(call.name.clone()),
                            location: call.location.clone(),
                            ..prog_reason(
                                format!(
                                    "{} calls kfunc {}; kfunc calls need {c} ({})",
                                    call.function, call.name, rule.why
                                )
                                .into(),
                            )
                        },
                    );
                }
            }
        }
        // The verifier's privilege gates the instructions show.
        for site in &p.gates {
            let rule = rules.gate(site.gate);
            for c in &rule.caps {
                base.add_cap(
                    c,
                    Reason {
                        location: site.location.clone(),
                        ..prog_reason(shared!("{} executes `{}`: {}", p.name, site.insn, rule.why))
                    },
                );
            }
        }
    }

    // Maps: those the loader creates (libbpf: every map of the object, whichever programs are
    // loaded; cilium/ebpf: those requested).
    let created_maps = || obj.maps.iter().zip(created).filter(|(_, c)| **c).map(|(m, _)| m);
    for m in created_maps() {
        let Some(tname) = rules.enums.name_of(ListKind::Maps, m.map_type) else {
            base.warnings.push(format!("{}: map {} has unknown map type {}", obj.name, m.name, m.map_type));
            continue;
        };
        let what = match m.origin {
            MapOrigin::Btf => shared!("map {} ({} in .maps)", m.name, tname),
            MapOrigin::InnerTemplate => {
                shared!("map {}: inner map template of a map-in-map, created and closed by the loader", m.name)
            }
            MapOrigin::LegacyBpfMapDef | MapOrigin::LegacyIproute2 => shared!("legacy map {} in section maps", m.name),
            MapOrigin::GlobalData => shared!("global data section {} becomes the {} map {}", m.section, tname, m.name),
            MapOrigin::Kconfig => shared!(".kconfig externs live in the {} map {}", tname, m.name),
            MapOrigin::StructOps => shared!("struct_ops variable {} in {} becomes a struct_ops map", m.name, m.section),
        };
        let (mname, msection): (SharedStr, SharedStr) = (m.name.as_str().into(), m.section.as_str().into());
        let map_reason = |text: SharedStr| Reason {
            object: on.clone(),
            map: Some(mname.clone()),
            section: Some(msection.clone()),
            text,
            ..Reason::default()
        };
        // (the needs of global-data maps are kept apart: a loader's fallback can leave them out)
        let internal = m.is_internal();
        let add = |base: &mut Draft, kind: Option<ListKind>, name: &str, reason: Reason| {
            if internal {
                base.add_internal(kind, name, reason)
            } else {
                let id = base.ids.id(kind, name);
                base.add_id(id, reason)
            }
        };
        // (what creating it is, in words that read after "creates")
        let created = match m.origin {
            MapOrigin::GlobalData => shared!("the {} map {} for global data section {}", tname, m.name, m.section),
            MapOrigin::Kconfig => shared!("the {} map {} for .kconfig externs", tname, m.name),
            MapOrigin::StructOps => shared!("a struct_ops map for variable {} in {}", m.name, m.section),
            _ => what.clone(),
        };
        add(&mut base, Some(ListKind::Commands), "map_create", map_reason(shared!("creates {created}")));
        add(&mut base, Some(ListKind::Maps), tname, map_reason(what));
        if let Some(rule) = rules.map_rule(tname) {
            let type_id = rules.names.id(Some(ListKind::Maps), tname);
            for (i, c) in rule.caps.iter().enumerate() {
                let make = || format!("creating a {tname} map needs {c} ({})", rule.why);
                let text = match type_id {
                    Some(t) => texts.get(TextKey::MapCap(t, i), make),
                    None => make().into(),
                };
                add(&mut base, None, c, map_reason(text));
            }
        }
    }

    // BTF.
    if obj.has_btf {
        let struct_ops = created_maps().any(|m| m.origin == MapOrigin::StructOps);
        let special: Vec<&crate::model::Map> = created_maps().filter(|m| !m.btf_special_fields.is_empty()).collect();
        if struct_ops {
            base.add_list(ListKind::Commands, "btf_load",
                reason(&on, "the object has struct_ops maps, which need the object's BTF loaded into the kernel (libbpf.c kernel_needs_btf: BTF is mandatory)".into()),
            );
        }
        // A special field is special only in a map created with BTF: required when a selected
        // program uses the field (rules/kernel/verifier.toml btf_field).
        let mut special_used = false;
        for m in &special {
            for p in progs.iter().filter(|p| p.info.uses.maps.contains(&m.name)) {
                let uses = |f: &String| match rules.verifier.btf_field.iter().find(|r| r.matches(f)) {
                    Some(r) => {
                        r.any_use
                            || p.info.uses.helpers.iter().any(|h| r.helpers.iter().any(|x| **x == **h))
                            || p.info
                                .uses
                                .kfuncs
                                .iter()
                                .any(|k| r.kfunc_prefixes.iter().any(|x| k.starts_with(x.as_str())))
                    }
                    // a field the rules do not describe: any use counts
                    None => true,
                };
                let used: Vec<&str> = m.btf_special_fields.iter().filter(|f| uses(f)).map(|f| f.as_str()).collect();
                if used.is_empty() {
                    continue;
                }
                special_used = true;
                base.add_list(
                    ListKind::Commands,
                    "btf_load",
                    Reason {
                        map: Some(m.name.as_str().into()),
                        program: Some(p.name.clone()),
                        section: Some(p.section.clone()),
                        ..reason(
                            &on,
                            format!(
                                "program {} uses {} in the value of map {}, which the verifier accepts only when the map was created with its BTF",
                                p.name,
                                used.join(", "),
                                m.name
                            ),
                        )
                    },
                );
            }
        }
        let mut needs_btf_type = false;
        for m in created_maps() {
            if let Some(tname) = rules.enums.name_of(ListKind::Maps, m.map_type)
                && let Some(why) = rules.map_rule(tname).and_then(|r| r.needs_btf.as_ref())
            {
                needs_btf_type = true;
                base.add_list(
                    ListKind::Commands,
                    "btf_load",
                    Reason {
                        map: Some(m.name.as_str().into()),
                        ..reason(&on, format!("map {} is a {tname} map: {why}", m.name))
                    },
                );
            }
        }
        if !struct_ops && !special_used && !needs_btf_type && matches!(loader, Loader::Raw) {
            let btf_load = base.ids.id(Some(ListKind::Commands), "btf_load");
            base.optional.push(DraftOptional {
                items: vec![btf_load],
                steps: vec!["load_btf".into()],
                losses: vec![
                    "libbpf loads the programs without the object's BTF when BTF_LOAD is refused: no func/line \
                       info for verifier logs and bpftool, no BTF-typed map keys and values"
                        .into(),
                ],
                reason: reason(&on, "the object carries .BTF".into()),
            });
        }
    }

    if let Loader::Raw = loader {
        for p in progs {
            if let (Some(_), Some(a)) = (&p.info.prog_type, &p.info.load_attach_type) {
                base.add_list(ListKind::Attachments, a, attach_reason(&on, p, a, title));
            }
        }
    }
    base
}

pub(crate) fn attach_reason(on: &SharedStr, p: &Prog, attach: &str, title: &str) -> Reason {
    let text = if let Some(member) = &p.info.uses.struct_ops_member {
        shared!(
            "program {} implements {member}; {title} loads struct_ops programs with the member's index as expected attach type, which the token checks as attach type {attach} (index taken from the object's BTF; the kernel's struct layout decides — confirm with `bpfcap verify`)",
            p.name
        )
    } else if p.info.attach_zero {
        shared!(
            "program {} is loaded with no expected attach type; the kernel reads 0 as {attach}, so the token must delegate it",
            p.name
        )
    } else {
        shared!("program {} is loaded with expected attach type {attach}", p.name)
    };
    Reason {
        object: on.clone(),
        program: Some(p.name.clone()),
        section: Some(p.section.clone()),
        text,
        ..Reason::default()
    }
}
