//! The functions of an object and the calls between them, and the bound on the work of
//! walking them: the analysis decodes every program with every function it reaches, so a
//! hostile object whose programs share a long chain of functions could cost hours;
//! [`check_work`] measures that walk before it is made (docs/limits.md).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::elf::uapi::{BPF_JMP_CALL, BPF_LD_IMM64, BPF_PSEUDO_CALL};
use crate::model::{Function, Map, Object, Program, RelocTarget};

/// Work the analysis may do for one object: for every program, the instructions of every
/// function it reaches, plus [`FUNCTION_WORK`] per function, [`CALL_SITE_WORK`] per helper or
/// kfunc call, and the bytes of the names the analysis copies for them (function, source
/// file, map and extern names). The analysis decodes each program with everything it
/// reaches, so programs that share code cost that code each; real objects need a few million
/// at most (the kernel loads at most 1M instructions a program). At the limit the analysis
/// takes about half a second and its results take at most this many bytes (release build).
pub const MAX_ANALYSIS_WORK: u64 = 1 << 25;
/// The cost of reaching one function, in instructions (measured: the analysis spends about
/// as long on reaching a function as on 250 of its instructions).
pub const FUNCTION_WORK: u64 = 256;
/// The cost of one helper or kfunc call site, besides the names it copies.
pub const CALL_SITE_WORK: u64 = 64;

/// The functions of an object by (section, byte offset), and the calls between them: the one
/// place that resolves a bpf-to-bpf call or a function address to the function it reaches
/// (the analysis walks programs with it, and [`check_work`] bounds that walk with it).
pub struct Functions<'a> {
    by_start: BTreeMap<(&'a str, u64), &'a Function>,
}

impl<'a> Functions<'a> {
    /// The function at an offset is the first there in the order subprograms, programs.
    pub fn new(programs: &'a [Program], subprograms: &'a [Function]) -> Self {
        let mut by_start = BTreeMap::new();
        for f in subprograms.iter().chain(programs.iter().map(|p| &p.function)) {
            by_start.entry((f.section.as_str(), f.offset)).or_insert(f);
        }
        Functions { by_start }
    }

    /// The function that starts at byte offset `byte_off` of `section`.
    pub fn at(&self, section: &str, byte_off: i64) -> Option<&'a Function> {
        if byte_off < 0 {
            return None;
        }
        self.by_start.get(&(section, byte_off as u64)).copied()
    }

    /// The functions `f` calls or takes the address of, in instruction order.
    pub fn callees(&self, f: &'a Function) -> Vec<&'a Function> {
        let mut out = Vec::new();
        for (i, insn) in f.insns.iter().enumerate() {
            let is_call = insn.code == BPF_JMP_CALL && insn.src == BPF_PSEUDO_CALL;
            let is_ld = insn.code == BPF_LD_IMM64;
            if !is_call && !is_ld {
                continue;
            }
            let target = match f.reloc_at(i) {
                Some(RelocTarget::Function { section, sym_offset, .. }) => {
                    // checked: a hostile symbol value can be anything up to u64::MAX
                    let off = if is_call {
                        (*sym_offset as i64).checked_add((insn.imm as i64 + 1) * 8)
                    } else {
                        (*sym_offset as i64).checked_add(insn.imm as i64)
                    };
                    off.and_then(|off| self.at(section, off))
                }
                None if is_call => self.at(&f.section, f.offset as i64 + (i as i64 + insn.imm as i64 + 1) * 8),
                _ => None,
            };
            out.extend(target);
        }
        out
    }
}

/// Fails, saying why, when analysing the object's programs would take more than
/// [`MAX_ANALYSIS_WORK`]: for every program, each function it reaches (as
/// [`super::programs`] walks them) costs [`function_cost`]. Each function's cost and callees
/// are found once; the walk stops at the limit.
pub fn check_work(object: &Object) -> Result<(), String> {
    let functions = Functions::new(&object.programs, &object.subprograms);
    // per function reached by a call, by where it starts: its cost and its callees' starts
    let mut memo: HashMap<Start, (u64, Vec<Start>)> = HashMap::new();
    fn callee_starts<'a>(functions: &Functions<'a>, f: &'a Function) -> Vec<Start<'a>> {
        let mut callees: Vec<Start> = functions.callees(f).into_iter().map(start).collect();
        callees.sort();
        callees.dedup();
        callees
    }
    let mut work: u64 = 0;
    for p in &object.programs {
        // the program's own function is the root of its walk (another function may start at
        // the same place: the walk starts from this one, as `programs::reachable` does)
        let mut seen = BTreeSet::from([start(&p.function)]);
        work = work.saturating_add(function_cost(&p.function, &object.maps));
        let mut stack = callee_starts(&functions, &p.function);
        loop {
            if work > MAX_ANALYSIS_WORK {
                return Err(format!(
                    "analysing its programs takes more than {MAX_ANALYSIS_WORK} steps (every program with every \
                     function it reaches: their instructions, call sites and names; at program {})",
                    p.name
                ));
            }
            let Some(at) = stack.pop() else { break };
            if !seen.insert(at) {
                continue;
            }
            let (cost, callees) = memo.entry(at).or_insert_with(|| {
                let f = functions.by_start[&at];
                (function_cost(f, &object.maps), callee_starts(&functions, f))
            });
            work = work.saturating_add(*cost);
            stack.extend(callees.iter().copied());
        }
    }
    Ok(())
}

/// Where a function starts: its section and byte offset, which name it in [`Functions`].
type Start<'a> = (&'a str, u64);

fn start(f: &Function) -> Start<'_> {
    (f.section.as_str(), f.offset)
}

/// What analysing `f` costs each program that reaches it, in instructions and bytes: the
/// analysis decodes every instruction, lists the function, and makes a call site (with the
/// function's name and source location) of every helper and kfunc call and a name of every
/// map and extern referenced.
fn function_cost(f: &Function, maps: &[Map]) -> u64 {
    let mut cost = f.insns.len() as u64 + FUNCTION_WORK + f.name.len() as u64;
    for (i, insn) in f.insns.iter().enumerate() {
        if insn.code == BPF_JMP_CALL && insn.src != BPF_PSEUDO_CALL {
            let location = f.line_of(i).map_or(0, |l| l.file.len() as u64);
            cost += CALL_SITE_WORK + f.name.len() as u64 + location;
        }
    }
    for r in &f.relocs {
        cost += match &r.target {
            RelocTarget::Map(m) => maps.get(*m).map_or(0, |m| m.name.len()),
            RelocTarget::Extern(n) => n.len(),
            _ => 0,
        } as u64;
    }
    cost
}
