//! Command-line interface. Exit codes (stable, documented in docs/cli.md, "Exit codes"):
//! 0 success / clean, 1 findings (a verification that fails), 2 error (bad input, could not run).

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::analysis::{self, Options};
use crate::delegation::Delegation;
use crate::model::ObjectRef;
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
    /// Colour in error reports: auto (a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// Print only the answer: no notes on standard error, no warnings or next-step line in
    /// tables (errors still go to standard error).
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
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
    /// Run a program in the sandbox under a delegation of everything and record the token
    /// checks it causes; with --minimize, prove which of them it needs.
    Record(RecordArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; `bpfcap man | man -l -`).
    Man,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Re-run the program with each item and capability dropped in turn, keeping only those
    /// without which it fails (the answer is then 1-minimal).
    #[arg(long)]
    pub minimize: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    #[command(flatten)]
    pub run: RunArgs,
    /// The program and its arguments (after `--`); a name without '/' is looked up in PATH.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// How a program is run in the sandbox (`record`, `verify --exec`).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The program works if it is still running after SECONDS (a daemon); it is then stopped.
    /// Without it, the program works when it exits 0.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub ready_after: Option<std::time::Duration>,
    /// Host uid (and gid) the sandbox's root is mapped to (not 0: that would be host root).
    #[arg(long, default_value_t = crate::sandbox::DEFAULT_UID, value_parser = clap::value_parser!(u32).range(1..))]
    pub uid: u32,
    /// Time limit of one run of the program, in seconds: it is stopped, with every process it
    /// started, after it.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::record::DEFAULT_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Time limit of everything (every run, --minimize's included), in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::verify::DEFAULT_DEADLINE.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub deadline: u64,
    /// Memory budget of one run (the program and its maps): bytes, or with K, M or G.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub memory: u64,
}

#[derive(Debug, Args)]
pub struct EmitArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Take what is needed from a record document (`bpfcap record --format json`) instead of
    /// objects.
    #[arg(long, value_name = "FILE", conflicts_with = "paths")]
    pub from: Option<PathBuf>,
    /// The configuration dialect to write.
    #[arg(long, value_parser = crate::dialect::target_parser())]
    pub target: crate::dialect::Named,
    /// Kernel the configuration is for: X.Y, or `running`; names it lacks are refused.
    #[arg(long, value_name = "X.Y|running")]
    pub kernel: Option<String>,
    /// Write to FILE (atomically) instead of standard output ('-': standard output).
    #[arg(long, value_name = "FILE|-")]
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
    /// Take what is needed from a record document (`bpfcap record --format json`) instead of
    /// objects.
    #[arg(long, value_name = "FILE", conflicts_with = "paths")]
    pub from: Option<PathBuf>,
    /// The configuration to check ('-' for standard input). Repeat it for a systemd unit and
    /// its drop-ins: they are read together, in systemd's order (the unit, then the drop-ins
    /// by file name).
    #[arg(long, value_name = "FILE|-", required = true)]
    pub config: Vec<String>,
    /// Its dialect (default: detected from the text).
    #[arg(long, value_parser = crate::dialect::reader_parser())]
    pub dialect: Option<crate::dialect::Named>,
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
    /// Run a program instead of loading objects: the PATH arguments (after `--`) are the
    /// program and its arguments. It must work (exit 0, or run past --ready-after) under the
    /// delegation: of the objects embedded in the program's file, --config, or --from.
    #[arg(long)]
    pub exec: bool,
    /// With --exec: the delegation and capabilities of a record document.
    #[arg(long, value_name = "FILE", requires = "exec", conflicts_with = "config")]
    pub from: Option<PathBuf>,
    /// With --exec: the program works if it is still running after SECONDS (a daemon).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, requires = "exec")]
    pub ready_after: Option<std::time::Duration>,
    /// Verify this configuration instead of the derived delegation ('-' reads standard input):
    /// any dialect `check` reads; repeat it for a systemd unit and its drop-ins. The
    /// capabilities stay the derived ones.
    #[arg(long, value_name = "FILE|-")]
    pub config: Vec<String>,
    /// The configuration's dialect (default: detected from the text).
    #[arg(long, value_parser = crate::dialect::reader_parser(), requires = "config")]
    pub dialect: Option<crate::dialect::Named>,
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
#[derive(Debug, Clone, Args)]
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
    #[arg(long, value_name = "X.Y", default_value = rules::rules().libbpf().header.default_versions.as_str())]
    pub libbpf: String,
    /// Also delegate items the loader can do without (see "optional" in the output).
    #[arg(long)]
    pub with_optional: bool,
    /// The platform to read from a container image whose index lists several (OS/ARCH or
    /// OS/ARCH/VARIANT); the default is the running machine's.
    #[arg(long, value_name = "OS/ARCH", value_parser = parse_platform)]
    pub platform: Option<crate::input::image::Platform>,
    /// BPF object files, executables and libraries, directories searched recursively for them,
    /// container images (OCI layout directories, docker-archive and OCI archives) and root
    /// filesystem tarballs; `-` reads one file from standard input (not with --from).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

fn parse_platform(s: &str) -> Result<crate::input::image::Platform, String> {
    crate::input::image::Platform::parse(s)
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Also show each object's programs and maps, why each item is needed, and what each
    /// optional item would cost (the table shows the answer first either way).
    #[arg(long, short)]
    pub verbose: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,
    /// Also give the answer for each file that holds objects (an executable, a library, an
    /// object file; in an image, by its path there), as analysing that file alone would.
    #[arg(long)]
    pub by_executable: bool,
}

/// Runs the analysis stage for the shared selection options.
pub fn run_analysis(sel: &SelectArgs) -> miette::Result<analysis::Analysis> {
    let (reading, opts) = analysis_options(sel)?;
    Ok(crate::pipeline::analyse_paths(&sel.paths, &reading, &opts, rules::rules())?)
}

/// How the shared selection options read inputs and analyse them.
fn analysis_options(sel: &SelectArgs) -> miette::Result<(crate::input::Options, Options)> {
    let r = rules::rules();
    if sel.paths.is_empty() {
        return Err(miette::miette!(
            code = "bpfcap::input::no_path",
            help = "give BPF object files, directories or executables",
            "no PATH given"
        ));
    }
    let loader = analysis::parse_loader(&sel.loader, &sel.libbpf, r)?;
    let opts = Options { programs: sel.programs.clone(), loader, with_optional: sel.with_optional };
    Ok((crate::input::Options { platform: sel.platform.clone() }, opts))
}

fn analyze(args: &AnalyzeArgs, quiet: bool) -> miette::Result<i32> {
    let (a, executables) = if args.by_executable {
        let (reading, opts) = analysis_options(&args.select)?;
        let (a, e) = crate::pipeline::analyse_by_executable(&args.select.paths, &reading, &opts, rules::rules())?;
        (a, Some(e))
    } else {
        (run_analysis(&args.select)?, None)
    };
    // The process ends after the report: freeing a large tree's analysis piece by piece
    // would only cost time.
    let (a, executables) = &*Box::leak(Box::new((a, executables)));
    let r = rules::rules();
    let text = match args.format {
        FormatArg::Json => {
            let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            let written = report::write_analysis_document(a, executables.as_deref(), r, &mut out)
                .and_then(|()| std::io::Write::flush(&mut out));
            return match written {
                Ok(()) => Ok(EXIT_OK),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(EXIT_OK),
                Err(e) => Err(miette::miette!("cannot write the report: {e}")),
            };
        }
        FormatArg::Table => {
            let paths: Vec<String> =
                args.select.paths.iter().map(|p| Escaped(&p.to_string_lossy()).to_string()).collect();
            let next = format!("bpfcap emit --target systemd {}", paths.join(" "));
            let mut text = report::table::render(a, r, args.verbose, (!quiet).then_some(next.as_str()));
            if let Some(executables) = executables {
                text.push_str(&report::table::render_executables(executables, r));
            }
            text
        }
    };
    write_stdout(&text);
    Ok(EXIT_OK)
}

fn verify(args: &VerifyArgs, quiet: bool) -> miette::Result<i32> {
    let r = rules::rules();
    let opts = sandbox_options(args.uid, args.timeout, args.deadline, args.memory, args.ready_after)?;
    let (d, targets, loader) = if args.exec { exec_targets(args, r, quiet)? } else { object_targets(args, r)? };
    crate::sandbox::stop_on_signals();
    let v = verify::verify(&targets, &d, args.minimize, r, &opts)?;
    let text = match args.format {
        FormatArg::Json => report::verification_json(&v, &d, &loader, r),
        FormatArg::Table => report::verification_table(&v, &d, args.minimize, r),
    };
    write_stdout(&text);
    Ok(if !v.loaded || (args.strict && v.minimal != Some(true)) { EXIT_FINDINGS } else { EXIT_OK })
}

/// `verify PATH...`: the delegation derived from the objects (or --config's), and one target
/// per object whose loader takes a token.
fn object_targets(args: &VerifyArgs, r: &rules::Rules) -> miette::Result<(Delegation, Vec<verify::Target>, String)> {
    let a = run_analysis(&args.select)?;
    let mut d = a.delegation.clone();
    if !args.config.is_empty() {
        let cfg = crate::dialect::load_all(&args.config, args.dialect.map(|d| d.0), r)?;
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
        let Some(object) = o.object.source.clone().filter(|s| s.image.is_none()) else {
            return Err(miette::miette!(
                code = "bpfcap::verify::not_a_file",
                help = "verify loads each object from its file: unpack the image (umoci unpack, skopeo copy … dir:) \
                        and pass the files, or write standard input to a file",
                "{}: read from a container image or standard input, not from a file",
                crate::text::Escaped(&o.path)
            ));
        };
        targets.push(verify::Target {
            object,
            programs: o.selected.iter().cloned().collect(),
            declared_memory: (bytes, largest.map(|(m, b)| (m.to_string(), b))),
            runner,
        });
    }
    Ok((d, targets, a.loader_description(r)))
}

/// `verify --exec -- CMD ARGS...`: the program as the one target, under the delegation of a
/// record document (--from), of --config, or of the objects embedded in the program's file.
fn exec_targets(
    args: &VerifyArgs,
    r: &rules::Rules,
    quiet: bool,
) -> miette::Result<(Delegation, Vec<verify::Target>, String)> {
    let words: Vec<std::ffi::OsString> = args.select.paths.iter().map(|p| p.clone().into_os_string()).collect();
    let argv = resolve_command(&words)?;
    let (d, loader) = if let Some(from) = &args.from {
        let doc = crate::record::document::read(from)?;
        (doc.delegation(r), format!("as recorded for {}", Escaped(&doc.command.join(" "))))
    } else {
        let program = PathBuf::from(&argv[0]);
        // (a program that embeds no object is no error here: --config can say what it needs)
        let embeds = input::load_inputs(std::slice::from_ref(&program)).is_ok_and(|(o, _)| !o.is_empty());
        let a = match embeds {
            true => Some(run_analysis(&SelectArgs { paths: vec![program], ..args.select.clone() })?),
            false => None,
        };
        let found = a.iter().flat_map(|a| &a.objects).any(|o| !o.selected.is_empty());
        let mut d = a.as_ref().map(|a| a.delegation.clone()).unwrap_or_default();
        if !args.config.is_empty() {
            let cfg = crate::dialect::load_all(&args.config, args.dialect.map(|d| d.0), r)?;
            d = Delegation { capabilities: d.capabilities.clone(), ..cfg.delegation(r) };
            if !found {
                // nothing derived: every capability the kernel checks through a token
                d.capabilities = r.token_capabilities();
                note(
                    quiet,
                    &format!(
                        "{} embeds no BPF object: its capabilities are every one the kernel checks through a token ({})",
                        Escaped(&argv[0]),
                        d.capabilities.join(", ")
                    ),
                );
            }
        } else if !found {
            return Err(miette::miette!(
                code = "bpfcap::verify::exec_no_objects",
                help = "give the delegation with --config FILE or --from RECORD.json (bpfcap record --format json)",
                "{} embeds no BPF object bpfcap can analyse, so there is no delegation to verify",
                Escaped(&argv[0])
            ));
        }
        let loader = match &a {
            Some(a) => a.loader_description(r),
            None => "the program's own loader".into(),
        };
        (d, loader)
    };
    let target = verify::Target {
        object: ObjectRef::whole(&argv[0], ""),
        programs: Vec::new(),
        declared_memory: (0, None),
        runner: crate::sandbox::Runner::Command { argv, ready_after: args.ready_after },
    };
    Ok((d, vec![target], loader))
}

/// The program of `record` and `verify --exec` as the sandbox runs it: argv[0] made absolute
/// (a name without '/' looked up in PATH), every word UTF-8.
fn resolve_command(words: &[std::ffi::OsString]) -> miette::Result<Vec<String>> {
    let Some(first) = words.first() else {
        return Err(miette::miette!(code = "bpfcap::run::no_command", "no program given (put it after `--`)"));
    };
    let first_path = std::path::Path::new(first);
    let found = if first.as_encoded_bytes().contains(&b'/') {
        std::path::absolute(first_path).ok().filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(first_path))
            .find(|p| {
                p.is_file()
                    && std::fs::metadata(p)
                        .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
            })
            .and_then(|p| std::path::absolute(p).ok())
    };
    let Some(path) = found else {
        return Err(miette::miette!(
            code = "bpfcap::run::not_found",
            help = "give the program's path, or a name found in PATH",
            "{}: no such program",
            Escaped(&first.to_string_lossy())
        ));
    };
    std::iter::once(path.into_os_string())
        .chain(words[1..].iter().cloned())
        .map(|w| {
            w.into_string().map_err(|w| {
                miette::miette!(
                    code = "bpfcap::run::not_utf8",
                    "{}: bpfcap runs only programs and arguments that are UTF-8",
                    Escaped(&w.to_string_lossy())
                )
            })
        })
        .collect()
}

/// The sandbox's limits from `verify`'s and `record`'s options (timeouts in seconds); a
/// `--ready-after` that the time limit would cut short is an error.
fn sandbox_options(
    uid: u32,
    timeout: u64,
    deadline: u64,
    memory: u64,
    ready_after: Option<std::time::Duration>,
) -> miette::Result<verify::VerifyOptions> {
    let mut opts = verify::VerifyOptions::new(verify::current_exe());
    opts.uid = uid;
    opts.timeout = std::time::Duration::from_secs(timeout);
    opts.deadline = std::time::Duration::from_secs(deadline);
    opts.memory = memory;
    if let Some(ready) = ready_after
        && ready >= opts.timeout
    {
        return Err(miette::miette!(
            code = "bpfcap::run::ready_after",
            help = "raise --timeout above --ready-after",
            "--ready-after {}s is not shorter than --timeout {timeout}s: the program would be stopped first",
            ready.as_secs_f64()
        ));
    }
    Ok(opts)
}

/// `--ready-after SECONDS`: a positive number of seconds, fractions allowed.
fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= 86400.0)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("'{s}': a number of seconds, more than 0 and at most 86400"))
}

fn record(args: &RecordArgs) -> miette::Result<i32> {
    let r = rules::rules();
    if !cfg!(target_arch = "x86_64") {
        return Err(miette::miette!(
            code = "bpfcap::record::arch",
            "record observes bpf() calls through x86-64 syscall registers: it runs on x86-64 only"
        ));
    }
    let argv = resolve_command(&args.command)?;
    let run = &args.run;
    let sandbox = sandbox_options(run.uid, run.timeout, run.deadline, run.memory, run.ready_after)?;
    let opts = crate::record::RecordOptions { sandbox, ready_after: run.ready_after, minimize: args.minimize };
    crate::sandbox::stop_on_signals();
    let rec = crate::record::record(&argv, &opts, r)?;
    let text = match args.format {
        FormatArg::Json => {
            let mut s =
                serde_json::to_string_pretty(&crate::record::document::RecordDocument::of(&rec, r)).expect("JSON");
            s.push('\n');
            s
        }
        FormatArg::Table => report::record::table(&rec, r),
    };
    write_stdout(&text);
    let proven = rec.minimization.as_ref().is_none_or(|m| m.one_minimal == Some(true));
    Ok(if rec.worked() && proven { EXIT_OK } else { EXIT_FINDINGS })
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
            crate::rules::Version::of_release(&release)
                .map(Some)
                .ok_or_else(|| miette::miette!("cannot parse the running kernel's version '{}'", release.trim()))
        }
        Some(v) => {
            let version = crate::rules::Version::parse(v).ok_or_else(|| {
                miette::miette!(help = "use MAJOR.MINOR, e.g. 6.9, or `running`", "bad kernel version '{v}'")
            })?;
            let studied = &rules::rules().privileges.kernels;
            match crate::rules::Version::parse(&studied.last) {
                Some(last) if version > last => Err(miette::miette!(
                    code = "bpfcap::kernel::unknown",
                    help = format!(
                        "bpfcap's rules were read from Linux {}-{}: target one of those",
                        studied.first, studied.last
                    ),
                    "Linux {v} is newer than any kernel bpfcap's rules describe: what it checks is not known"
                )),
                _ => Ok(Some(version)),
            }
        }
    }
}

/// What `emit` and `check` compare against: the objects' analysis, or a record document.
struct Needed {
    delegation: Delegation,
    requirements: crate::analysis::requirements::Requirements,
    /// For the emitted header: what the answer is for.
    source: String,
    /// Each object's loader as reports name it, by the object's name (none for a record document).
    loaders: std::collections::BTreeMap<String, String>,
}

fn needed(select: &SelectArgs, from: Option<&std::path::Path>, r: &rules::Rules) -> miette::Result<Needed> {
    if let Some(path) = from {
        let doc = crate::record::document::read(path)?;
        return Ok(Needed {
            delegation: doc.delegation(r),
            requirements: doc.requirements(r),
            source: format!("as recorded for {}", doc.command.join(" ")),
            loaders: Default::default(),
        });
    }
    let a = run_analysis(select)?;
    let source = match a.objects.len() {
        1 => format!("({}) for {}", a.loader_description(r), a.objects[0].path),
        n => format!(
            "({}) for {n} objects in {}",
            a.loader_description(r),
            select.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ")
        ),
    };
    let loaders = a
        .objects
        .iter()
        .filter_map(|o| {
            let model = r.loader(&o.loader.spec.as_ref()?.name)?;
            Some((o.object.name.to_string(), model.header.title.clone()))
        })
        .collect();
    Ok(Needed { delegation: a.delegation, requirements: a.requirements, source, loaders })
}

fn emit(args: &EmitArgs, quiet: bool) -> miette::Result<i32> {
    let r = rules::rules();
    let a = needed(&args.select, args.from.as_deref(), r)?;
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
    let header = format!("generated by bpfcap {} {}", env!("CARGO_PKG_VERSION"), a.source);
    let why = crate::emit::why_from(&a.requirements, &a.loaders);
    let out = args.target.0.emit(&a.delegation, &header, &why, r);
    for n in &out.notes {
        note(quiet, n);
    }
    match args.output.as_ref().filter(|p| p.as_os_str() != "-") {
        Some(p) => crate::emit::write_atomic(p, &out.text, args.force)
            .map_err(|e| miette::miette!(code = "bpfcap::emit::write", "cannot write {}: {e}", p.display()))?,
        None => write_stdout(&out.text),
    }
    Ok(EXIT_OK)
}

fn check(args: &CheckArgs) -> miette::Result<i32> {
    let r = rules::rules();
    let a = needed(&args.select, args.from.as_deref(), r)?;
    let cfg = crate::dialect::load_all(&args.config, args.dialect.map(|d| d.0), r)?;
    let kernel = kernel_version(args.kernel.as_deref())?;
    let opts = crate::check::CheckOptions { deny_extra: args.deny_extra, kernel };
    let rep = crate::check::check(&cfg, &a.delegation, &a.requirements, &opts, r);
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

/// A note on standard error, unless --quiet.
fn note(quiet: bool, text: &str) {
    if !quiet {
        let _ = writeln!(std::io::stderr().lock(), "bpfcap: note: {text}");
    }
}

fn write_stdout(s: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`bpfcap ... | head`) is not an error worth a panic.
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

/// An error as a log shows it: `bpfcap: what is wrong` on one line (its causes appended
/// where the message does not already say them), and `bpfcap: help: what to do` on a second
/// line when there is a hint; the error's stable code in brackets at the end of the first. No
/// code line, no drawing.
pub fn log_lines(report: &miette::Report) -> String {
    let mut line = report.to_string();
    for cause in report.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    // the stable code (docs) to look the error up by: the most specific one, of the
    // innermost diagnostic that has one
    let mut diagnostic: &dyn miette::Diagnostic = report.as_ref();
    let mut code = diagnostic.code().map(|c| c.to_string());
    while let Some(inner) = diagnostic.diagnostic_source() {
        diagnostic = inner;
        code = diagnostic.code().map(|c| c.to_string()).or(code);
    }
    if let Some(code) = code {
        line.push_str(&format!(" [{code}]"));
    }
    let mut out = format!("bpfcap: {}\n", line.replace('\n', " "));
    if let Some(help) = report.help() {
        out.push_str(&format!("bpfcap: help: {}\n", help.to_string().replace('\n', " ")));
    }
    out
}

/// Entry point of the binary; returns the exit code.
/// `--version`: bpfcap's, and what its rules cover.
fn version_text() -> String {
    let r = rules::rules();
    let loaders: Vec<String> = r
        .loaders
        .iter()
        .map(|l| match (l.versions[0], l.newest()) {
            (first, last) if first == last => format!("{} {first}", l.header.title),
            (first, last) => format!("{} {first}-{last}", l.header.title),
        })
        .collect();
    format!(
        "{} (rules: Linux {}-{}; {}; systemd {}+)",
        env!("CARGO_PKG_VERSION"),
        r.privileges.kernels.first,
        r.privileges.kernels.last,
        loaders.join(", "),
        r.systemd().settings.since
    )
}

pub fn main() -> i32 {
    // (clap keeps static strings: one small string for the process's life)
    let version: &'static str = Box::leak(version_text().into_boxed_str());
    let command = <Cli as clap::CommandFactory>::command().version(version).long_version(version);
    let cli = match command.try_get_matches().and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m)) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    let color = match cli.color {
        ColorArg::Auto => None,
        ColorArg::Always => Some(true),
        ColorArg::Never => Some(false),
    };
    if let Some(color) = color {
        let _ = miette::set_hook(Box::new(move |_| Box::new(miette::MietteHandlerOpts::new().color(color).build())));
    }
    let result = match &cli.command {
        Command::Analyze(a) => analyze(a, cli.quiet),
        Command::Verify(v) => verify(v, cli.quiet),
        Command::Emit(e) => emit(e, cli.quiet),
        Command::Check(c) => check(c),
        Command::Record(c) => record(c),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut <Cli as clap::CommandFactory>::command(), "bpfcap", &mut out);
            write_stdout(&String::from_utf8_lossy(&out));
            Ok(EXIT_OK)
        }
        Command::Man => {
            let mut out = Vec::new();
            match clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut out) {
                Ok(()) => {
                    write_stdout(&String::from_utf8_lossy(&out));
                    Ok(EXIT_OK)
                }
                Err(e) => Err(miette::miette!("cannot render the manual page: {e}")),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            let mut err = std::io::stderr().lock();
            // (a closed stderr is no reason to panic)
            let _ = if std::io::IsTerminal::is_terminal(&err) {
                writeln!(err, "{report:?}")
            } else {
                write!(err, "{}", log_lines(&report))
            };
            EXIT_ERROR
        }
    }
}
