# Sourced by bpf-samples/build.sh and bpf-samples/embedded/build.sh: their common options and
# their libbpf headers.
#   build_args DEFAULT_OUT_DIR HELP_LAST_LINE "$@"
# sets OUT_DIR (--out DIR, --out=DIR; default DEFAULT_OUT_DIR) and CHECK (--check: 1, else
# 0); -h/--help prints the calling script's header comment (lines 2..HELP_LAST_LINE).
build_args() {
    OUT_DIR=$1
    local help_last=$2
    shift 2
    CHECK=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --out)
                [ $# -ge 2 ] || { echo "build.sh: --out needs a directory" >&2; exit 2; }
                OUT_DIR=$2; shift 2 ;;
            --out=*)
                OUT_DIR=${1#--out=}; shift ;;
            --check)
                CHECK=1; shift ;;
            -h|--help)
                sed -n "2,${help_last}p" "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
            *)
                echo "build.sh: unknown argument: $1" >&2; exit 2 ;;
        esac
    done
}

#   libbpf_workdir
# sets LIBBPF_DIR (libbpf's sources, from scripts/libbpf-src), TMP (a directory removed when
# the script exits) and INC (an include directory in TMP where <bpf/...> are libbpf's headers).
# Call it from the script itself, not in a subshell: it installs the EXIT trap.
libbpf_workdir() {
    LIBBPF_DIR="$("$REPO_ROOT/scripts/libbpf-src")/libbpf" || exit 1
    TMP=$(mktemp -d)
    # shellcheck disable=SC2064 # TMP is fixed now
    trap "rm -rf '$TMP'" EXIT
    INC="$TMP/include"
    mkdir -p "$INC"
    ln -s "$LIBBPF_DIR/src" "$INC/bpf"
}
