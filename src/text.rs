//! Untrusted text made safe to show and to write: names and paths come from objects and file
//! systems nobody vetted (BTF and ELF strings, file names), and may hold a newline, a terminal
//! escape sequence or a Unicode control that reorders what a reader sees. Wherever such text
//! is written for people or into configuration (tables, warnings, errors, comments of emitted
//! configuration, check findings, SARIF, GitHub annotations), it goes through [`escape`] or
//! [`Escaped`].
//!
//! What stays as it is: printable ASCII but the backslash, and non-ASCII characters that are
//! neither controls nor format characters. Everything else becomes a visible escape that
//! starts a line with no command and ends none with a continuation:
//! - `\n`, `\r`, `\t` for those three;
//! - `\xNN` for the other ASCII controls, DEL and the backslash itself (`\x5c`: a systemd or
//!   shell line ending in a backslash would continue onto the next line);
//! - `\u{NNNN}` for C1 controls, line and paragraph separators, bidirectional overrides and
//!   the other invisible format characters.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` is written as it is.
fn plain(c: char) -> bool {
    match c {
        ' '..='~' => c != '\\',
        _ if c.is_ascii() => false,
        _ => !c.is_control() && !is_format(c),
    }
}

/// Unicode format characters (general category Cf) and the line and paragraph separators (Zl,
/// Zp): invisible, yet they move or hide what follows (bidirectional overrides, zero-width
/// characters, tags).
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061c}'
            | '\u{06dd}'
            | '\u{070f}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

fn write_escaped(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            _ if plain(c) => f.write_char(c)?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            _ if c.is_ascii() => write!(f, "\\x{:02x}", c as u32)?,
            _ => write!(f, "\\u{{{:04x}}}", c as u32)?,
        }
    }
    Ok(())
}

/// `s` with every character that is not [plain](self) escaped; borrowed when there is none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if s.chars().all(plain) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    write_escaped(&mut out, s).expect("writing to a String");
    Cow::Owned(out)
}

/// Displays its text as [`escape`] gives it, without allocating.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0)
    }
}

/// `s` with its controls and format characters replaced by `?`, byte for byte: the text keeps
/// its length and its line structure (newlines stay), so that byte offsets into it still hold.
/// For showing a configuration file's own lines (check's source snippets).
pub fn mask_controls(s: &str) -> Cow<'_, str> {
    let keep = |c: char| c == '\n' || c == '\t' || (!c.is_control() && !is_format(c));
    if s.chars().all(keep) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(|c| if keep(c) { c.to_string() } else { "?".repeat(c.len_utf8()) }).collect())
}

/// Words joined for a sentence: "a", "a and b", "a, b and c".
pub fn and_list<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    let words: Vec<&str> = words.into_iter().collect();
    match words.split_last() {
        None => String::new(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_a_sentence() {
        assert_eq!(and_list([]), "");
        assert_eq!(and_list(["a"]), "a");
        assert_eq!(and_list(["a", "b", "c"]), "a, b and c");
    }

    #[test]
    fn plain_names_are_borrowed() {
        assert!(matches!(escape("xdp_prog.rodata-1"), Cow::Borrowed(_)));
        assert!(matches!(escape("köln_été"), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_become_visible_escapes_on_one_line() {
        let hostile = "a\n[Service]\nExecStartPre=/x\r\t\x1b[31m\x7f\\\u{85}\u{2028}\u{202e}\u{200b}z";
        let e = escape(hostile);
        assert_eq!(e, "a\\n[Service]\\nExecStartPre=/x\\r\\t\\x1b[31m\\x7f\\x5c\\u{0085}\\u{2028}\\u{202e}\\u{200b}z");
        assert!(!e.contains('\n') && !e.ends_with('\\'));
        assert_eq!(Escaped(hostile).to_string(), e);
        // a trailing backslash never continues a line
        assert_eq!(escape("name\\"), "name\\x5c");
    }

    #[test]
    fn masking_keeps_offsets_and_lines() {
        let s = "a=\x1b[2J\nb=\u{202e}x\n";
        let m = mask_controls(s);
        assert_eq!(m.len(), s.len());
        assert_eq!(m, "a=?[2J\nb=???x\n");
        assert!(matches!(mask_controls("plain\ntext\t1"), Cow::Borrowed(_)));
    }
}
