//! The record document (`"kind": "record"`, schema bpfcap/1): written by `record --format
//! json`, read back by `emit --from`, `check --from` and `verify --from` as the source of what
//! is needed. Its `delegation` and `capabilities` fields are those of `analyze`'s document.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Recording, Request};
use crate::analysis::requirements::{Reason, Requirements};
use crate::delegation::Delegation;
use crate::rules::Rules;
use crate::vocab::{ListKind, Lists, Need};

/// One request, as the document shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestDoc {
    /// The bpf() command that carried the token (`prog_load`), or `token_create`.
    pub command: String,
    /// For program types and attach types: the program type and expected attach type asked
    /// for together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    /// The name of the process (thread) that asked.
    pub process: String,
    pub count: u64,
    /// Of `count`, the calls that failed, and their errors (EPERM, ...).
    pub failed: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// An item (`{"list": "maps", "name": "hash"}`) or capability (`{"capability": "CAP_BPF"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ItemDoc {
    List { list: String, name: String },
    Capability { capability: String },
}

impl ItemDoc {
    pub fn of(n: &Need) -> ItemDoc {
        match n {
            Need::List(k, name) => ItemDoc::List { list: k.json_key().to_string(), name: name.clone() },
            Need::Cap(c) => ItemDoc::Capability { capability: c.clone() },
        }
    }

    fn need(&self) -> Option<Need> {
        Some(match self {
            ItemDoc::List { list, name } => {
                Need::List(*ListKind::ALL.iter().find(|k| k.json_key() == list)?, name.clone())
            }
            ItemDoc::Capability { capability } => Need::Cap(capability.clone()),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AskedDoc {
    pub item: ItemDoc,
    /// The calls that asked for the item.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<RequestDoc>,
    /// A capability: the items the kernel checks it for (rules/kernel/privileges.toml).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub implied_by: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerdictDoc {
    pub item: ItemDoc,
    pub needed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undecided: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MinimizedDoc {
    /// Each item was dropped from the answer and the command failed every time.
    pub one_minimal: Option<bool>,
    pub runs: usize,
    /// Why minimising could not start (the program failed with only what it asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub items: Vec<VerdictDoc>,
}

/// How the observed run went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunDoc {
    pub worked: bool,
    pub exit_code: Option<i32>,
    /// It was still running after --ready-after, and was stopped.
    pub still_running: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The last lines of its standard error and standard output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stderr: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stdout: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordDocument {
    pub schema: String,
    pub kind: String,
    pub command: Vec<String>,
    pub run: RunDoc,
    /// The answer: minimised with --minimize, else what was asked for.
    pub delegation: Lists<Vec<String>>,
    pub capabilities: Vec<String>,
    pub mount_options: String,
    /// Every item and capability asked for, with who asked.
    pub asked: Vec<AskedDoc>,
    /// Whether the capability checks were observed (Linux 6.14+); if not, `asked` names the
    /// capabilities the rules say the kernel checks (`implied_by`).
    pub observed_capabilities: bool,
    pub minimized: Option<MinimizedDoc>,
}

/// Lines of the command's output kept in the document.
const OUTPUT_LINES: usize = 20;

fn tail(lines: &[String]) -> Vec<String> {
    lines[lines.len().saturating_sub(OUTPUT_LINES)..].to_vec()
}

fn request_doc(r: &Request) -> RequestDoc {
    RequestDoc {
        command: r.command.clone(),
        program: r.program.as_ref().map(|(p, _)| p.clone()),
        attach: r.program.as_ref().map(|(_, a)| a.clone()),
        process: r.process.clone(),
        count: r.count,
        failed: r.failed,
        errors: r.errors.clone(),
    }
}

impl RecordDocument {
    pub fn of(rec: &Recording, rules: &Rules) -> RecordDocument {
        let d = &rec.delegation;
        RecordDocument {
            schema: crate::vocab::SCHEMA.to_string(),
            kind: "record".to_string(),
            command: rec.command.clone(),
            run: RunDoc {
                worked: rec.run.loaded,
                exit_code: rec.run.exit_code,
                still_running: rec.run.still_running,
                message: rec.run.message.clone(),
                stderr: tail(&rec.run.libbpf_log),
                stdout: tail(&rec.run.output),
            },
            delegation: d.lists.clone(),
            capabilities: d.capabilities.clone(),
            mount_options: d.mount_options(rules),
            asked: rec
                .asked
                .iter()
                .map(|a| AskedDoc {
                    item: ItemDoc::of(&a.need),
                    requests: a.requests.iter().map(request_doc).collect(),
                    implied_by: a.implied_by.clone(),
                })
                .collect(),
            observed_capabilities: rec.observed_capabilities,
            minimized: rec.minimization.as_ref().map(|m| MinimizedDoc {
                one_minimal: m.one_minimal,
                runs: m.runs,
                problem: m.problem.clone(),
                items: m
                    .verdicts
                    .iter()
                    .map(|v| VerdictDoc {
                        item: ItemDoc::of(&v.need),
                        needed: v.needed,
                        failure: v.failure.clone(),
                        lost: v.lost.clone(),
                        undecided: v.undecided.clone(),
                    })
                    .collect(),
            }),
        }
    }

    /// The answer as a delegation (names the rules do not know are kept as they are; `check`
    /// and `emit` report them).
    pub fn delegation(&self, rules: &Rules) -> Delegation {
        let needs = self
            .delegation
            .iter()
            .flat_map(|(k, names)| names.iter().map(move |n| Need::List(k, n.clone())))
            .chain(self.capabilities.iter().map(|c| Need::Cap(c.clone())))
            .collect::<Vec<_>>();
        Delegation::from_needs(&needs, rules)
    }

    /// Why each item of the answer is needed: who asked for it, and with --minimize how the
    /// command failed without it.
    pub fn requirements(&self, rules: &Rules) -> Requirements {
        let object: crate::model::SharedStr = format!("record of {}", self.command.join(" ")).into();
        let mut reqs = Requirements::default();
        for need in self.delegation(rules).needs() {
            let mut texts = Vec::new();
            if let Some(a) = self.asked.iter().find(|a| a.item.need().as_ref() == Some(&need)) {
                for by in &a.implied_by {
                    texts.push(format!("checked by the kernel for {by}"));
                }
                for r in &a.requests {
                    texts.push(format!(
                        "asked for in {}{} by {} ({}x)",
                        r.command,
                        r.program
                            .as_ref()
                            .map(|p| format!(
                                " for a {p} program (expected attach type {})",
                                r.attach.as_deref().unwrap_or("?")
                            ))
                            .unwrap_or_default(),
                        r.process,
                        r.count
                    ));
                }
            }
            if let Some(v) =
                self.minimized.iter().flat_map(|m| &m.items).find(|v| v.item.need().as_ref() == Some(&need))
                && let Some(f) = &v.failure
            {
                texts.push(format!("without it: {f}"));
            }
            if texts.is_empty() {
                texts.push("in the recorded answer".into());
            }
            let reasons = texts
                .into_iter()
                .map(|t| Reason { object: object.clone(), text: t.into(), ..Default::default() })
                .collect();
            reqs.required.insert(need, reasons);
        }
        reqs.normalize();
        reqs
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DocumentError {
    #[error("cannot read {}: {source}", crate::text::Escaped(&path.to_string_lossy()))]
    #[diagnostic(code(bpfcap::record::read))]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a record document: {detail}", crate::text::Escaped(&path.to_string_lossy()))]
    #[diagnostic(
        code(bpfcap::record::document),
        help("pass the JSON that `bpfcap record --format json` wrote (\"kind\": \"record\", schema bpfcap/1)")
    )]
    NotRecord { path: std::path::PathBuf, detail: String },
}

/// The largest record document read (one is a few KiB).
const MAX_DOCUMENT: u64 = 16 << 20;

/// Reads a record document ('-' reads standard input).
pub fn read(path: &Path) -> Result<RecordDocument, DocumentError> {
    use std::io::Read as _;
    let read_err = |source| DocumentError::Read { path: path.to_path_buf(), source };
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin().take(MAX_DOCUMENT).read_to_string(&mut text).map_err(read_err)?;
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_DOCUMENT).read_to_string(&mut text)).map_err(read_err)?;
    }
    let not = |detail: String| DocumentError::NotRecord { path: path.to_path_buf(), detail };
    let doc: RecordDocument = serde_json::from_str(&text).map_err(|e| not(e.to_string()))?;
    if doc.schema != crate::vocab::SCHEMA {
        return Err(not(format!("its schema is {:?}, not {:?}", doc.schema, crate::vocab::SCHEMA)));
    }
    if doc.kind != "record" {
        return Err(not(format!("its kind is {:?}", doc.kind)));
    }
    if !doc.run.worked {
        return Err(not("the recorded run did not work, so its answer is not one".into()));
    }
    // every name is one the rules know: a document is text anyone can write, and its names
    // end up in configuration
    let rules = crate::rules::rules();
    for (k, names) in doc.delegation.iter() {
        if let Some(n) = names.iter().find(|n| rules.enums.value_of(k, n).is_none()) {
            return Err(not(format!("{} names {:?}, which is not a kernel name bpfcap knows", k.mount_option(), n)));
        }
    }
    if let Some(c) = doc.capabilities.iter().find(|c| rules.capability_value(c).is_none()) {
        return Err(not(format!("its capabilities name {c:?}, which is not a capability")));
    }
    Ok(doc)
}
