//! A configuration as it was read, in whatever dialect ([`crate::dialect`] reads them): the
//! grants per list with the span of every item, so that findings can point at the exact place
//! in the file, the other settings that matter, and the text they came from.

use std::collections::BTreeMap;

use miette::Diagnostic;
use serde::Serialize;
use thiserror::Error;

use crate::delegation::Delegation;
use crate::names::{self, Item, NameError};
use crate::rules::Rules;
use crate::text::Escaped;
use crate::vocab::ListKind;

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

/// One file of a configuration: a systemd unit and its drop-ins are read as one
/// configuration, their texts one after the other in [`Config::text`].
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The file's name for reports.
    pub name: String,
    /// Where its text starts in [`Config::text`].
    pub start: usize,
    /// Where its first line is in [`Config::line_starts`].
    pub first_line: usize,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The name of the dialect it was read in.
    pub dialect: &'static str,
    /// Name for reports: the file's, or the files' joined with " + ".
    pub name: String,
    /// The files, in the order the manager reads them (at least one).
    pub files: Vec<SourceFile>,
    /// Their texts, one after the other (each ends with a line end); spans are offsets in it.
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

    #[error("{}: several configuration files are read together only as a systemd unit and its drop-ins; this is {dialect}", Escaped(.name))]
    #[diagnostic(code(bpfcap::config::several), help("check one {dialect} configuration at a time"))]
    SeveralNotSystemd { name: String, dialect: String },

    #[error("{}: {problem}", Escaped(.name))]
    #[diagnostic(code(bpfcap::config::drop_ins), help("{help}"))]
    DropInOrder { name: String, problem: String, help: String },

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

    /// The file that holds byte `offset` of [`Config::text`].
    pub fn file_at(&self, offset: usize) -> &SourceFile {
        let k = self.files.partition_point(|f| f.start <= offset).max(1) - 1;
        &self.files[k]
    }

    /// Line and column in its own file (1-based, the column in bytes) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        // the last line starting at or before the offset (the first line starts at 0)
        let line = self.line_starts.partition_point(|s| *s <= offset);
        (line - self.file_at(offset).first_line, offset - self.line_starts[line - 1] + 1)
    }

    /// The byte range of line `line` (1-based, in the file that holds `offset`), without its
    /// line end.
    pub fn line_range(&self, offset: usize, line: usize) -> std::ops::Range<usize> {
        let line = line + self.file_at(offset).first_line;
        let start = self.line_starts[line - 1];
        let end = self.line_starts.get(line).map_or(self.text.len(), |next| next - 1);
        start..end.max(start)
    }

    /// The text of one file.
    pub fn file_text(&self, file: &SourceFile) -> &str {
        let end = self.files.iter().find(|f| f.start > file.start).map_or(self.text.len(), |f| f.start);
        &self.text[file.start..end]
    }

    /// A unit and its drop-ins as systemd reads them: every file parsed on its own (a drop-in
    /// has its own sections), then in order. Each BPFDelegate*= assignment replaces the earlier
    /// one (rules/dialects/systemd.toml `value_syntax`), so a list's grants are those of the last
    /// file that assigns it; every other setting is read as the last one too
    /// ([`Config::setting`]).
    pub fn joined(parts: Vec<Config>) -> Config {
        let mut all = Config {
            dialect: parts[0].dialect,
            name: parts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(" + "),
            files: Vec::new(),
            text: String::new(),
            grants: Vec::new(),
            settings: Vec::new(),
            malformed: Vec::new(),
            list_spans: BTreeMap::new(),
            anchor: Span { offset: 0, len: 0 },
            line_starts: Vec::new(),
        };
        let shift = |s: Span, by: usize| Span { offset: s.offset + by, len: s.len };
        for part in parts {
            let start = all.text.len();
            all.files.push(SourceFile { name: part.name.clone(), start, first_line: all.line_starts.len() });
            all.text.push_str(&part.text);
            if !part.text.ends_with('\n') {
                all.text.push('\n');
            }
            // (the start after a last line end is the next file's first line)
            let own = part.line_starts.iter().filter(|l| **l == 0 || **l < part.text.len());
            all.line_starts.extend(own.map(|l| l + start));
            for (k, span) in &part.list_spans {
                // this file's assignment replaces the earlier files'
                all.grants.retain(|g| g.list != *k);
                all.list_spans.insert(*k, shift(*span, start));
            }
            all.grants.extend(part.grants.into_iter().map(|g| Grant { span: shift(g.span, start), ..g }));
            all.settings.extend(part.settings.into_iter().map(|s| Setting { span: shift(s.span, start), ..s }));
            all.malformed.extend(part.malformed.into_iter().map(|m| Malformed { span: shift(m.span, start), ..m }));
            if part.anchor.len > 0 || all.anchor.len == 0 {
                all.anchor = shift(part.anchor, start);
            }
        }
        all.line_starts.push(all.text.len());
        all
    }

    /// The start of every line of `text`.
    pub fn line_starts_of(text: &str) -> Vec<usize> {
        std::iter::once(0).chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1)).collect()
    }
}
