//! Reading existing delegation configuration, in every dialect, with the span of every item so
//! that findings can point at the exact place in the file. Produces a [`Config`]: the grants
//! per list, the other settings that matter, and the text they came from.

pub mod dialects;

use std::collections::BTreeMap;

use miette::Diagnostic;
use serde::Serialize;
use thiserror::Error;

use crate::delegation::Delegation;
use crate::names::{self, Item, NameError};
use crate::rules::{ListKind, Rules};
use crate::text::Escaped;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// A systemd unit or drop-in (PrivateBPF=, BPFDelegate*=).
    Systemd,
    /// A bpffs mount-option string, a `mount -t bpf` command, or a /proc/mounts line.
    Mount,
    /// An /etc/fstab line.
    Fstab,
    /// Incus instance configuration (YAML, or `incus config set` lines).
    Incus,
    /// LXD instance configuration (YAML, or `lxc config set` lines).
    Lxd,
}

/// Byte range in the configuration text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.offset, s.len).into()
    }
}

/// One item granted by the configuration.
#[derive(Debug, Clone)]
pub struct Grant {
    pub list: ListKind,
    /// The item as written.
    pub raw: String,
    /// What the item grants under the dialect's own rules (systemd: its exact names only).
    pub item: Result<Item, NameError>,
    pub span: Span,
}

/// A setting other than the grants (PrivateBPF=, PrivateUsers=, mount target, ...).
#[derive(Debug, Clone)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub span: Span,
    /// The section it stands in (systemd: `Service` for a setting under `[Service]`).
    pub section: Option<String>,
    /// The manager does not know this key where it stands and ignores it.
    pub ignored: bool,
}

/// A line the dialect's own parser ignores: not a setting at all.
#[derive(Debug, Clone)]
pub struct Malformed {
    pub span: Span,
    /// What the manager says when it ignores it.
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub dialect: Dialect,
    /// File name for reports.
    pub name: String,
    pub text: String,
    pub grants: Vec<Grant>,
    pub settings: Vec<Setting>,
    /// Lines that are not settings (systemd: no `=`, outside any section).
    pub malformed: Vec<Malformed>,
    /// Where each list's setting starts (for findings about a missing item).
    pub list_spans: BTreeMap<ListKind, Span>,
    /// A span pointing at the whole delegation (for findings about a missing list).
    pub anchor: Span,
    /// Where each line of `text` starts (found once, for [`Config::line_col`]).
    pub line_starts: Vec<usize>,
}

#[derive(Debug, Error, Diagnostic)]
pub enum ConfigError {
    #[error("cannot read configuration {}: {source}", Escaped(.path))]
    #[diagnostic(code(bpfcap::config::io), help("check the path; use '-' for standard input"))]
    Io { path: String, source: std::io::Error },

    #[error("{}: no BPF delegation found in this {dialect} configuration", Escaped(.name))]
    #[diagnostic(code(bpfcap::config::empty), help("{help}"))]
    NoDelegation { name: String, dialect: String, help: String },

    #[error("{}: cannot tell which dialect this configuration is", Escaped(.name))]
    #[diagnostic(code(bpfcap::config::dialect), help("pass --dialect systemd|mount|fstab|incus|lxd"))]
    UnknownDialect { name: String },
}

impl Config {
    /// The delegation the configuration grants, folded the way bpffs folds items (names OR in,
    /// `any` sets all, a number replaces), in kernel names. Unknown names grant nothing.
    pub fn delegation(&self, rules: &Rules) -> Delegation {
        let mut d = Delegation::default();
        for k in ListKind::ALL {
            let items: Vec<Item> =
                self.grants.iter().filter(|g| g.list == k).filter_map(|g| g.item.clone().ok()).collect();
            *d.list_mut(k) = names::names_of_mask(k, names::fold_mask(&items), rules);
        }
        d
    }

    /// The setting `key` as the manager reads it: the last one it does not ignore.
    pub fn setting(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.key == key && !s.ignored)
    }

    /// Line and column (1-based, the column in bytes) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        // the last line starting at or before the offset (the first line starts at 0)
        let line = self.line_starts.partition_point(|s| *s <= offset);
        (line, offset - self.line_starts[line - 1] + 1)
    }

    /// The byte range of line `line` (1-based), without its line end.
    pub fn line_range(&self, line: usize) -> std::ops::Range<usize> {
        let start = self.line_starts[line - 1];
        let end = self.line_starts.get(line).map_or(self.text.len(), |next| next - 1);
        start..end.max(start)
    }

    /// The start of every line of `text`.
    pub fn line_starts_of(text: &str) -> Vec<usize> {
        std::iter::once(0).chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1)).collect()
    }
}

/// Guesses the dialect from the text.
pub fn detect(text: &str) -> Option<Dialect> {
    // comments do not count
    let body: String = text
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with('#') && !t.starts_with(';')
        })
        .collect::<Vec<_>>()
        .join("\n");
    let text = body.as_str();
    if text.contains("Type=bpf") && text.contains("delegate_") {
        // a systemd .mount unit: its Options= carry bpffs mount options
        return Some(Dialect::Mount);
    }
    if text.contains("BPFDelegate") || text.contains("PrivateBPF") || text.trim_start().starts_with('[') {
        return Some(Dialect::Systemd);
    }
    if text.contains("incus ") {
        return Some(Dialect::Incus);
    }
    if text.contains("lxc config") {
        return Some(Dialect::Lxd);
    }
    if text.contains("security.") {
        // Both managers use YAML with security.* keys; the key names tell them apart.
        return dialects::yaml_dialect(text);
    }
    let first = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let fields: Vec<&str> = first.split_whitespace().collect();
    if fields.len() >= 4 && fields[2] == "bpf" && fields[3].contains("delegate_") {
        // /etc/fstab and /proc/mounts share a layout
        return Some(Dialect::Fstab);
    }
    if text.contains("delegate_") {
        return Some(Dialect::Mount);
    }
    None
}

/// Reads and parses a configuration file ('-' = standard input).
pub fn load(path: &str, dialect: Option<Dialect>, rules: &Rules) -> Result<Config, ConfigError> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| ConfigError::Io { path: path.into(), source: e })?
    } else {
        std::fs::read_to_string(path).map_err(|e| ConfigError::Io { path: path.into(), source: e })?
    };
    let name = if path == "-" { "<stdin>".to_string() } else { path.to_string() };
    parse(&text, &name, dialect, rules)
}

pub fn parse(text: &str, name: &str, dialect: Option<Dialect>, rules: &Rules) -> Result<Config, ConfigError> {
    let dialect = match dialect.or_else(|| detect(text)) {
        Some(d) => d,
        None => return Err(ConfigError::UnknownDialect { name: name.into() }),
    };
    let cfg = dialects::parse(dialect, text, name, rules);
    // (a file whose only delegation keys are misspelt is checked: the typos are the findings)
    let typos = cfg.settings.iter().any(|s| s.ignored);
    if cfg.grants.is_empty() && cfg.list_spans.is_empty() && !typos && dialect != Dialect::Systemd {
        return Err(ConfigError::NoDelegation {
            name: name.into(),
            dialect: format!("{dialect:?}").to_lowercase(),
            help: "bpfcap looks for delegate_cmds=, delegate_maps=, delegate_progs= and delegate_attachs= (or the dialect's keys for them)".into(),
        });
    }
    Ok(cfg)
}
