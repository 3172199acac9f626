//! Renderers for check findings: human (miette reports pointing at the configuration),
//! JSON, SARIF 2.1.0 and GitHub workflow-command annotations.

use miette::{Diagnostic, LabeledSpan};
use serde_json::{Value, json};

use super::{Finding, Report, Severity};
use crate::config::Config;
use crate::text::{Escaped, escape, mask_controls};

/// Findings printed in full by [`human`]; the rest are counted (JSON, SARIF and GitHub output
/// hold them all).
pub const MAX_HUMAN_FINDINGS: usize = 50;
/// Lines longer than this are not shown under a finding (the finding names its line and
/// column instead): a report stays readable, and bounded, whatever the file holds.
pub const MAX_SNIPPET_LINE: usize = 400;
/// A span over more lines than this is shown by its first lines.
const MAX_SNIPPET_LINES: usize = 3;
/// Messages and help texts longer than this are cut in human output.
const MAX_HUMAN_MESSAGE: usize = 400;

/// The configuration's text as miette reads it for a finding: only the lines around the
/// finding's span are handed over, numbered as in the file, so that each report costs the
/// size of those lines, not of the file. Controls are masked in place
/// ([`crate::text::mask_controls`]: offsets hold).
#[derive(Debug)]
struct Snippet {
    name: String,
    /// One file's text, controls masked.
    text: String,
    /// Where each of its lines starts.
    line_starts: Vec<usize>,
}

impl miette::SourceCode for Snippet {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let line_of = |offset: usize| self.line_starts.partition_point(|s| *s <= offset) - 1;
        let line_len = |line: usize| {
            let start = self.line_starts[line];
            self.line_starts.get(line + 1).map_or(self.text.len(), |next| *next) - start
        };
        // context lines around the span's own, as many as asked for that are not too long
        let (own_first, own_last) = (line_of(span.offset()), line_of(span.offset() + span.len()));
        let before = (1..=before.min(own_first)).take_while(|k| line_len(own_first - k) <= MAX_SNIPPET_LINE).count();
        let after = (1..=after)
            .take_while(|k| own_last + k < self.line_starts.len() && line_len(own_last + k) <= MAX_SNIPPET_LINE)
            .count();
        let (first, last) = (own_first - before, own_last + after);
        let lo = self.line_starts[first];
        let hi = self.line_starts.get(last + 1).map_or(self.text.len(), |next| *next);
        let local = miette::SourceSpan::new((span.offset() - lo).into(), span.len());
        let inner = self.text[lo..hi].read_span(&local, before, after)?;
        let found = inner.span();
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            miette::SourceSpan::new((found.offset() + lo).into(), found.len()),
            inner.line() + first,
            inner.column(),
            inner.line_count(),
        )))
    }
}

struct FindingDiagnostic<'c> {
    message: String,
    help: Option<String>,
    finding: &'c Finding,
    /// None: the finding is shown without the file's lines.
    src: Option<&'c Snippet>,
}

impl std::fmt::Debug for FindingDiagnostic<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::fmt::Display for FindingDiagnostic<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FindingDiagnostic<'_> {}

impl Diagnostic for FindingDiagnostic<'_> {
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
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.src.map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let src = self.src?;
        let s = self.finding.file_span?;
        // a span over many lines (a whole delegation) is shown by its first line
        let first = src.line_starts.partition_point(|l| *l <= s.offset);
        let end = src.line_starts.get(first + MAX_SNIPPET_LINES).map_or(usize::MAX, |next| next - 1);
        let len = s.len.min(end.saturating_sub(s.offset)).max(1);
        Some(Box::new(std::iter::once(LabeledSpan::new(Some(self.finding.code.to_string()), s.offset, len))))
    }
}

/// `s`, cut to `max` bytes (at a character boundary) with "…" when longer.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// miette reports, one per finding (at most [`MAX_HUMAN_FINDINGS`]), then a summary line.
pub fn human(cfg: &Config, r: &Report) -> String {
    let mut out = String::new();
    // the file's own lines, shown around each finding: controls masked in place
    let snippets: Vec<Snippet> = cfg
        .files
        .iter()
        .map(|file| {
            let text = mask_controls(cfg.file_text(file)).into_owned();
            let line_starts = Config::line_starts_of(&text);
            Snippet { name: Escaped(&file.name).to_string(), text, line_starts }
        })
        .collect();
    let handler = miette::GraphicalReportHandler::new();
    for f in r.findings.iter().take(MAX_HUMAN_FINDINGS) {
        let mut message = cut(&f.message, MAX_HUMAN_MESSAGE);
        // a span on a line too long to show: the finding says where it is instead
        let mut src = f.span.map(|s| &snippets[cfg.files.partition_point(|file| file.start <= s.offset).max(1) - 1]);
        if let (Some(line), Some(col), Some(span)) = (f.line, f.column, f.span)
            && cfg.line_range(span.offset, line).len() > MAX_SNIPPET_LINE
        {
            message.push_str(&format!(" (line {line}, column {col})"));
            src = None;
        }
        let help = f.help.as_deref().map(|h| cut(h, MAX_HUMAN_MESSAGE));
        let d = FindingDiagnostic { message, help, finding: f, src };
        // (a finding miette cannot lay out is printed as its message alone)
        if handler.render_report(&mut out, &d).is_err() {
            out.push_str(&d.message);
        }
        out.push('\n');
    }
    if r.findings.len() > MAX_HUMAN_FINDINGS {
        out.push_str(&format!(
            "… and {} more finding(s), not shown (--format json lists them all)\n",
            r.findings.len() - MAX_HUMAN_FINDINGS
        ));
    }
    let errors = r.findings.iter().filter(|f| f.severity == Severity::Error).count();
    let warnings = r.findings.len() - errors;
    if r.findings.is_empty() {
        out.push_str(&format!(
            "{}: clean: the configuration grants exactly what the objects need\n",
            Escaped(&cfg.name)
        ));
    } else {
        out.push_str(&format!("{}: {errors} error(s), {warnings} warning(s)\n", Escaped(&cfg.name)));
    }
    out
}

pub fn json(cfg: &Config, r: &Report) -> Value {
    json!({
        "schema": crate::vocab::SCHEMA,
        "kind": "check",
        "config": cfg.files[0].name,
        "files": cfg.files.iter().map(|f| &f.name).collect::<Vec<_>>(),
        "dialect": cfg.dialect,
        "clean": r.findings.is_empty(),
        "errors": r.findings.iter().filter(|f| f.severity == Severity::Error).count(),
        "warnings": r.findings.iter().filter(|f| f.severity == Severity::Warning).count(),
        "findings": r.findings,
        "granted": r.granted.to_json(),
        "needed": r.needed.to_json(),
        "needed_capabilities": r.needed.capabilities,
    })
}

pub fn sarif(cfg: &Config, r: &Report) -> Value {
    let results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let uri = f.file.as_ref().unwrap_or(&cfg.files[0].name);
            let mut loc = json!({"physicalLocation": {"artifactLocation": {"uri": uri}}});
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
                "rules": super::Code::ALL.iter().map(|c| json!({"id": c.id(), "shortDescription": {"text": c.summary()}})).collect::<Vec<_>>(),
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
        let file = f.file.as_ref().unwrap_or(&cfg.files[0].name);
        let mut props = format!("file={},title={}", prop(&escape(file)), prop(&format!("bpfcap {}", f.code)));
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
