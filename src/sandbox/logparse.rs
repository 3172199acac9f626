//! Reading libbpf's log: which stage of `bpf_object__load()` failed, which
//! program failed and the verifier-log tail that belongs to it.
//!
//! The patterns are libbpf 1.7's own messages (src/libbpf.c): every line
//! starts with "libbpf: ", errors are printed by `errstr()` as "-EPERM" style
//! names or as a plain negative number.

/// errno names as printed by libbpf's `errstr()`, plus a few more.
const ERRNO_NAMES: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("ESRCH", libc::ESRCH),
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("ENXIO", libc::ENXIO),
    ("E2BIG", libc::E2BIG),
    ("ENOEXEC", libc::ENOEXEC),
    ("EBADF", libc::EBADF),
    ("ECHILD", libc::ECHILD),
    ("EAGAIN", libc::EAGAIN),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("ENOTBLK", libc::ENOTBLK),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("EXDEV", libc::EXDEV),
    ("ENODEV", libc::ENODEV),
    ("ENOTDIR", libc::ENOTDIR),
    ("EISDIR", libc::EISDIR),
    ("EINVAL", libc::EINVAL),
    ("ENFILE", libc::ENFILE),
    ("EMFILE", libc::EMFILE),
    ("EFBIG", libc::EFBIG),
    ("ENOSPC", libc::ENOSPC),
    ("ESPIPE", libc::ESPIPE),
    ("EMLINK", libc::EMLINK),
    ("EDOM", libc::EDOM),
    ("ERANGE", libc::ERANGE),
    ("EDEADLK", libc::EDEADLK),
    ("ENAMETOOLONG", libc::ENAMETOOLONG),
    ("ENOSYS", libc::ENOSYS),
    ("ELOOP", libc::ELOOP),
    ("ENODATA", libc::ENODATA),
    ("ENOLINK", libc::ENOLINK),
    ("EPROTO", libc::EPROTO),
    ("EOVERFLOW", libc::EOVERFLOW),
    ("EBADFD", libc::EBADFD),
    ("EILSEQ", libc::EILSEQ),
    ("EMSGSIZE", libc::EMSGSIZE),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("EADDRINUSE", libc::EADDRINUSE),
    ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("EALREADY", libc::EALREADY),
    ("EINPROGRESS", libc::EINPROGRESS),
    ("ECANCELED", libc::ECANCELED),
    // kernel-internal, but leaks to user space from bpf(): ENOTSUPP = 524.
    ("ENOTSUPP", 524),
];

/// "EPERM" for 1, "errno 1234" for unknown values.
pub fn errno_name(errno: i32) -> String {
    ERRNO_NAMES
        .iter()
        .find(|(_, v)| *v == errno)
        .map(|(n, _)| (*n).to_string())
        .unwrap_or_else(|| format!("errno {errno}"))
}

/// "EPERM (Operation not permitted)".
pub fn errno_text(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    format!("{} ({})", errno_name(errno), text)
}

/// Parses libbpf's `errstr()` output at the start of `s`: "-EPERM", "-1".
pub fn parse_errstr(s: &str) -> Option<i32> {
    let s = s.trim_start();
    let token: String = s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    let t = token.trim_start_matches('-');
    if let Ok(n) = t.parse::<i32>() {
        return Some(n.abs());
    }
    ERRNO_NAMES.iter().find(|(n, _)| *n == t).map(|(_, v)| *v)
}

/// The stage of `bpf_object__load()` that failed, as read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// "libbpf_token", "libbpf_probe", "btf_load", "map_create", "prog_load"
    /// or "object_load" (nothing recognisable in the log).
    pub step: &'static str,
    /// The log line that says so (without the "libbpf: " prefix).
    pub line: Option<String>,
    /// For "prog_load": the program that failed and libbpf's errno for it.
    pub program: Option<(String, Option<i32>)>,
    /// For "map_create": the map that failed.
    pub map: Option<String>,
}

fn strip(line: &str) -> &str {
    line.trim_start_matches("libbpf: ").trim_end()
}

/// `prog '<name>': <rest>` → (name, rest).
fn prog_prefix(line: &str) -> Option<(&str, &str)> {
    let rest = strip(line).strip_prefix("prog '")?;
    let end = rest.find("': ")?;
    Some((&rest[..end], &rest[end + 3..]))
}

/// Classifies a failed load from libbpf's log lines (oldest first).
pub fn classify(lines: &[String]) -> Failure {
    let mut failure = Failure { step: "object_load", line: None, program: None, map: None };
    for line in lines {
        let l = strip(line);
        if l.starts_with("object '")
            && (l.contains("to create BPF token from") || l.contains("to open BPF FS mount at"))
        {
            failure.step = "libbpf_token";
            failure.line = Some(l.to_string());
            return failure;
        }
        if l.starts_with("Error in bpf_object__probe_loading()") {
            failure.step = "libbpf_probe";
            failure.line = Some(l.to_string());
            return failure;
        }
        if l.starts_with("Error loading .BTF into kernel") && l.contains("BTF is mandatory") {
            failure.step = "btf_load";
            failure.line = Some(l.to_string());
            return failure;
        }
        if let Some(rest) = l.strip_prefix("map '")
            && let Some(end) = rest.find("': ")
            && rest[end + 3..].starts_with("failed to create")
        {
            failure.step = "map_create";
            failure.line = Some(l.to_string());
            failure.map = Some(rest[..end].to_string());
            return failure;
        }
        if let Some((name, rest)) = prog_prefix(line)
            && let Some(err) = rest.strip_prefix("failed to load:")
        {
            failure.step = "prog_load";
            failure.line = Some(l.to_string());
            failure.program = Some((name.to_string(), parse_errstr(err)));
            return failure;
        }
    }
    // Nothing specific: keep the last warning-looking line as the message.
    failure.line = lines
        .iter()
        .rev()
        .map(|l| strip(l))
        .find(|l| l.starts_with("failed to load object") || l.contains("failed"))
        .map(str::to_string);
    failure
}

/// Up to `max` log lines that belong to program `prog`: its "prog '<prog>':"
/// lines plus the verifier log printed between its BEGIN/END markers.
pub fn program_log_tail(lines: &[String], prog: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_log = false;
    let begin = format!("prog '{prog}': -- BEGIN PROG LOAD LOG --");
    for line in lines {
        let l = strip(line);
        if in_log {
            if l.starts_with("-- END PROG LOAD LOG --") {
                in_log = false;
            } else {
                out.push(l.to_string());
            }
            continue;
        }
        if l.starts_with(&begin) {
            in_log = true;
            continue;
        }
        if prog_prefix(line).is_some_and(|(name, _)| name == prog) {
            out.push(l.to_string());
        }
    }
    let skip = out.len().saturating_sub(max);
    out.split_off(skip)
}

/// What a cilium/ebpf loader (tools/cilium-loader) reported: its JSON line
/// `{"loaded", "error", "errno", "programs", "maps"}` and exit code. cilium/ebpf's errors name
/// what failed first (collection.go: "map NAME: ...", "program NAME: ...", "program NAME: load
/// BTF: ...").
pub fn cilium_outcome(stdout: &[u8], code: i32, wanted: &[String], log: Vec<String>) -> super::LoadOutcome {
    #[derive(serde::Deserialize)]
    struct Report {
        loaded: bool,
        error: Option<String>,
        errno: Option<i32>,
        #[serde(default)]
        programs: Vec<String>,
    }
    let report: Option<Report> =
        String::from_utf8_lossy(stdout).lines().rev().find_map(|l| serde_json::from_str(l.trim()).ok());
    let Some(report) = report else {
        return super::LoadOutcome {
            step: Some("loader".into()),
            message: Some(format!("the cilium/ebpf loader exited with status {code} without a report")),
            libbpf_log: log,
            ..Default::default()
        };
    };
    let names = if report.programs.is_empty() { wanted.to_vec() } else { report.programs };
    let error = report.error.unwrap_or_default();
    // "assign values: field X: program NAME: ..." / "...: map NAME: ..."
    let named = |what: &str| {
        error.split(": ").find_map(|part| part.strip_prefix(what)).filter(|n| !n.contains(' ')).map(String::from)
    };
    let failed_program = named("program ");
    let step = if report.loaded {
        None
    } else if error.contains("BTF") && !error.contains("program type") {
        Some("btf_load")
    } else if named("map ").is_some() {
        Some("map_create")
    } else if failed_program.is_some() {
        Some("prog_load")
    } else {
        Some("object_load")
    };
    let programs = names
        .into_iter()
        .map(|name| super::ProgramOutcome {
            loaded: report.loaded,
            errno: (failed_program.as_deref() == Some(name.as_str())).then_some(report.errno).flatten(),
            log_tail: Vec::new(),
            name,
        })
        .collect();
    super::LoadOutcome {
        loaded: report.loaded && code == 0,
        step: step.map(String::from),
        errno: report.errno,
        message: (!error.is_empty()).then_some(error),
        programs,
        libbpf_log: log,
        sandbox: None,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn classify_prog_failure() {
        let log = v(&[
            "libbpf: prog 'drop_all': BPF program load failed: -EPERM",
            "libbpf: prog 'drop_all': -- BEGIN PROG LOAD LOG --",
            "0: R1=ctx() R10=fp0",
            "-- END PROG LOAD LOG --",
            "libbpf: prog 'drop_all': failed to load: -EPERM",
            "libbpf: failed to load object 'x'",
        ]);
        let f = classify(&log);
        assert_eq!(f.step, "prog_load");
        assert_eq!(f.program, Some(("drop_all".to_string(), Some(libc::EPERM))));
        let tail = program_log_tail(&log, "drop_all", 20);
        assert_eq!(tail.len(), 3);
        assert_eq!(tail[1], "0: R1=ctx() R10=fp0");
    }

    #[test]
    fn classify_probe_and_map() {
        let f = classify(&v(&["libbpf: Error in bpf_object__probe_loading(): -EPERM. Couldn't load"]));
        assert_eq!(f.step, "libbpf_probe");
        let f = classify(&v(&["libbpf: map 'counts': failed to create: -EPERM"]));
        assert_eq!(f.step, "map_create");
        assert_eq!(f.map.as_deref(), Some("counts"));
        assert_eq!(parse_errstr(" -22"), Some(22));
        assert_eq!(parse_errstr("-ENOTSUPP"), Some(524));
    }

    #[test]
    fn cilium_loader_reports_name_the_step_and_program() {
        let report = br#"{"loaded":false,"error":"assign values: field Prog: program prog: load program: operation not permitted","errno":1,"programs":["prog","other"],"maps":[]}"#;
        let o = super::cilium_outcome(report, 1, &[], Vec::new());
        assert_eq!((o.loaded, o.step.as_deref(), o.errno), (false, Some("prog_load"), Some(1)));
        assert_eq!(
            o.programs.iter().map(|p| (p.name.as_str(), p.errno)).collect::<Vec<_>>(),
            [("prog", Some(1)), ("other", None)]
        );
        let btf = br#"{"loaded":false,"error":"assign values: field P: program p: load BTF: token insufficiently privileged","errno":1,"programs":["p"]}"#;
        assert_eq!(super::cilium_outcome(btf, 1, &[], Vec::new()).step.as_deref(), Some("btf_load"));
        let map = br#"{"loaded":false,"error":"assign values: field M: map m: map create: operation not permitted","errno":1,"programs":[]}"#;
        assert_eq!(super::cilium_outcome(map, 1, &[], Vec::new()).step.as_deref(), Some("map_create"));
        let ok = br#"{"loaded":true,"error":null,"errno":null,"programs":["p"]}"#;
        assert!(super::cilium_outcome(ok, 0, &[], Vec::new()).programs[0].loaded);
        assert_eq!(super::cilium_outcome(b"garbage", 2, &[], Vec::new()).step.as_deref(), Some("loader"));
    }
}
