//! The bpfcap command: a thin layer over the library (see src/cli.rs).

// Analysis builds many small, short-lived values (names and reasons) on every core; mimalloc
// serves them several times faster than glibc's allocator (benches/speed.rs uses it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // No transparent huge pages: mimalloc's arenas would take memory 2 MiB at a time, which
    // the kernel zeroes whole, and the resident size would overstate what bpfcap uses.
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    // The verify sandbox re-executes this binary as its child process.
    if std::env::args_os().nth(1).is_some_and(|a| a == bpfcap::sandbox::CHILD_SUBCOMMAND) {
        std::process::exit(bpfcap::sandbox::child_main());
    }
    std::process::exit(bpfcap::cli::main());
}
