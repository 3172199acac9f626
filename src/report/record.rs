//! `record`'s table: the answer first, then how the program ran, what it asked for and by
//! whom, and with --minimize what each item was found to be.

use crate::record::{Recording, Request};
use crate::rules::Rules;
use crate::text::Escaped;
use crate::vocab::Need;

/// Requests shown per item (the JSON has them all).
const REQUESTS_SHOWN: usize = 3;

fn request_text(r: &Request) -> String {
    let mut s = format!("{} by {}", r.command, Escaped(&r.process));
    if let Some((prog, attach)) = &r.program {
        s.push_str(&format!(" [{prog}/{attach}]"));
    }
    s.push_str(&format!(" x{}", r.count));
    if r.failed > 0 {
        s.push_str(&format!(" ({} failed: {})", r.failed, r.errors.join(", ")));
    }
    s
}

/// Characters of a verdict the table shows (the JSON has it whole).
const VERDICT_CHARS: usize = 240;

fn shortened(s: String) -> String {
    match s.char_indices().nth(VERDICT_CHARS) {
        Some((at, _)) => format!("{}... (see --format json)", &s[..at]),
        None => s,
    }
}

fn item(n: &Need) -> String {
    n.to_string()
}

pub fn table(rec: &Recording, r: &Rules) -> String {
    let mut s = String::new();
    let d = &rec.delegation;
    let command = Escaped(&rec.command.join(" ")).to_string();
    if rec.worked() {
        let minimised = rec.minimization.as_ref().is_some_and(|m| m.problem.is_none());
        let what = if minimised { "needs" } else { "asked for" };
        s.push_str(&format!("{command} {what}:\n"));
        s.push_str(&format!(
            "  bpffs:        {}\n",
            if d.mount_options(r).is_empty() { "(nothing)".into() } else { d.mount_options(r) }
        ));
        s.push_str(&format!(
            "  capabilities: {}\n",
            if d.capabilities.is_empty() { "(none)".into() } else { d.capabilities.join(", ") }
        ));
    }
    let run = &rec.run;
    let how = match (run.loaded, run.still_running, run.exit_code) {
        (true, true, _) => "it was still running after --ready-after, and was stopped".to_string(),
        (true, false, _) => "it exited 0".to_string(),
        (false, _, _) => format!(
            "it did not work even with everything delegated: {}",
            Escaped(run.message.as_deref().unwrap_or(&crate::verify::describe(run)))
        ),
    };
    s.push_str(&format!("run under a delegation of everything: {how}\n"));
    if !run.loaded {
        let log = &run.libbpf_log;
        for l in &log[log.len().saturating_sub(10)..] {
            s.push_str(&format!("  | {}\n", Escaped(l)));
        }
    }
    if let Some(m) = &rec.minimization
        && let Some(p) = &m.problem
    {
        s.push_str(&format!("not minimised: {}\n", Escaped(p)));
    } else if let Some(m) = &rec.minimization {
        match m.one_minimal {
            Some(true) => s.push_str(&format!(
                "1-minimal: the program was run without each item of the answer and failed every time ({} runs)\n",
                m.runs
            )),
            Some(false) => s.push_str(&format!(
                "not proven minimal: dropping items kept changing what the program needs ({} runs)\n",
                m.runs
            )),
            None => s.push_str(&format!(
                "minimality not known: some runs ran out of time or memory (--timeout, --deadline, --memory) ({} runs)\n",
                m.runs
            )),
        }
    }
    s.push_str("\nasked for:\n");
    if rec.asked.is_empty() {
        s.push_str("  nothing: the program made no check through a token of the sandbox\n");
    }
    let width = rec.asked.iter().map(|a| item(&a.need).len()).max().unwrap_or(0);
    for a in &rec.asked {
        let mut reqs: Vec<String> = a.requests.iter().take(REQUESTS_SHOWN).map(request_text).collect();
        if !a.implied_by.is_empty() {
            reqs.push(format!("checked for {}", a.implied_by.join(", ")));
        }
        if a.requests.len() > REQUESTS_SHOWN {
            reqs.push(format!("+{} more", a.requests.len() - REQUESTS_SHOWN));
        }
        s.push_str(&format!("  {:<width$}  {}\n", item(&a.need), reqs.join("; ")));
    }
    if let Some(m) = &rec.minimization {
        s.push_str("\nminimised:\n");
        let width = m.verdicts.iter().map(|v| item(&v.need).len()).max().unwrap_or(0);
        for v in &m.verdicts {
            let verdict = match (&v.undecided, v.needed) {
                (Some(u), _) => format!("kept, undecided: {}", Escaped(u)),
                (None, true) => format!("needed: without it {}", Escaped(v.failure.as_deref().unwrap_or("it failed"))),
                (None, false) if v.lost.is_empty() => "not needed".to_string(),
                (None, false) => format!("not needed; without it: {}", Escaped(&v.lost.join("; "))),
            };
            s.push_str(&format!("  {:<width$}  {}\n", item(&v.need), shortened(verdict)));
        }
    }
    if rec.worked() {
        s.push_str(
            "\nnext: save it with --format json > record.json, then bpfcap emit --target systemd --from record.json\n",
        );
    }
    s
}
