//! Reports: the analysis rendered as the stable JSON document (schema `bpfcap/1`, see
//! docs/json-schema.md) or as tables for people.

use serde_json::{Map as JsonMap, Value, json};

use crate::analysis::requirements::{Need, Requirements};
use crate::analysis::{Analysis, ObjectAnalysis};
use crate::delegation::Delegation;
use crate::rules::{ListKind, Rules};

pub mod table;

pub const SCHEMA: &str = "bpfcap/1";

pub fn need_json(n: &Need) -> Value {
    match n {
        Need::List(k, name) => json!({"list": k.json_key(), "name": name}),
        Need::Cap(c) => json!({"capability": c}),
    }
}

pub fn delegation_json(d: &Delegation) -> Value {
    json!({
        "commands": d.commands,
        "maps": d.maps,
        "programs": d.programs,
        "attachments": d.attachments,
    })
}

fn reasons_json(r: &Requirements) -> Value {
    let mut out = JsonMap::new();
    for k in ListKind::ALL {
        let mut m = JsonMap::new();
        for (n, rs) in &r.required {
            if let Need::List(kk, name) = n
                && *kk == k
            {
                m.insert(name.clone(), serde_json::to_value(rs).expect("reasons serialise"));
            }
        }
        out.insert(k.json_key().into(), Value::Object(m));
    }
    let mut caps = JsonMap::new();
    for (n, rs) in &r.required {
        if let Need::Cap(c) = n {
            caps.insert(c.clone(), serde_json::to_value(rs).expect("reasons serialise"));
        }
    }
    out.insert("capabilities".into(), Value::Object(caps));
    Value::Object(out)
}

fn optional_json(r: &Requirements) -> Value {
    Value::Array(
        r.optional
            .iter()
            .map(|o| {
                json!({
                    "items": o.items.iter().map(need_json).collect::<Vec<_>>(),
                    "loader_step": o.loader_step(),
                    "lost": o.lost(),
                    "reason": o.reason,
                })
            })
            .collect(),
    )
}

fn object_json(o: &ObjectAnalysis, rules: &Rules) -> Value {
    let programs: Vec<Value> = o
        .programs
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "section": p.section,
                "prog_type": p.prog_type,
                "expected_attach_type": p.expected_attach_type,
                "autoload": p.autoload,
                "selected": o.selected.contains(&p.name),
                "sleepable": p.sleepable,
                "helpers": p.uses.helpers,
                "kfuncs": p.uses.kfuncs,
                "tail_calls": p.uses.tail_calls,
                "maps": p.uses.maps,
                "subprograms": p.uses.subprograms,
            })
        })
        .collect();
    let maps: Vec<Value> = o
        .object
        .maps
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "map_type": rules.enums.name_of(ListKind::Maps, m.map_type).map(String::from).unwrap_or_else(|| format!("unknown({})", m.map_type)),
                "origin": m.origin,
                "section": m.section,
                "key_size": m.key_size,
                "value_size": m.value_size,
                "max_entries": m.max_entries,
                "map_flags": m.map_flags,
                "pinning": m.pinning,
                "inner_map": m.inner.and_then(|i| o.object.maps.get(i)).map(|i| i.name.clone()),
            })
        })
        .collect();
    json!({
        "path": o.path,
        "name": o.object.name,
        "license": o.object.license,
        "programs": programs,
        "maps": maps,
        "delegation": delegation_json(&o.delegation),
        "capabilities": o.delegation.capabilities,
        "warnings": o.requirements.warnings,
    })
}

/// The `analyze --format json` document.
pub fn analysis_json(a: &Analysis, rules: &Rules) -> Value {
    json!({
        "schema": SCHEMA,
        "loader": a.loader.describe(),
        "with_optional": a.with_optional,
        "objects": a.objects.iter().map(|o| object_json(o, rules)).collect::<Vec<_>>(),
        "delegation": delegation_json(&a.delegation),
        "capabilities": a.delegation.capabilities,
        "mount_options": a.delegation.mount_options(),
        "reasons": reasons_json(&a.requirements),
        "optional": optional_json(&a.requirements),
        "warnings": a.requirements.warnings,
    })
}
