//! `json`: the delegation and capabilities alone, as a JSON document (written only).

use super::Dialect;
use crate::delegation::Delegation;
use crate::emit::{Emitted, Why, mount_options};
use crate::rules::Rules;

pub struct Json;

impl Dialect for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn about(&self) -> &'static str {
        "The delegation and capabilities alone, as JSON"
    }

    fn reads(&self) -> bool {
        false
    }

    fn emit(&self, d: &Delegation, _header: &str, _why: Why, rules: &Rules) -> Emitted {
        let mut notes = Vec::new();
        let doc = serde_json::json!({
            "schema": crate::vocab::SCHEMA,
            "kind": "delegation",
            "delegation": d.to_json(),
            "capabilities": d.capabilities,
            "mount_options": mount_options(d, rules, &mut notes),
        });
        let mut text = serde_json::to_string_pretty(&doc).expect("JSON");
        text.push('\n');
        Emitted { text, notes }
    }
}
