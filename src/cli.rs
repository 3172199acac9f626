//! Command-line interface. Exit codes (stable, documented in docs/exit-codes.md):
//! 0 success / clean, 1 findings (a verification that fails), 2 error (bad input, could not run).

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::analysis::{self, Options};
use crate::text::Escaped;
use crate::{input, report, rules, verify};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FINDINGS: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

/// BPF cap calculator: the minimal BPF-token delegation and capabilities for BPF objects.
#[derive(Debug, Parser)]
#[command(name = "bpfcap", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Derive the delegation (delegate_cmds/maps/progs/attachs) and capabilities BPF objects need.
    Analyze(AnalyzeArgs),
    /// Prove a delegation: load the objects through a real BPF token from a fresh user namespace.
    Verify(VerifyArgs),
    /// Write the delegation as configuration (systemd, mount, fstab, mount unit, Incus, LXD, JSON).
    Emit(EmitArgs),
    /// Lint an existing configuration against what the objects need (for CI).
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct EmitArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// The configuration dialect to write.
    #[arg(long, value_enum)]
    pub target: crate::emit::Target,
    /// Kernel the configuration is for: X.Y, or `running`; names it lacks are refused.
    #[arg(long, value_name = "X.Y|running")]
    pub kernel: Option<String>,
    /// Write to FILE (atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long, requires = "output")]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CheckFormat {
    Human,
    Json,
    Sarif,
    Github,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// The configuration to check ('-' for standard input).
    #[arg(long, value_name = "FILE|-")]
    pub config: String,
    /// Its dialect (default: detected from the text).
    #[arg(long, value_enum)]
    pub dialect: Option<crate::config::Dialect>,
    /// Extra grants and `any` are errors, not warnings.
    #[arg(long)]
    pub deny_extra: bool,
    /// Kernel the configuration is for: X.Y, or `running`.
    #[arg(long, value_name = "X.Y|running")]
    pub kernel: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub format: CheckFormat,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Verify this configuration instead of the derived delegation ('-' reads standard input):
    /// any dialect `check` reads. The capabilities stay the derived ones.
    #[arg(long, value_name = "FILE|-")]
    pub config: Option<String>,
    /// The configuration's dialect (default: detected from the text).
    #[arg(long, value_enum, requires = "config")]
    pub dialect: Option<crate::config::Dialect>,
    /// Also drop each item and capability in turn and report whether it is required.
    #[arg(long)]
    pub minimize: bool,
    /// With --minimize: exit 1 unless every item is required.
    #[arg(long, requires = "minimize")]
    pub strict: bool,
    /// The cilium/ebpf loader that proves answers for objects cilium/ebpf loads (built from
    /// tools/cilium-loader; default: bpfcap-cilium-loader beside bpfcap).
    #[arg(long, value_name = "PATH")]
    pub cilium_loader: Option<PathBuf>,
    /// Host uid (and gid) the sandbox's root is mapped to (not 0: that would be host root).
    #[arg(long, default_value_t = crate::sandbox::DEFAULT_UID, value_parser = clap::value_parser!(u32).range(1..))]
    pub uid: u32,
    /// Time limit of one load, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::sandbox::DEFAULT_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Time limit of the whole verification (every load, the diagnosis and --minimize), in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::verify::DEFAULT_DEADLINE.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub deadline: u64,
    /// Memory budget of one load (the loader and its maps): bytes, or with K, M or G.
    #[arg(long, value_name = "SIZE", default_value = "512M", value_parser = parse_size)]
    pub memory: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FormatArg {
    Table,
    Json,
}

/// Options shared by the commands that analyse objects.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Restrict to this program (repeatable); the maps the loader creates for it follow (libbpf
    /// creates them all, cilium/ebpf those the program references).
    #[arg(long = "program", value_name = "NAME")]
    pub programs: Vec<String>,
    /// The loader the delegation must serve: auto (per object, from the file: a Go binary's
    /// build info, a libbpf linked in; libbpf for a bare object), libbpf, cilium, aya or raw,
    /// with an optional version or range (libbpf@1.8, cilium@0.22).
    #[arg(long, value_name = "LOADER[@X.Y]", default_value = "auto")]
    pub loader: String,
    /// libbpf version or range (MAJOR.MINOR or MIN-MAX) for objects loaded by a libbpf whose
    /// version is not known (bare objects, --loader libbpf).
    #[arg(long, value_name = "X.Y", default_value = "1.5-1.7")]
    pub libbpf: String,
    /// Also delegate items the loader can do without (see "optional" in the output).
    #[arg(long)]
    pub with_optional: bool,
    /// BPF object files, or directories searched recursively for them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
}

/// Runs the analysis stage for the shared selection options.
pub fn run_analysis(sel: &SelectArgs) -> miette::Result<analysis::Analysis> {
    let r = rules::rules();
    let loader = analysis::parse_loader(&sel.loader, &sel.libbpf, r)?;
    // Files are read and analysed together, on every core, one at a time per core.
    let (sources, warnings) = input::plan_inputs(&sel.paths)?;
    let opts = Options { programs: sel.programs.clone(), loader, with_optional: sel.with_optional };
    let counts: Vec<std::sync::atomic::AtomicUsize> = sources.iter().map(|_| Default::default()).collect();
    let load = |i: usize| {
        input::load_source(&sources[i]).map(|(objects, warnings)| {
            counts[i].store(objects.len(), std::sync::atomic::Ordering::Relaxed);
            analysis::Loaded { objects, warnings }
        })
    };
    let mut a = match analysis::analyse_stream(sources.len(), load, &opts, r) {
        Ok(a) => a,
        Err(analysis::StreamError::Load(e)) => return Err(e.into()),
        Err(analysis::StreamError::Analysis(e)) => return Err(e.into()),
    };
    let counts: Vec<usize> = counts.into_iter().map(|c| c.into_inner()).collect();
    input::check_directories(&sel.paths, &sources, &counts)?;
    // what could not be read inside executables and directories (the files' own warnings
    // are already first)
    a.requirements.warnings.splice(0..0, warnings);
    Ok(a)
}

fn analyze(args: &AnalyzeArgs) -> miette::Result<i32> {
    let a = run_analysis(&args.select)?;
    // The process ends after the report: freeing a large tree's analysis piece by piece
    // would only cost time.
    let a = &*Box::leak(Box::new(a));
    let r = rules::rules();
    let text = match args.format {
        FormatArg::Json => {
            let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            let written = report::write_analysis_json(a, r, &mut out).and_then(|()| std::io::Write::flush(&mut out));
            return match written {
                Ok(()) => Ok(EXIT_OK),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(EXIT_OK),
                Err(e) => Err(miette::miette!("cannot write the report: {e}")),
            };
        }
        FormatArg::Table => report::table::render(a, r),
    };
    write_stdout(&text);
    Ok(EXIT_OK)
}

fn verify(args: &VerifyArgs) -> miette::Result<i32> {
    let r = rules::rules();
    let a = run_analysis(&args.select)?;
    let mut d = a.delegation.clone();
    if let Some(path) = &args.config {
        let cfg = crate::config::load(path, args.dialect, r)?;
        let caps = d.capabilities.clone();
        d = cfg.delegation(r);
        d.capabilities = caps;
    }
    let cpus = verify::possible_cpus();
    let mut targets: Vec<verify::Target> = Vec::new();
    for o in a.objects.iter().filter(|o| !o.selected.is_empty()) {
        let (bytes, largest) = crate::analysis::memory::object_bytes(&o.object, cpus, r);
        let Some(runner) = verify::runner_for(&o.loader, args.cilium_loader.as_deref(), r)? else {
            continue; // no token: nothing to prove (the analysis warns)
        };
        targets.push(verify::Target {
            path: PathBuf::from(&o.path),
            programs: o.selected.iter().cloned().collect(),
            declared_memory: (bytes, largest.map(|(m, b)| (m.to_string(), b))),
            runner,
        });
    }
    let mut opts = verify::VerifyOptions::new(verify::current_exe());
    opts.uid = args.uid;
    opts.timeout = std::time::Duration::from_secs(args.timeout);
    opts.deadline = std::time::Duration::from_secs(args.deadline);
    opts.memory = args.memory;
    let v = verify::verify(&targets, &d, args.minimize, r, &opts)?;
    let text = match args.format {
        FormatArg::Json => {
            let doc = serde_json::json!({
                "schema": report::SCHEMA,
                "kind": "verification",
                "loader": a.loader_description(r),
                "delegation": report::delegation_json(&d),
                "capabilities": d.capabilities,
                "mount_options": d.mount_options(r),
                "loaded": v.loaded,
                "minimal": v.minimal,
                "targets": v.targets,
                "items": v.items.iter().map(|i| serde_json::json!({
                    "item": report::need_json(&i.item),
                    "required": i.required,
                    "failure": i.failure,
                    "undecided": i.undecided,
                })).collect::<Vec<_>>(),
            });
            let mut s = serde_json::to_string_pretty(&doc).expect("JSON");
            s.push('\n');
            s
        }
        FormatArg::Table => {
            let mut s = format!("delegation: {}\ncapabilities: {}\n", d.mount_options(r), d.capabilities.join(", "));
            for t in &v.targets {
                if t.outcome.loaded {
                    s.push_str(&format!(
                        "{}: loaded ({} programs)\n",
                        Escaped(&t.path.to_string_lossy()),
                        t.programs.len()
                    ));
                } else {
                    s.push_str(&format!(
                        "{}: {}\n",
                        Escaped(&t.path.to_string_lossy()),
                        Escaped(&verify::describe(&t.outcome))
                    ));
                    if let Some(dg) = &t.diagnosis {
                        s.push_str(&format!("  diagnosis: {}\n", Escaped(dg)));
                    }
                    for p in t.outcome.programs.iter().filter(|p| p.errno.is_some()) {
                        for l in &p.log_tail {
                            s.push_str(&format!("  | {}\n", Escaped(l)));
                        }
                    }
                }
            }
            for i in &v.items {
                let (verdict, why) = match (&i.undecided, i.required) {
                    (Some(u), _) => ("undecided", Some(u)),
                    (None, true) => ("required", i.failure.as_ref()),
                    (None, false) => ("not required", None),
                };
                s.push_str(&format!(
                    "  {:<45} {verdict}{}\n",
                    i.item.to_string(),
                    why.map(|f| format!(" ({})", Escaped(f))).unwrap_or_default()
                ));
            }
            match v.minimal {
                Some(true) => s.push_str("every item is required: the delegation is minimal\n"),
                Some(false) => s.push_str("some items are not required\n"),
                None if args.minimize && v.loaded => s.push_str(
                    "minimality not known: some loads ran out of time or memory (--timeout, --deadline, --memory)\n",
                ),
                None => {}
            }
            s
        }
    };
    write_stdout(&text);
    Ok(if !v.loaded || (args.strict && v.minimal != Some(true)) { EXIT_FINDINGS } else { EXIT_OK })
}

/// A size: bytes, or a number with K, M or G (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let shift = match unit.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return Err(format!("'{s}': use bytes, or a number with K, M or G (512M)")),
    };
    let n: u64 = digits.parse().map_err(|_| format!("'{s}': use bytes, or a number with K, M or G (512M)"))?;
    n.checked_mul(1 << shift).filter(|b| *b >= 1 << 20).ok_or_else(|| format!("'{s}': at least 1M, at most 16E"))
}

/// `--kernel X.Y|running`; default: the newest kernel the rules know.
fn kernel_version(spec: Option<&str>) -> miette::Result<Option<crate::rules::Version>> {
    match spec {
        None => Ok(None),
        Some("running") => {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_err(|e| miette::miette!("cannot read the running kernel's version: {e}"))?;
            crate::rules::Version::parse(release.split(['-', '+']).next().unwrap_or(""))
                .map(Some)
                .ok_or_else(|| miette::miette!("cannot parse the running kernel's version '{}'", release.trim()))
        }
        Some(v) => crate::rules::Version::parse(v).map(Some).ok_or_else(|| {
            miette::miette!(help = "use MAJOR.MINOR, e.g. 6.9, or `running`", "bad kernel version '{v}'")
        }),
    }
}

fn emit(args: &EmitArgs) -> miette::Result<i32> {
    let r = rules::rules();
    let a = run_analysis(&args.select)?;
    let kernel = kernel_version(args.kernel.as_deref())?;
    if let Some(k) = kernel {
        let problems = crate::emit::kernel_problems(&a.delegation, k, r);
        if !problems.is_empty() {
            return Err(miette::miette!(
                code = "bpfcap::emit::kernel",
                help = "target a newer kernel with --kernel, or narrow the programs with --program",
                "Linux {k} cannot take this delegation:\n  {}",
                problems.join("\n  ")
            ));
        }
    }
    let objs: Vec<&str> = a.objects.iter().map(|o| o.path.as_str()).collect();
    let header = format!(
        "generated by bpfcap {} ({}) for {}",
        env!("CARGO_PKG_VERSION"),
        a.loader_description(r),
        objs.join(" ")
    );
    let why = crate::emit::why_from(&a.requirements);
    let out = crate::emit::emit(args.target, &a.delegation, &header, &why, r);
    for n in &out.notes {
        eprintln!("bpfcap: note: {n}");
    }
    match &args.output {
        Some(p) => crate::emit::write_atomic(p, &out.text, args.force)
            .map_err(|e| miette::miette!(code = "bpfcap::emit::write", "cannot write {}: {e}", p.display()))?,
        None => write_stdout(&out.text),
    }
    Ok(EXIT_OK)
}

fn check(args: &CheckArgs) -> miette::Result<i32> {
    let r = rules::rules();
    let a = run_analysis(&args.select)?;
    let cfg = crate::config::load(&args.config, args.dialect, r)?;
    let kernel = kernel_version(args.kernel.as_deref())?;
    let opts = crate::check::CheckOptions { deny_extra: args.deny_extra, kernel };
    let rep = crate::check::check(&cfg, &a, &opts, r);
    let text = match args.format {
        CheckFormat::Human => crate::check::render::human(&cfg, &rep),
        CheckFormat::Json => {
            format!("{}\n", serde_json::to_string_pretty(&crate::check::render::json(&cfg, &rep)).expect("JSON"))
        }
        CheckFormat::Sarif => {
            format!("{}\n", serde_json::to_string_pretty(&crate::check::render::sarif(&cfg, &rep)).expect("JSON"))
        }
        CheckFormat::Github => crate::check::render::github(&cfg, &rep),
    };
    write_stdout(&text);
    let fail = rep.has_errors() || (args.deny_extra && !rep.findings.is_empty());
    Ok(if fail { EXIT_FINDINGS } else { EXIT_OK })
}

fn write_stdout(s: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`bpfcap ... | head`) is not an error worth a panic.
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

/// Entry point of the binary; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    let result = match &cli.command {
        Command::Analyze(a) => analyze(a),
        Command::Verify(v) => verify(v),
        Command::Emit(e) => emit(e),
        Command::Check(c) => check(c),
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            EXIT_ERROR
        }
    }
}
