//! A finding about a configuration: its stable code ([`Code`], docs/check.md), severity,
//! message and the span it points at. The dialects find the findings only they can find,
//! `check` the ones every dialect shares; `check::render` prints them.

pub mod code;

use serde::Serialize;

pub use code::Code;

use crate::config::{Config, Span};
use crate::vocab::ListKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable code, e.g. `missing-item` (docs/check.md).
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The file the finding points into (a unit or one of its drop-ins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Where in [`Config::text`] (all files' texts one after the other).
    #[serde(skip)]
    pub span: Option<Span>,
    /// The same span, as a byte range in its own file.
    #[serde(rename = "span", skip_serializing_if = "Option::is_none")]
    pub file_span: Option<Span>,
    /// 1-based line and column of the span, in its own file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The delegate list this finding is about (a missing item), or that an unknown key was
    /// meant to set (its closest real key is that list's): the unknown key is then the root
    /// cause of that list's missing items.
    #[serde(skip)]
    pub list: Option<ListKind>,
    /// The item (kernel name) a missing-item finding is about, or a misspelt name was meant
    /// to grant.
    #[serde(skip)]
    pub item: Option<String>,
}

/// Adds a finding that points at `span` of `cfg` (its file, line and column found), its texts
/// escaped.
pub fn push(
    cfg: &Config,
    out: &mut Vec<Finding>,
    code: Code,
    severity: Severity,
    message: String,
    help: Option<String>,
    span: Option<Span>,
) {
    let (mut file, mut file_span, mut line, mut column) = (None, None, None, None);
    if let Some(s) = span {
        let (l, c) = cfg.line_col(s.offset);
        let f = cfg.file_at(s.offset);
        (file, file_span, line, column) =
            (Some(f.name.clone()), Some(Span { offset: s.offset - f.start, len: s.len }), Some(l), Some(c));
    }
    // messages quote the configuration's own text (any byte) and names from objects
    let message = crate::text::escape(&message).into_owned();
    let help = help.map(|h| crate::text::escape(&h).into_owned());
    out.push(Finding { code, severity, message, help, file, span, file_span, line, column, list: None, item: None });
}

/// Whether a setting's value is one of the dialect's words for true (rules/dialects/*.toml
/// `true_values`), as the manager compares them: without regard to case.
pub fn is_true(value: &str, true_values: &[String]) -> bool {
    true_values.iter().any(|t| t.eq_ignore_ascii_case(value.trim()))
}
