//! Command-line interface. Exit codes (stable, documented in docs/exit-codes.md):
//! 0 success / clean, 1 findings (a verification that fails), 2 error (bad input, could not run).

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::analysis::{self, LoaderChoice, Options};
use crate::{input, report, rules};

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
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LoaderArg {
    /// libbpf (bpf_object__load): the object's needs plus libbpf's own probes through the token.
    Libbpf,
    /// Only what the kernel checks for the object's own maps and programs.
    Raw,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FormatArg {
    Table,
    Json,
}

/// Options shared by the commands that analyse objects.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Restrict to this program (repeatable); maps are not narrowed, libbpf creates them all.
    #[arg(long = "program", value_name = "NAME")]
    pub programs: Vec<String>,
    /// The loader the delegation must serve.
    #[arg(long, value_enum, default_value_t = LoaderArg::Libbpf)]
    pub loader: LoaderArg,
    /// libbpf version or range (MAJOR.MINOR or MIN-MAX) the delegation must work with.
    #[arg(long, value_name = "X.Y", default_value = "1.5-1.7")]
    pub libbpf: String,
    /// Also delegate items libbpf can do without (see "optional" in the output).
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
    let loader = match sel.loader {
        LoaderArg::Raw => LoaderChoice::Raw,
        LoaderArg::Libbpf => LoaderChoice::Libbpf(analysis::parse_libbpf_versions(&sel.libbpf, r)?),
    };
    let inputs = input::load_inputs(&sel.paths)?;
    let opts = Options { programs: sel.programs.clone(), loader, with_optional: sel.with_optional };
    Ok(analysis::analyse(inputs, &opts, r)?)
}

fn analyze(args: &AnalyzeArgs) -> miette::Result<i32> {
    let a = run_analysis(&args.select)?;
    let r = rules::rules();
    let text = match args.format {
        FormatArg::Json => {
            let mut s = serde_json::to_string_pretty(&report::analysis_json(&a, r)).expect("JSON");
            s.push('\n');
            s
        }
        FormatArg::Table => report::table::render(&a, r),
    };
    write_stdout(&text);
    Ok(EXIT_OK)
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
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            EXIT_ERROR
        }
    }
}
