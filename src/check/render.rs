//! Renderers for check findings: human (miette reports pointing at the configuration),
//! JSON, SARIF 2.1.0 and GitHub workflow-command annotations.

use miette::{Diagnostic, LabeledSpan, NamedSource, Report as MietteReport};
use serde_json::{Value, json};

use super::{Finding, Report, Severity};
use crate::config::Config;

#[derive(Debug)]
struct FindingDiagnostic {
    finding: Finding,
    src: NamedSource<String>,
}

impl std::fmt::Display for FindingDiagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.finding.message)
    }
}

impl std::error::Error for FindingDiagnostic {}

impl Diagnostic for FindingDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(format!("bpfcap::check::{}", self.finding.code)))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.finding.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.finding.help.as_ref().map(|h| Box::new(h.clone()) as Box<dyn std::fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.finding.span.map(|_| &self.src as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let s = self.finding.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new(Some(self.finding.code.to_string()), s.offset, s.len))))
    }
}

/// miette reports, one per finding, then a summary line.
pub fn human(cfg: &Config, r: &Report) -> String {
    let mut out = String::new();
    for f in &r.findings {
        let d = FindingDiagnostic { finding: f.clone(), src: NamedSource::new(cfg.name.clone(), cfg.text.clone()) };
        out.push_str(&format!("{:?}\n", MietteReport::new(d)));
    }
    let errors = r.findings.iter().filter(|f| f.severity == Severity::Error).count();
    let warnings = r.findings.len() - errors;
    if r.findings.is_empty() {
        out.push_str(&format!("{}: clean: the configuration grants exactly what the objects need\n", cfg.name));
    } else {
        out.push_str(&format!("{}: {errors} error(s), {warnings} warning(s)\n", cfg.name));
    }
    out
}

pub fn json(cfg: &Config, r: &Report) -> Value {
    json!({
        "schema": crate::report::SCHEMA,
        "kind": "check",
        "config": cfg.name,
        "dialect": cfg.dialect,
        "clean": r.findings.is_empty(),
        "errors": r.findings.iter().filter(|f| f.severity == Severity::Error).count(),
        "warnings": r.findings.iter().filter(|f| f.severity == Severity::Warning).count(),
        "findings": r.findings,
        "granted": crate::report::delegation_json(&r.granted),
        "needed": crate::report::delegation_json(&r.needed),
        "needed_capabilities": r.needed.capabilities,
    })
}

/// Every code check can emit, with a one-line description (SARIF rules; docs/check.md).
pub const CODES: &[(&str, &str)] = &[
    ("missing-item", "The configuration lacks an item the BPF objects need; the load fails with EPERM."),
    ("extra-item", "The configuration grants an item no selected program needs."),
    ("any-grant", "A list is delegated as `any`, which grants every item."),
    ("inert-command", "A delegated bpf() command never consults a token, so it grants nothing."),
    ("unknown-name", "A name that is not a kernel name for this list."),
    ("mask-replaces-names", "A numeric mask after names replaces them (bpffs parses numbers into the whole mask)."),
    ("systemd-case", "systemd matches delegation names case-sensitively and silently drops a misspelt one."),
    ("systemd-misgrant", "systemd's name table sets a different bit than the name says."),
    ("systemd-no-private-bpf", "BPFDelegate*= settings without PrivateBPF=yes: no token is set up."),
    ("systemd-no-userns", "PrivateBPF= without a user namespace for the service."),
    ("systemd-capabilities", "The unit does not give the service the capabilities the token checks."),
    ("kernel-unknown-name", "A name the target kernel does not have."),
    ("kernel-no-token", "The target kernel has no BPF tokens."),
    (
        "systemd-mount-namespace",
        "A system service's bpffs is created before its user namespace without DelegateNamespaces=mnt.",
    ),
    ("unknown-option", "A delegate_* option bpffs does not know; bpffs ignores it silently."),
    ("manager-disabled", "LXD's security.delegate_bpf switch is off."),
    ("manager-privileged", "A privileged container cannot create BPF tokens."),
];

pub fn sarif(cfg: &Config, r: &Report) -> Value {
    let results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let mut loc = json!({"physicalLocation": {"artifactLocation": {"uri": cfg.name}}});
            if let (Some(line), Some(col), Some(span)) = (f.line, f.column, f.span) {
                let (end_line, end_col) = cfg.line_col(span.offset + span.len);
                loc["physicalLocation"]["region"] =
                    json!({"startLine": line, "startColumn": col, "endLine": end_line, "endColumn": end_col});
            }
            json!({
                "ruleId": f.code,
                "level": match f.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": {"text": match &f.help { Some(h) => format!("{} ({h})", f.message), None => f.message.clone() }},
                "locations": [loc],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "bpfcap",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/bpfcap/bpfcap",
                "rules": CODES.iter().map(|(id, text)| json!({"id": id, "shortDescription": {"text": text}})).collect::<Vec<_>>(),
            }},
            "results": results,
        }],
    })
}

/// GitHub Actions workflow commands (`::error file=...,line=...::message`).
pub fn github(cfg: &Config, r: &Report) -> String {
    let esc = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let prop = |s: &str| esc(s).replace(':', "%3A").replace(',', "%2C");
    let mut out = String::new();
    for f in &r.findings {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut props = format!("file={},title={}", prop(&cfg.name), prop(&format!("bpfcap {}", f.code)));
        if let (Some(l), Some(c)) = (f.line, f.column) {
            props.push_str(&format!(",line={l},col={c}"));
        }
        let msg = match &f.help {
            Some(h) => format!("{} ({h})", f.message),
            None => f.message.clone(),
        };
        out.push_str(&format!("::{level} {props}::{}\n", esc(&msg)));
    }
    out
}
