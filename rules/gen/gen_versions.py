#!/usr/bin/env python3
"""Generate rules/kernel/versions.toml: the kernel version that introduced each BPF name.

For every non-alias entry of enum bpf_cmd, bpf_map_type, bpf_prog_type and bpf_attach_type in
rules/kernel/enums.toml, the first Linux release (MAJOR.MINOR) whose uapi header
include/uapi/linux/bpf.h has the entry's value. Nothing is typed in by hand: every `since`
comes from the headers (and bcc's docs/kernel-versions.md) given on the command line.

Usage:
  gen_versions.py generate --header LABEL=SRC [--header ...] [--bcc SRC] [--bpffs LABEL=SRC ...]
                           [--enums rules/kernel/enums.toml] [--out rules/kernel/versions.toml]
  gen_versions.py check    (same arguments)   fails when the committed file differs

  SRC is a file path, or GITDIR@REV:PATH to read PATH at REV of a git directory (`git show`).
  LABEL is the kernel version the header comes from, as its Makefile says it:
    X.Y or X.Y.0   a mainline release
    X.Y-rcN        a release candidate of X.Y
    X.Y.Z (Z > 0)  a stable point release of X.Y; X.Y.x: a stable release of X.Y, point unknown
  --bcc    bcc's docs/kernel-versions.md: per program/map type (and per map subcommand of its "Map
           userspace API" table) the release that added it; also the release of the bpf() syscall,
           before which no name can exist.
  --bpffs  kernel/bpf/inode.c of a labelled kernel: which bpffs delegate_* mount options it parses.
  --origin LABEL=TEXT  overrides the provenance text printed for a header (default: the repository,
           commit and path of a GITDIR source, or the file path).

How a version is derived (per enum value, so a renamed entry keeps its first release):
  - a header that has the value bounds `since` from above by the header's release X.Y;
  - a release or stable header that lacks it bounds `since` from below by the release after X.Y;
    an -rc header that lacks it only by X.Y itself (the value may have come later in that cycle);
  - stable releases can carry backports with mainline values (4.19.y has BPF_CGROUP_UDP4_RECVMSG
    = 19, a 5.2 value, after a gap): in a stable header only the values below its first gap count
    as present; a gap in a mainline or -rc header is an error;
  - `exact = true` when the bounds meet. Otherwise bcc's version (program and map types, map
    subcommands) is taken when it lies inside the bounds; else `since` is the upper bound, `exact = false` and
    `between = "A..B"` (absent in A, present in B).
  - bcc versions that contradict the headers are reported in `source` (the headers win).
The run fails if a name gets no version, if the bounds contradict each other, or if `since`
decreases with the enum value among exact entries (mainline only appends to these enums).
"""
import argparse
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # importing gen_rules must not leave __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_rules import ENUMS, enum_items  # noqa: E402

LISTS = {"command": "commands", "map_type": "maps", "prog_type": "programs", "attach_type": "attachments"}
BCC_PREFIX = {"BPF_PROG_TYPE_": "prog_type", "BPF_MAP_TYPE_": "map_type"}
# The last minor release of each finished major series (3.19 was followed by 4.0, 4.20 by 5.0,
# 5.19 by 6.0, 6.19 by 7.0). Used only to name the release that follows another one.
LAST_MINOR = {3: 19, 4: 20, 5: 19, 6: 19}
DELEGATE_OPTIONS = ["delegate_cmds", "delegate_maps", "delegate_progs", "delegate_attachs"]


# ---------------------------------------------------------------- versions

def parse_label(label):
    """'6.4.6' -> ((6, 4), 'stable'); '5.14-rc5' -> ((5, 14), 'rc'); '6.9' or '6.9.0' -> ((6, 9), 'release')."""
    m = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+|x)|-rc(\d+))?", label)
    if not m:
        sys.exit("bad header label %r (want X.Y, X.Y.Z, X.Y.x or X.Y-rcN)" % label)
    rel = (int(m.group(1)), int(m.group(2)))
    if m.group(4):
        kind = "rc"
    elif m.group(3) in (None, "0"):
        kind = "release"
    else:
        kind = "stable"
    return rel, kind


def next_release(rel):
    major, minor = rel
    if minor >= LAST_MINOR.get(major, 10 ** 6):
        return (major + 1, 0)
    return (major, minor + 1)


def prev_release(rel):
    major, minor = rel
    if minor == 0:
        return (major - 1, LAST_MINOR[major - 1])
    return (major, minor - 1)


def vstr(rel):
    return "%d.%d" % rel


def label_key(label):
    rel, kind = parse_label(label)
    m = re.search(r"-rc(\d+)$", label)
    point = re.search(r"^\d+\.\d+\.(\d+)$", label)
    # an -rc comes before its release, which comes before its stable point releases
    return (rel, {"rc": 0, "release": 1, "stable": 2}[kind], int(m.group(1)) if m else int(point.group(1)) if point else 0)


# ---------------------------------------------------------------- sources

def read_source(spec):
    """A file path, or GITDIR@REV:PATH. Returns (text, provenance)."""
    m = re.fullmatch(r"(.+?)@([^:@]+):(.+)", spec)
    if m and os.path.isdir(m.group(1)):
        gitdir, rev, path = m.groups()
        commit = subprocess.run(["git", "--git-dir", gitdir, "rev-parse", rev + "^{commit}"],
                                capture_output=True, text=True, check=True).stdout.strip()
        text = subprocess.run(["git", "--git-dir", gitdir, "show", "%s:%s" % (commit, path)],
                              capture_output=True, text=True, check=True, errors="replace").stdout
        repo = gitdir
        rm = re.search(r"([^/]+)\+([^/]+)/repo(?:/\.git)?/?$", gitdir)  # a mirror laid out as owner+name/repo
        if rm:
            repo = "github.com/%s/%s" % rm.groups()
        return text, "%s %s %s" % (repo, commit[:12], path)
    with open(spec, encoding="utf-8", errors="replace") as f:
        return f.read(), spec


def read_enums_toml(path):
    """{table: [(uapi, name, value, alias_of)]} from rules/kernel/enums.toml."""
    text = open(path, encoding="utf-8").read()
    out = {t: [] for t, _, _ in ENUMS}
    for table, body in re.findall(r"^\[\[(\w+)\]\]\n(.*?)(?=^\[\[|\Z)", text, flags=re.S | re.M):
        if table not in out:
            continue
        f = dict(re.findall(r'^(\w+) = "?([^"\n]*)"?$', body, flags=re.M))
        out[table].append((f["uapi"], f["name"], int(f["value"]), f.get("alias_of")))
    return out


class Header:
    def __init__(self, label, text, origin):
        self.label, self.origin = label, origin
        self.rel, self.kind = parse_label(label)
        self.values = {}      # table -> set of values counted as present
        self.backports = {}   # table -> {value: uapi} present but past a stable gap
        self.names = {}       # table -> {uapi: value}
        for table, enum, _ in ENUMS:
            items = enum_items(text, enum) or []
            vals = sorted({v for _, v, alias in items if not alias})
            self.names[table] = {u: v for u, v, _ in items}
            prefix = 0
            while prefix < len(vals) and vals[prefix] == prefix:
                prefix += 1
            if prefix != len(vals) and self.kind != "stable":
                sys.exit("uapi header %s (%s): enum %s has a gap at value %d; a mainline header should not"
                         % (label, origin, enum, prefix))
            self.values[table] = set(vals[:prefix])
            self.backports[table] = {v: u for u, v, alias in items if not alias and v >= prefix}


def parse_bcc(text):
    """bcc kernel-versions.md: ({(table, uapi): (rel, commit)}, syscall_release or None).

    Program and map types come from the tables' Enum column; commands from the rows of
    "Map userspace API" that name nothing but subcommands (`FREEZE` -> BPF_MAP_FREEZE)."""
    claims, syscall, section = {}, None, ""
    for line in text.splitlines():
        if line.startswith("#"):
            section = line.strip("# ").strip()
            continue
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 3:
            continue
        vm = re.fullmatch(r"(\d+)\.(\d+)", cells[1])
        if not vm:
            continue
        rel = (int(vm.group(1)), int(vm.group(2)))
        commit = re.search(r"`([0-9a-f]{12})`", line)
        commit = commit.group(1) if commit else ""
        if cells[0] == "`bpf()` syscall":
            syscall = (rel, commit)
        if section == "Map userspace API" and re.fullmatch(r"`[A-Z_]+`(, `[A-Z_]+`)*", cells[0]):
            # a row naming only subcommands (`FREEZE`, `UPDATE_BATCH`, ...): BPF_MAP_<name> commands
            for sub in re.findall(r"`([A-Z_]+)`", cells[0]):
                claims[("command", "BPF_MAP_" + sub)] = (rel, commit)
            continue
        enum = cells[-1]
        for prefix, table in BCC_PREFIX.items():
            if re.fullmatch(prefix + r"\w+", enum):
                claims[(table, enum)] = (rel, commit)
    return claims, syscall


# ---------------------------------------------------------------- derivation

def derive(entries, headers, bcc_claims, syscall):
    """entries: {table: [(uapi, name, value, alias_of)]}. Returns [(table, name, dict)] and notes."""
    results, notes = [], []
    for table, _, _ in ENUMS:
        # uapi name -> value over every header, so bcc's names (possibly since renamed) resolve
        name_value = {}
        for h in headers:
            name_value.update(h.names[table])
        for uapi, _, value, alias in entries[table]:
            name_value.setdefault(uapi, value)
        bcc_by_value = {}
        for (t, uapi), claim in bcc_claims.items():
            if t == table and uapi in name_value:
                bcc_by_value[name_value[uapi]] = (uapi, claim)

        for uapi, name, value, alias in entries[table]:
            if alias:
                continue
            lo, lo_h, hi, hi_h = None, None, None, None
            backported_in = []
            for h in headers:
                if value in h.values[table]:
                    if hi is None or h.rel < hi:
                        hi, hi_h = h.rel, h
                else:
                    if value in h.backports[table]:
                        backported_in.append(h.label)
                    bound = h.rel if h.kind == "rc" else next_release(h.rel)
                    if lo is None or bound > lo:
                        lo, lo_h = bound, h
            if syscall and (lo is None or syscall[0] > lo):
                lo, lo_h = syscall[0], None
            if hi is None:
                sys.exit("%s %s (value %d): no header given has it; add a newer uapi header" % (table, uapi, value))
            if lo is not None and lo > hi:
                sys.exit("%s %s: headers contradict: absent up to %s (%s) but present in %s"
                         % (table, uapi, vstr(prev_release(lo)), lo_h.label if lo_h else "bcc", hi_h.label))
            e = {"since": hi, "exact": lo == hi}
            # provenance text
            has = "%s has it" % hi_h.label
            first_name = [u for u, v in hi_h.names[table].items() if v == value and u != uapi]
            renamed = " (as %s)" % first_name[0] if first_name else ""
            if lo is None:
                # nothing older read: only an upper bound
                e["between"] = "..%s" % vstr(hi)
                e["source"] = "uapi bpf.h %s%s; no older header or bpf() syscall release given" % (has, renamed)
                e["value"] = value
                results.append((table, name, e))
                continue
            if lo_h is None:
                lacks = "no bpf() syscall before %s (bcc kernel-versions.md, commit %s)" % (vstr(syscall[0]), syscall[1])
                src = "uapi bpf.h %s%s; %s" % (has, renamed, lacks)
            else:
                src = "uapi bpf.h %s lacks it, %s%s" % (lo_h.label, has, renamed)
            bcc = bcc_by_value.get(value)
            if not e["exact"]:
                between = "%s..%s" % (vstr(prev_release(lo)), vstr(hi))
                if bcc and lo <= bcc[1][0] <= hi:
                    e = {"since": bcc[1][0], "exact": True}
                    src += "; the headers leave %s..%s open; bcc kernel-versions.md: %s in %s (commit %s)" % (
                        vstr(lo), vstr(hi), bcc[0], vstr(bcc[1][0]), bcc[1][1])
                else:
                    e["between"] = between
                    src += "; the headers leave %s..%s open" % (vstr(lo), vstr(hi))
            if bcc and bcc[1][0] != e["since"] and not (not e["exact"] and lo <= bcc[1][0] <= hi):
                src += "; bcc kernel-versions.md says %s, which the headers contradict" % vstr(bcc[1][0])
                notes.append("%s %s: bcc says %s, headers give %s%s" % (
                    LISTS[table], name, vstr(bcc[1][0]), vstr(e["since"]),
                    "" if e["exact"] else " (bracket %s)" % e["between"]))
            if backported_in:
                src += "; also in stable %s as a backport (ignored)" % ", ".join(backported_in)
            e["source"] = src
            e["value"] = value
            results.append((table, name, e))
    # mainline only appends: among exact entries, since must not decrease with the value
    for table, _, _ in ENUMS:
        last = None
        for t, name, e in sorted((r for r in results if r[0] == table), key=lambda r: r[2]["value"]):
            if not e["exact"]:
                continue
            if last and e["since"] < last[1]:
                sys.exit("%s: %s (value %d) since %s is older than %s (value %d) since %s"
                         % (table, name, e["value"], vstr(e["since"]), last[0], last[2], vstr(last[1])))
            last = (name, e["since"], e["value"])
    return results, notes


def derive_bpffs(inodes):
    """[(label, text, origin)] of kernel/bpf/inode.c -> (since, exact, source) of the delegate_* options."""
    lo, lo_l, hi, hi_l = None, None, None, None
    for label, text, _ in inodes:
        rel, kind = parse_label(label)
        opts = set(re.findall(r'fsparam_\w+\s*\(\s*"(delegate_\w+)"', text))
        if set(DELEGATE_OPTIONS) <= opts:
            if hi is None or rel < hi:
                hi, hi_l = rel, label
        else:
            bound = rel if kind == "rc" else next_release(rel)
            if lo is None or bound > lo:
                lo, lo_l = bound, label
    if hi is None:
        sys.exit("no kernel/bpf/inode.c given parses all of %s" % ", ".join(DELEGATE_OPTIONS))
    src = "kernel/bpf/inode.c %s parses them" % hi_l
    if lo_l:
        src = "kernel/bpf/inode.c %s does not, %s parses them" % (lo_l, hi_l)
    return hi, lo == hi, src


# ---------------------------------------------------------------- output

def q(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def render(results, headers, bcc_origin, bpffs, token):
    lines = [
        "# GENERATED by rules/gen/gen_versions.py -- do not edit. Regenerate as rules/gen/README.md says.",
        "#",
        "# For every non-alias entry of enum bpf_cmd / bpf_map_type / bpf_prog_type / bpf_attach_type in",
        "# rules/kernel/enums.toml: `since`, the first Linux release whose uapi include/uapi/linux/bpf.h has",
        "# the entry's value (so a renamed entry keeps its first release). `exact = false` when no header",
        "# between two releases was read: then `since` is the upper bound and `between = \"A..B\"` says",
        "# it is absent in A and present in B. `source` names the evidence.",
        "# Label kinds: X.Y.0 a release, X.Y-rcN a release candidate (its absence proves nothing about X.Y),",
        "# X.Y.Z a stable release (only the values below its first gap count: later ones are backports).",
        "#",
        "# Sources read (label: repository commit path):",
    ]
    for h in sorted(headers, key=lambda h: label_key(h.label)):
        lines.append("#   uapi %s: %s" % (h.label, h.origin))
    if bcc_origin:
        lines.append("#   bcc: %s" % bcc_origin)
    for label, _, origin in bpffs:
        lines.append("#   bpffs %s: %s" % (label, origin))
    lines.append("")
    for table, _, _ in ENUMS:
        lines.append("# %s" % LISTS[table])
        for t, name, e in results:
            if t != table:
                continue
            lines.append("[[version]]")
            lines.append("list = %s" % q(LISTS[table]))
            lines.append("name = %s" % q(name))
            lines.append("since = %s" % q(vstr(e["since"])))
            lines.append("exact = %s" % ("true" if e["exact"] else "false"))
            if "between" in e:
                lines.append("between = %s" % q(e["between"]))
            lines.append("source = %s" % q(e["source"]))
            lines.append("")
    lines.append("# BPF tokens and the bpffs options that delegate to them")
    for fact in token:
        lines.append("[[token]]")
        for k, v in fact.items():
            if isinstance(v, bool):
                lines.append("%s = %s" % (k, "true" if v else "false"))
            elif isinstance(v, list):
                lines.append("%s = [%s]" % (k, ", ".join(q(x) for x in v)))
            else:
                lines.append("%s = %s" % (k, q(v)))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def build(args):
    origins = dict(o.split("=", 1) for o in args.origin)
    headers = []
    for spec in args.header:
        label, src = spec.split("=", 1)
        text, origin = read_source(src)
        headers.append(Header(label, text, origins.get(label, origin)))
    if not headers:
        sys.exit("give at least one --header")
    bcc_claims, syscall, bcc_origin = {}, None, None
    if args.bcc:
        text, bcc_origin = read_source(args.bcc)
        bcc_claims, syscall = parse_bcc(text)
        if not bcc_claims:
            sys.exit("no program or map type rows found in %s" % args.bcc)
    entries = read_enums_toml(args.enums)
    results, notes = derive(entries, headers, bcc_claims, syscall)

    # coverage: one entry per non-alias name of the four enums
    for table, _, _ in ENUMS:
        want = sorted(n for _, n, _, a in entries[table] if not a)
        got = sorted(n for t, n, _ in results if t == table)
        if want != got or not want:
            sys.exit("coverage: %s entries missing for %s" % (LISTS[table], sorted(set(want) - set(got))))

    token = []
    tc = [e for t, n, e in results if t == "command" and n == "token_create"]
    if tc:
        tc = tc[0]
        fact = {"feature": "bpf_token", "since": vstr(tc["since"]), "exact": tc["exact"],
                "source": "uapi BPF_TOKEN_CREATE first in %s's header: %s" % (vstr(tc["since"]), tc["source"])}
        token.append(fact)
        fact = {"feature": "bpffs_delegate_options", "options": DELEGATE_OPTIONS,
                "since": vstr(tc["since"]), "exact": tc["exact"],
                "source": "same release as BPF_TOKEN_CREATE (uapi bpf.h, above)"}
        bpffs = []
        for spec in args.bpffs:
            label, src = spec.split("=", 1)
            text, origin = read_source(src)
            bpffs.append((label, text, origin))
        if bpffs:
            since, exact, src = derive_bpffs(bpffs)
            if since != tc["since"]:
                sys.exit("bpffs delegate options (%s) and BPF_TOKEN_CREATE (%s) disagree" % (vstr(since), vstr(tc["since"])))
            fact.update({"since": vstr(since), "exact": exact and tc["exact"],
                         "source": "%s; BPF_TOKEN_CREATE first in %s's uapi header" % (src, vstr(tc["since"]))})
        token.append(fact)
    else:
        bpffs = []
    return render(results, headers, bcc_origin, bpffs, token), results, notes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["generate", "check"])
    ap.add_argument("--header", action="append", default=[], metavar="LABEL=SRC")
    ap.add_argument("--origin", action="append", default=[], metavar="LABEL=TEXT")
    ap.add_argument("--bcc", metavar="SRC")
    ap.add_argument("--bpffs", action="append", default=[], metavar="LABEL=SRC")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--enums", default=os.path.join(here, "..", "kernel", "enums.toml"))
    ap.add_argument("--out", default=os.path.join(here, "..", "kernel", "versions.toml"))
    args = ap.parse_args()

    text, results, notes = build(args)
    exact = sum(1 for _, _, e in results if e["exact"])
    summary = "%d names: %d exact, %d bracketed" % (len(results), exact, len(results) - exact)
    for n in notes:
        print("note: " + n, file=sys.stderr)
    if args.cmd == "generate":
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
        print("gen_versions: wrote %s (%s)" % (args.out, summary))
        return 0
    with open(args.out, encoding="utf-8") as f:
        if f.read() != text:
            print("gen_versions check: %s differs from what the sources generate" % args.out, file=sys.stderr)
            return 1
    print("gen_versions check: %s agrees with the sources (%s)" % (args.out, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
