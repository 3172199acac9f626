//! The verifier's privilege gates a program's instructions show (rules/kernel/verifier.toml):
//! pointer-minus-pointer, a pointer in a 32-bit subtraction or copy, a pointer negated,
//! byte-swapped, copied with sign extension or compared, a register added to a packet or
//! context pointer, and one added to a map-value or stack pointer that holds different
//! constants on different ways, which the verifier allows only with CAP_PERFMON through a token.
//!
//! A forward data flow over a program's own instructions, and over each subprogram it calls,
//! tracks what each register holds: the context pointer (r1 at a program's entry; a
//! subprogram's arguments are not known), the frame pointer (r10), packet pointers loaded from
//! the context fields of the program's type, global data's addresses (map-value pointers),
//! map lookups' results (a map value or NULL; a map value past their NULL check), copies of
//! those, constant offsets from them, and scalars; which map an address is (for the helpers
//! given one); and which stack bytes some way may have written. Where control flow joins, a
//! register keeps what it holds only if every way in agrees (else it is unknown; a register
//! not set on some ways keeps what the others hold: reading it there ends the way); a helper
//! or function call clobbers r0-r5 and may write the stack through its arguments; what is
//! loaded from memory off the stack is unknown, but no stack pointer. A way on which the
//! verifier refuses an instruction whatever the capabilities (two pointers added, a 32-bit
//! addition to a pointer, a register read that nothing set) ends there and counts for
//! nothing. A gate is reported only where every way to the instruction shows it, never on a
//! guess; what is found does not depend on the order in which the ways are walked (every
//! step gives more for more given; a test walks random programs in two orders).

use serde::Serialize;

use crate::model::{Function, Insn, RelocTarget, SharedStr};
use crate::rules::{CtxPacket, Gate, ReadSize, StackRead};

/// Where a program shows a gate.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct GateSite {
    pub gate: Gate,
    /// The instruction, as the verifier prints it (`r2 -= r1`).
    pub insn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<SharedStr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// Anything: not tracked.
    Unknown,
    /// Nothing: a register no instruction has set, or one a call has clobbered (the verifier's
    /// NOT_INIT). Reading it is refused whatever the capabilities ('R%d !read_ok'): the way
    /// ends there, so where ways join, what the others hold is what counts. A call does not
    /// take it for an argument.
    NotInit,
    /// Anything but a pointer into the stack: what is loaded from memory off the stack (the
    /// context, a map's value, the packet: the verifier lets no stack pointer be stored there
    /// and read back as one), a call's result (a function cannot return a stack pointer:
    /// 'cannot return stack pointer to the caller'). In every rule but where the stack is and
    /// what a call may write through its arguments it counts as a register not tracked.
    NotStack,
    /// A number, not known.
    Scalar,
    /// The same number on every way here.
    Const(i64),
    /// A number known on every way here, not the same on all of them.
    Constants,
    Ctx,
    Packet,
    PacketEnd,
    PacketMeta,
    /// The frame pointer plus an offset, when known.
    Stack(Option<i64>),
    /// A pointer into a map's value that is never NULL: global data's address, or a lookup's
    /// result past its NULL check.
    MapValue,
    /// The address of the object's map `m` (an ld_imm64 the loader fills in with the map): which
    /// map a helper is given. In every rule but where the stack is and which map a helper reads
    /// it counts as a register not tracked.
    Map(usize),
    /// A map lookup's result that may be NULL: before its NULL check, or a copy of it (the
    /// flow refines the register the check tests, not its copies). For arithmetic it counts as
    /// a map value (where a compiler does arithmetic on it, it has been checked); compared, it
    /// counts for the allowed side (it may be NULL, a number to the verifier).
    Lookup,
}

impl Holds {
    /// Pointers (a lookup's result included: the NULL check leaves it a pointer on one way and
    /// a number 0 on the other, and what follows on the pointer's way is what counts).
    fn pointer(self) -> bool {
        matches!(
            self,
            Holds::Ctx
                | Holds::Packet
                | Holds::PacketEnd
                | Holds::PacketMeta
                | Holds::Stack(_)
                | Holds::MapValue
                | Holds::Lookup
        )
    }

    /// The packet's start, end or metadata.
    fn packet(self) -> bool {
        matches!(self, Holds::Packet | Holds::PacketEnd | Holds::PacketMeta)
    }

    fn scalar(self) -> bool {
        matches!(self, Holds::Scalar | Holds::Const(_) | Holds::Constants)
    }

    /// Not tracked: anything, for the rules (anything but a stack pointer counts alike, but
    /// where the stack is).
    fn untracked(self) -> bool {
        matches!(self, Holds::Unknown | Holds::NotStack)
    }

    /// Pointers that bypass_spec_v1 guards against any register offset.
    fn guarded(self) -> bool {
        matches!(self, Holds::Ctx | Holds::Packet | Holds::PacketMeta)
    }

    /// Pointers whose register offsets the verifier masks with a limit taken from the
    /// offset (sanitize_ptr_alu): the limits of all ways must agree.
    fn masked(self) -> bool {
        matches!(self, Holds::Stack(_) | Holds::MapValue | Holds::Lookup)
    }

    /// What two ways in agree on.
    fn meet(self, other: Holds) -> Holds {
        match (self, other) {
            (a, b) if a == b => a,
            // (a register set on some ways only: where it is not, reading it ends the way)
            (Holds::NotInit, x) | (x, Holds::NotInit) => x,
            (Holds::Const(_) | Holds::Constants, Holds::Const(_) | Holds::Constants) => Holds::Constants,
            (a, b) if a.scalar() && b.scalar() => Holds::Scalar,
            (Holds::Stack(_), Holds::Stack(_)) => Holds::Stack(None),
            // (global data on one way, a lookup's result on another: a map value or NULL)
            (Holds::MapValue | Holds::Lookup, Holds::MapValue | Holds::Lookup) => Holds::Lookup,
            _ => Holds::Unknown,
        }
    }
}

const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06;
const CLASS_ALU64: u8 = 0x07;
const SRC_X: u8 = 0x08;
const OP_ADD: u8 = 0x00;
const OP_SUB: u8 = 0x10;
const OP_DIV: u8 = 0x30;
const OP_NEG: u8 = 0x80;
const OP_MOD: u8 = 0x90;
const OP_MOV: u8 = 0xb0;
const OP_END: u8 = 0xd0;
const JMP_JA: u8 = 0x00;
const JMP_JEQ: u8 = 0x10;
const JMP_JGT: u8 = 0x20;
const JMP_JGE: u8 = 0x30;
const JMP_JNE: u8 = 0x50;
const JMP_CALL: u8 = 0x80;
const JMP_EXIT: u8 = 0x90;
const JMP_JLT: u8 = 0xa0;
const JMP_JLE: u8 = 0xb0;
/// may_goto (BPF_JCOND): a jump that compares nothing.
const JMP_JCOND: u8 = 0xe0;
/// Past the last jump opcode: invalid.
const JMP_INVALID: u8 = 0xf0;
const MODE_MEM: u8 = 0x60;
const MODE_ATOMIC: u8 = 0xc0;
const SIZE_W: u8 = 0x00;
const SIZE_DW: u8 = 0x18;
const LD_IMM64: u8 = 0x18;
/// ld_imm64 of a map value's address (BPF_PSEUDO_MAP_VALUE: global data).
const PSEUDO_MAP_VALUE: u8 = 2;
/// The helper whose result is a map value (or NULL).
const FUNC_MAP_LOOKUP_ELEM: i32 = 1;

/// What every register, and every 8-byte stack slot a register was stored to, holds before an
/// instruction, and which bytes of the stack may have been written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    regs: [Holds; 11],
    /// (offset from the frame pointer, what was stored there), sorted by offset.
    slots: Vec<(i64, Holds)>,
    written: Written,
}

/// The stack bytes some way may have written: bit k is the byte at offset -(k + 1) from the
/// frame pointer (the verifier's 512 bytes). A byte not set has been written on no way here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Written([u64; 8]);

impl Written {
    const NONE: Written = Written([0; 8]);
    const ALL: Written = Written([u64::MAX; 8]);

    /// The bit of the byte at `off` from the frame pointer (None: off the stack).
    fn bit(off: i64) -> Option<usize> {
        usize::try_from(-off - 1).ok().filter(|k| *k < 512)
    }

    /// The `size` bytes at `at` written (those on the stack).
    fn mark(&mut self, at: i64, size: i64) {
        for k in (at..at + size).filter_map(Written::bit) {
            self.0[k / 64] |= 1 << (k % 64);
        }
    }

    /// Whether all `size` bytes at `at` are on the stack and one of them has been written on no
    /// way.
    fn lacks_any(&self, at: i64, size: i64) -> bool {
        let on_stack = Written::bit(at).is_some() && Written::bit(at + size - 1).is_some();
        on_stack && (at..at + size).filter_map(Written::bit).any(|k| self.0[k / 64] & (1 << (k % 64)) == 0)
    }
}

impl State {
    /// What nothing is known of: every register not known, every stack byte maybe written.
    fn unknown() -> State {
        State { regs: [Holds::Unknown; 11], slots: Vec::new(), written: Written::ALL }
    }

    /// Meets `other` into this state (a slot stays only where both hold something known in
    /// it; a byte written on either way may have been written); whether this state changed.
    fn meet_from(&mut self, other: &State) -> bool {
        let mut changed = false;
        for (r, o) in self.regs.iter_mut().zip(&other.regs) {
            let met = r.meet(*o);
            changed |= met != *r;
            *r = met;
        }
        self.slots.retain_mut(|(off, h)| {
            let met = slot(&other.slots, *off).map_or(Holds::Unknown, |o| h.meet(o));
            changed |= met != *h;
            *h = met;
            !met.untracked()
        });
        for (w, o) in self.written.0.iter_mut().zip(other.written.0) {
            changed |= *w | o != *w;
            *w |= o;
        }
        changed
    }

    /// A store of `size` bytes at `at` (None: somewhere on the stack, or not known to be off it).
    fn store(&mut self, at: Option<i64>, size: i64, what: Holds) {
        match at {
            None => {
                self.slots.clear();
                self.written = Written::ALL;
            }
            Some(at) => {
                self.slots.retain(|(o, _)| *o + 8 <= at || *o >= at + size);
                if size == 8 && !what.untracked() {
                    let i = self.slots.partition_point(|(o, _)| *o < at);
                    self.slots.insert(i, (at, what));
                }
                // (a store at the start of an 8-byte slot is a spill, of a number or a register:
                // the verifier then lets a helper read the whole slot, what the store left
                // unwritten too: kernel/bpf/verifier.c check_stack_write_fixed_off,
                // save_register_state, check_stack_range_initialized's is_spilled_reg. A load
                // it checks byte by byte: taken alike, a gate missed, none invented)
                self.written.mark(at, if at % 8 == 0 { size.max(8) } else { size });
            }
        }
    }
}

/// What the slot at `off` holds, if one was stored there.
fn slot(slots: &[(i64, Holds)], off: i64) -> Option<Holds> {
    slots.binary_search_by_key(&off, |(o, _)| *o).ok().map(|i| slots[i].1)
}

/// What the walk knows besides a function's instructions: the object's maps, by index, and the
/// helper arguments the rules say the verifier reads as buffers (rules/kernel/verifier.toml
/// `stack_read`).
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    pub maps: &'a [MapShape],
    pub reads: &'a [StackRead],
    /// By helper id: how many arguments it takes (rules/kernel/enums.toml `args`; every
    /// argument register where not known).
    pub helper_args: &'a [u8],
}

impl Known<'_> {
    /// No maps, no helper buffers, no helper's arguments known.
    pub const NONE: Known<'static> = Known { maps: &[], reads: &[], helper_args: &[] };
}

/// What the walk needs of one of the object's maps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapShape {
    /// Global data: an ld_imm64 of its address loads a pointer into the map's value (the
    /// loader fills in the address: BPF_PSEUDO_MAP_VALUE); of any other map, the map.
    pub global_data: bool,
    pub key_size: u32,
    pub value_size: u32,
}

/// The gates `f`, the main function of a program whose context has the packet fields `ctx`
/// (None: the program type has no packet pointers), shows.
pub fn gates(f: &Function, ctx: Option<&CtxPacket>, known: Known) -> Vec<GateSite> {
    gates_in_order(f, Entry::Main(ctx), known, Order::LastFirst)
}

/// The gates a subprogram `f` shows whatever its arguments hold (its frame pointer, global
/// data, map lookups; what it is passed is not known).
pub fn subprogram_gates(f: &Function, known: Known) -> Vec<GateSite> {
    let entry = if f.global { Entry::Global } else { Entry::Static };
    gates_in_order(f, entry, known, Order::LastFirst)
}

/// The function walked, and what its registers hold at its entry.
#[derive(Debug, Clone, Copy)]
enum Entry<'a> {
    /// A program's main function: r1 is the context, whose packet fields are `ctx`.
    Main(Option<&'a CtxPacket>),
    /// A global subprogram: the verifier walks it once, on its own, its arguments not known.
    Global,
    /// A static subprogram: the verifier walks it with each caller's registers, and a
    /// constant argument leaves one way only where the function branches on it (libbpf-tools'
    /// filetop passes READ or WRITE to probe_entry).
    Static,
}

impl Entry<'_> {
    /// Whether gate `g` found in the function holds: in a static subprogram not a register
    /// that holds different constants on different ways (with a caller's constant argument
    /// there may be one way only). A gate on one side of a branch on an argument counts for
    /// every caller, as one on a branch on a global constant does in a program: the object's
    /// programs are loaded together, and one of them takes that side.
    fn reports(self, g: Gate) -> bool {
        match self {
            Entry::Main(_) | Entry::Global => true,
            Entry::Static => g != Gate::PointerPlusDifferingConstants,
        }
    }
}

/// What the walk reads besides the state it carries.
struct Code<'a> {
    f: &'a Function,
    ctx: Option<&'a CtxPacket>,
    known: Known<'a>,
}

impl Code<'_> {
    /// What the ld_imm64 at `i` loads, when a relocation names it (the loader fills in the
    /// address): a global-data address is a map-value pointer, another map's the map; a
    /// function, an extern is not tracked.
    fn relocated(&self, i: usize) -> Option<Holds> {
        self.f.reloc_at(i).map(|target| match target {
            RelocTarget::Map(m) => match self.known.maps.get(*m) {
                Some(shape) if shape.global_data => Holds::MapValue,
                Some(_) => Holds::Map(*m),
                None => Holds::Unknown,
            },
            _ => Holds::Unknown,
        })
    }

    /// The rules of the buffers helper call `ins` reads (none for any other call).
    fn reads(&self, ins: Insn) -> impl Iterator<Item = &StackRead> {
        let helper = (ins.src == 0).then_some(ins.imm);
        self.known.reads.iter().filter(move |r| Some(r.helper_id as i32) == helper)
    }

    /// The argument registers call `ins` is given: a helper's, as many as it takes; any other
    /// function's (a subprogram, a kfunc), r1-r5.
    fn arguments(&self, ins: Insn) -> std::ops::RangeInclusive<usize> {
        let helper = usize::try_from(ins.imm).ok().filter(|_| ins.src == 0);
        let n = helper.and_then(|h| self.known.helper_args.get(h)).copied().unwrap_or(5);
        1..=usize::from(n.min(5))
    }

    /// Whether instruction `ins` may read stack bytes nothing has written: a load, or a call
    /// of a helper that reads a buffer.
    fn may_read_stack(&self, ins: Insn) -> bool {
        (ins.code & 0x07 == CLASS_LDX && ins.code & 0xe0 == MODE_MEM)
            || (ins.code == CLASS_JMP | JMP_CALL && self.reads(ins).next().is_some())
    }
}

/// Which block waiting to be walked (again) is walked next: the answer must not depend on it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Order {
    LastFirst,
    #[cfg(test)]
    FirstFirst,
}

fn gates_in_order(f: &Function, entry: Entry, known: Known, order: Order) -> Vec<GateSite> {
    let insns = &f.insns;
    let ctx = match entry {
        Entry::Main(ctx) => ctx,
        Entry::Global | Entry::Static => None,
    };
    let code = Code { f, ctx, known };
    // A function without an instruction where a gate can be shows none, whatever its
    // registers hold.
    if !insns.iter().any(|ins| may_gate(*ins) || code.may_read_stack(*ins)) {
        return Vec::new();
    }
    let blocks = Blocks::of(insns);
    // (a program's main function is given its context in r1; a subprogram, what its caller
    // passes in r1-r5; a function's own stack holds nothing written yet)
    let mut start = State { regs: [Holds::NotInit; 11], slots: Vec::new(), written: Written::NONE };
    match entry {
        Entry::Main(_) => start.regs[1] = Holds::Ctx,
        Entry::Global | Entry::Static => start.regs[1..=5].fill(Holds::Unknown),
    }
    start.regs[10] = Holds::Stack(Some(0));
    // What each block sees on entry, met over every way in, until nothing changes (what a
    // register or slot holds only ever moves up: a constant, constants, a scalar, unknown).
    // Within a block every instruction has one way in, the one before it.
    let mut before: Vec<Option<State>> = vec![None; blocks.starts.len()];
    before[0] = Some(start);
    // (a block waits at most once: a change while it waits is seen when it is walked)
    let mut work = std::collections::VecDeque::from([0usize]);
    let mut waiting = vec![false; blocks.starts.len()];
    waiting[0] = true;
    while let Some(b) = if order == Order::LastFirst { work.pop_back() } else { work.pop_front() } {
        waiting[b] = false;
        let Some(mut state) = before[b].clone() else { continue };
        let Some(last) = blocks.run(b, insns, |i| step(&code, i, &mut state) != Step::Refused) else {
            continue; // the way ends in the block
        };
        for next in successors(insns, last) {
            let nb = blocks.starting_at(next);
            let refined = refined_on_the_way(&state, insns, last, next);
            let leaving = refined.as_ref().unwrap_or(&state);
            let changed = match &mut before[nb] {
                Some(old) => old.meet_from(leaving),
                None => {
                    before[nb] = Some(leaving.clone());
                    true
                }
            };
            if changed && !waiting[nb] {
                waiting[nb] = true;
                work.push_back(nb);
            }
        }
    }
    let mut out = Vec::new();
    for (b, state) in before.into_iter().enumerate() {
        let Some(mut state) = state else { continue };
        blocks.run(b, insns, |i| match step(&code, i, &mut state) {
            Step::On(gate) => {
                out.extend(gate.filter(|g| entry.reports(*g)).map(|g| site(&code, i, g)));
                true
            }
            Step::Refused => false,
        });
    }
    out.sort();
    out.dedup();
    out
}

/// What a comparison for equality with what may be 0 (`if r0 == 0x0`, `if w0 == w1`) leaves on
/// the way from instruction `last` to `next`; None: the way tells nothing.
/// - Where they are equal and the register tested may hold a lookup's result, that result is
///   NULL, the number 0, in every register and slot that holds it (kernel/bpf/verifier.c
///   mark_ptr_or_null_regs, by the result's id). The flow does not follow ids: every lookup's
///   result there is taken for not known (a copy compared again on that way is no gate).
///   A global's address (never NULL) tested is walked there by the verifier only
///   speculatively, as a number it does not know (is_branch_taken, sanitize_speculative_path):
///   not known either.
/// - Where they differ, after a lookup's NULL check proper (`if r0 == 0x0`, `if r0 != 0x0`: 64
///   bits, against the immediate 0, which check_cond_jmp_op takes as one on every kernel), the
///   register tested is a map value that is never NULL, as a global's address is (its copies
///   are not refined).
///
/// Each refinement gives more for more given (a register not known tested forgets the lookups'
/// results as one that holds one does; a map value stays one), so the walk's order cannot
/// matter.
fn refined_on_the_way(state: &State, insns: &[Insn], last: usize, next: usize) -> Option<State> {
    let ins = insns[last];
    let op = ins.code & 0xf0;
    if !compares(ins) || !matches!(op, JMP_JEQ | JMP_JNE) || ins.off == 0 {
        return None;
    }
    let (dst, jmp32) = (usize::from(ins.dst), ins.code & 0x07 == CLASS_JMP32);
    let other = if ins.code & SRC_X != 0 {
        state.regs.get(usize::from(ins.src)).copied().unwrap_or(Holds::Unknown)
    } else {
        Holds::Const(i64::from(ins.imm))
    };
    let tested = *state.regs.get(dst)?;
    if !may_be_zero(other, jmp32) {
        return None;
    }
    let taken = i64::try_from(next).ok() == Some(last as i64 + 1 + i64::from(ins.off));
    let equal = taken == (op == JMP_JEQ);
    // (a register not tracked tested where no lookup's result is held: nothing to forget)
    let lookups = state.regs.contains(&Holds::Lookup) || state.slots.iter().any(|(_, h)| *h == Holds::Lookup);
    if tested.untracked() && !lookups {
        return None;
    }
    let mut out = state.clone();
    match tested {
        Holds::MapValue if equal => out.regs[dst] = Holds::Unknown,
        Holds::Lookup | Holds::Unknown | Holds::NotStack if equal => {
            for r in out.regs.iter_mut().filter(|r| **r == Holds::Lookup) {
                *r = Holds::Unknown;
            }
            out.slots.retain(|(_, h)| *h != Holds::Lookup);
            out.regs[dst] = Holds::Unknown;
        }
        Holds::Lookup if !jmp32 && ins.code & SRC_X == 0 && ins.imm == 0 => out.regs[dst] = Holds::MapValue,
        _ => return None,
    }
    Some(out)
}

/// Whether a gate can be at `ins`: a register added or subtracted (64- or 32-bit), a 32-bit
/// subtraction of a number, a 32-bit or sign-extending copy of a register, a negation or byte
/// swap, a comparison.
fn may_gate(ins: Insn) -> bool {
    let (class, op, x) = (ins.code & 0x07, ins.code & 0xf0, ins.code & SRC_X != 0);
    match class {
        CLASS_ALU64 => (x && matches!(op, OP_ADD | OP_SUB)) || sign_extends(ins) || matches!(op, OP_NEG | OP_END),
        CLASS_ALU => op == OP_SUB || (x && op == OP_MOV) || matches!(op, OP_NEG | OP_END),
        CLASS_JMP | CLASS_JMP32 => compares(ins),
        _ => false,
    }
}

/// Whether `ins` is a conditional jump: a comparison of its destination register with its
/// source register or immediate.
fn compares(ins: Insn) -> bool {
    matches!(ins.code & 0x07, CLASS_JMP | CLASS_JMP32)
        && !matches!(ins.code & 0xf0, JMP_JA | JMP_CALL | JMP_EXIT | JMP_JCOND | JMP_INVALID)
}

/// Whether the verifier refuses comparison `ins` of `d` with `s` without allow_ptr_leaks, for
/// certain ('R%d pointer comparison prohibited', kernel/bpf/verifier.c check_cond_jmp_op):
/// - a pointer in the source register, unless both are packet pointers;
/// - a pointer in the destination, unless the verifier decides the jump itself (a pointer
///   that cannot be NULL, a map value's, against 0 for equality: is_branch_taken,
///   reg_not_null; stack, context and packet pointers are not among them), or the jump is a
///   lookup's NULL check, or it orders two packet pointers in 64 bits, the packet's start
///   against its end or its metadata (try_match_pkt_pointers).
///
/// A register not tracked counts for the allowed side (it may be a packet pointer, or 0), and
/// so does a lookup's result the flow has not seen checked (it may be NULL, a number); past
/// its NULL check the register tested is a map value.
fn pointer_compared(ins: Insn, d: Holds, s: Holds) -> bool {
    let (op, x, jmp32) = (ins.code & 0xf0, ins.code & SRC_X != 0, ins.code & 0x07 == CLASS_JMP32);
    // two packet pointers (or a register that may be one) ordered in 64 bits: allowed for the
    // start against the end or the metadata
    let ordered = !jmp32 && x && matches!(op, JMP_JGT | JMP_JLT | JMP_JGE | JMP_JLE);
    let packets_ordered = ordered
        && match (d, s) {
            (d, s) if d.untracked() => s.packet(),
            (d, s) if s.untracked() => d.packet(),
            (Holds::Packet, t) | (t, Holds::Packet) => matches!(t, Holds::PacketEnd | Holds::PacketMeta),
            _ => false,
        };
    if packets_ordered {
        return false;
    }
    // (two packet pointers pass the source's check, and are refused below in any other
    // comparison: try_match_pkt_pointers takes those ordered in 64 bits only)
    if x && s.pointer() && s != Holds::Lookup {
        return true;
    }
    match d {
        Holds::Stack(_) | Holds::Ctx | Holds::Packet | Holds::PacketEnd | Holds::PacketMeta => true,
        Holds::MapValue => !(matches!(op, JMP_JEQ | JMP_JNE) && may_be_zero(s, jmp32)),
        _ => false,
    }
}

/// Whether `h` may be 0 in a comparison of `jmp32` width (32 bits: its lower half): a number
/// not known, a lookup's result (NULL); not a pointer that is never NULL.
fn may_be_zero(h: Holds, jmp32: bool) -> bool {
    match h {
        Holds::Const(c) if jmp32 => c as u32 == 0,
        Holds::Const(c) => c == 0,
        Holds::Unknown | Holds::NotStack | Holds::Scalar | Holds::Constants | Holds::Lookup => true,
        _ => false,
    }
}

/// Whether the verifier refuses `ins` whatever the capabilities, among the instructions whose
/// gates bpfcap derives (the way ends there): a write to the frame pointer ('frame pointer is
/// read only'), an arithmetic instruction, negation, byte swap, copy or comparison with
/// reserved fields set ('... uses reserved fields'), an opcode past the last one
/// (kernel/bpf/verifier.c check_alu_op, check_cond_jmp_op).
fn refused(ins: Insn) -> bool {
    let (class, op, x) = (ins.code & 0x07, ins.code & 0xf0, ins.code & SRC_X != 0);
    if ins.dst == 10 && (matches!(class, CLASS_ALU | CLASS_ALU64 | CLASS_LDX) || ins.code == LD_IMM64) {
        return true;
    }
    match class {
        CLASS_ALU | CLASS_ALU64 => match op {
            OP_NEG => x || ins.src != 0 || ins.off != 0 || ins.imm != 0,
            // (a 64-bit byte swap has no big-endian form: `bswap`)
            OP_END => ins.src != 0 || ins.off != 0 || !matches!(ins.imm, 16 | 32 | 64) || (class == CLASS_ALU64 && x),
            // (an address-space cast, offset 1 of a 64-bit copy, has its own checks)
            OP_MOV if x && !(class == CLASS_ALU64 && ins.off == 1) => {
                let offsets: &[i16] = if class == CLASS_ALU64 { &[0, 8, 16, 32] } else { &[0, 8, 16] };
                ins.imm != 0 || !offsets.contains(&ins.off)
            }
            OP_MOV if x => false,
            OP_MOV => ins.src != 0 || ins.off != 0,
            _ if op > OP_END => true,
            // (offset 1: the signed division and modulo; a negative offset is refused from
            // Linux 6.18 only, 55c0ced59fe1, and passes on 6.9-6.17)
            _ => {
                let off_refused = ins.off > 1 || (ins.off == 1 && !matches!(op, OP_DIV | OP_MOD));
                off_refused || if x { ins.imm != 0 } else { ins.src != 0 }
            }
        },
        CLASS_JMP | CLASS_JMP32 if op == JMP_INVALID => true,
        _ if compares(ins) => {
            if x {
                ins.imm != 0
            } else {
                ins.src != 0
            }
        }
        _ => false,
    }
}

/// Whether `ins` is a sign-extending 64-bit copy of a register (`r1 = (s32)r2`; the other
/// offsets of a 64-bit register copy are not: 1 is an address-space cast).
fn sign_extends(ins: Insn) -> bool {
    ins.code == CLASS_ALU64 | OP_MOV | SRC_X && matches!(ins.off, 8 | 16 | 32)
}

/// A function's instructions cut into blocks: runs that control enters at the first
/// instruction only and leaves after the last one only.
struct Blocks {
    /// The first instruction of each block, ascending (the first is 0).
    starts: Vec<usize>,
    /// Per instruction: whether a block starts there.
    is_start: Vec<bool>,
}

impl Blocks {
    /// A block starts at the first instruction, wherever control can come from two
    /// instructions (or from one that can also go elsewhere), and after an instruction whose
    /// way out is not simply the next one.
    fn of(insns: &[Insn]) -> Blocks {
        let mut ways_in = vec![0u32; insns.len()];
        let mut is_start = vec![false; insns.len()];
        is_start[0] = true;
        for i in 0..insns.len() {
            let branches = successors(insns, i).count() > 1;
            for n in successors(insns, i) {
                ways_in[n] += 1;
                is_start[n] |= branches;
            }
        }
        for (i, ways) in ways_in.iter().enumerate() {
            if *ways > 1 {
                is_start[i] = true;
            }
        }
        let starts = (0..insns.len()).filter(|i| is_start[*i]).collect();
        Blocks { starts, is_start }
    }

    /// The block that starts at instruction `i` (one does: every way out of a block leads to
    /// the start of one).
    fn starting_at(&self, i: usize) -> usize {
        self.starts.binary_search(&i).expect("a way out of a block leads to a block's start")
    }

    /// Calls `each` with the instructions of block `b` of `insns` in the order control takes
    /// them (an `ld_imm64`'s second half and a `goto`'s gap are passed over), until `each`
    /// says control stops there; returns the last, unless control stopped.
    fn run(&self, b: usize, insns: &[Insn], mut each: impl FnMut(usize) -> bool) -> Option<usize> {
        let mut i = self.starts[b];
        loop {
            if !each(i) {
                return None;
            }
            let mut next = successors(insns, i);
            match (next.next(), next.next()) {
                (Some(n), None) if !self.is_start[n] => i = n,
                _ => return Some(i),
            }
        }
    }
}

/// The instructions control may go to after `i`.
fn successors(insns: &[Insn], i: usize) -> impl Iterator<Item = usize> {
    let ins = insns[i];
    let class = ins.code & 0x07;
    let target = |off: i64| usize::try_from(i as i64 + 1 + off).ok().filter(|t| *t < insns.len());
    let next = (i + 1 < insns.len()).then_some(i + 1);
    let (a, b) = match class {
        CLASS_LD if ins.code == LD_IMM64 => ((i + 2 < insns.len()).then_some(i + 2), None),
        CLASS_JMP | CLASS_JMP32 => match ins.code & 0xf0 {
            JMP_EXIT => (None, None),
            JMP_CALL => (next, None),
            // (the 32-bit `gotol` takes its offset from imm)
            JMP_JA if class == CLASS_JMP32 => (target(i64::from(ins.imm)), None),
            JMP_JA => (target(i64::from(ins.off)), None),
            _ => (next, target(i64::from(ins.off))),
        },
        _ => (next, None),
    };
    a.into_iter().chain(b)
}

/// Bytes a load or store of size field `size` moves.
fn bytes(size: u8) -> i64 {
    match size {
        SIZE_W => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

/// What an instruction does on one way through it.
#[derive(Debug, PartialEq)]
enum Step {
    /// Control goes on, past the gate the instruction meets, if any.
    On(Option<Gate>),
    /// The verifier refuses the instruction on this way whatever the capabilities: nothing
    /// follows from it.
    Refused,
}

/// What instruction `i` does to the state `st` (left as it is when the way ends there).
fn step(code: &Code, i: usize, st: &mut State) -> Step {
    let (insns, ctx) = (&code.f.insns[..], code.ctx);
    let ins = insns[i];
    let (dst, src) = (usize::from(ins.dst), usize::from(ins.src));
    if dst > 10 || src > 10 {
        *st = State::unknown();
        return Step::On(None);
    }
    if refused(ins) || reads(ins).iter().flatten().any(|r| st.regs[*r] == Holds::NotInit) {
        return Step::Refused;
    }
    // where a memory access through `base` lands on the stack (None: not known to be off it)
    let stack_at = |base: Holds| -> Option<Option<i64>> {
        match base {
            Holds::Stack(o) => Some(o.map(|o| o + i64::from(ins.off))),
            Holds::Unknown => Some(None),
            _ => None, // not the stack
        }
    };
    let regs = &mut st.regs;
    let mut gate = None;
    match ins.code & 0x07 {
        CLASS_LD if ins.code == LD_IMM64 => {
            let high = insns.get(i + 1).map_or(0, |n| n.imm);
            regs[dst] = match (code.relocated(i), ins.src) {
                (Some(holds), _) => holds,
                (None, 0) => Holds::Const((i64::from(high) << 32) | i64::from(ins.imm as u32)),
                (None, PSEUDO_MAP_VALUE) => Holds::MapValue,
                (None, _) => Holds::Unknown,
            };
        }
        // (LD_ABS, LD_IND: a call, to the verifier, that clobbers r1-r5)
        CLASS_LD => {
            regs[0] = Holds::NotStack;
            regs[1..=5].fill(Holds::NotInit);
        }
        CLASS_LDX if ins.code & 0xe0 == MODE_MEM => {
            let size = ins.code & 0x18;
            // (bytes no way has written: 'invalid read from stack off %d+%d size %d')
            if let Holds::Stack(Some(o)) = regs[src]
                && st.written.lacks_any(o + i64::from(ins.off), bytes(size))
            {
                gate = Some(Gate::UninitializedStackRead);
            }
            regs[dst] = match (regs[src], ctx) {
                (Holds::Ctx, Some(c)) => packet_field(c, ins.off, size),
                (Holds::Stack(Some(o)), _) if size == SIZE_DW => {
                    slot(&st.slots, o + i64::from(ins.off)).unwrap_or(Holds::Unknown)
                }
                // (memory off the stack holds no stack pointer)
                (base, _) if stack_at(base).is_none() => Holds::NotStack,
                _ => Holds::Unknown,
            };
        }
        CLASS_LDX => regs[dst] = Holds::Unknown,
        CLASS_ST | CLASS_STX => {
            let size = bytes(ins.code & 0x18);
            let atomic = ins.code & 0xe0 == MODE_ATOMIC;
            let what = match (ins.code & 0x07, atomic) {
                (CLASS_ST, _) => Holds::Const(i64::from(ins.imm)),
                (_, false) => regs[src],
                (_, true) => Holds::Unknown,
            };
            if atomic {
                // a fetching atomic writes its source register (cmpxchg: r0)
                regs[src] = Holds::Unknown;
                regs[0] = Holds::Unknown;
            }
            if let Some(at) = stack_at(regs[dst]) {
                st.store(at, size, what);
            }
        }
        CLASS_ALU64 => {
            let op = ins.code & 0xf0;
            let x = ins.code & SRC_X != 0;
            let (d, s) = (regs[dst], if x { regs[src] } else { Holds::Const(i64::from(ins.imm)) });
            regs[dst] = match op {
                // (a number with allow_ptr_leaks; 'R%d pointer arithmetic prohibited' without)
                OP_NEG | OP_END if d.pointer() => {
                    gate = Some(Gate::PointerNegatedOrSwapped);
                    Holds::Scalar
                }
                OP_MOV if x && ins.off == 0 => s,
                OP_MOV if !x => s,
                // (a number with allow_ptr_leaks; 'R%d sign-extension part of pointer' without)
                OP_MOV if sign_extends(ins) && s.pointer() => {
                    gate = Some(Gate::PointerSignExtended);
                    Holds::Scalar
                }
                // (an address-space cast: an arena pointer, or a number)
                OP_MOV if x && ins.off == 1 => Holds::Unknown,
                OP_MOV => Holds::Scalar,
                // 'pointer += pointer prohibited', whatever the capabilities: this way ends here
                OP_ADD if d.pointer() && s.pointer() => return Step::Refused,
                OP_SUB if d.pointer() && s.pointer() => {
                    gate = Some(Gate::PointerMinusPointer);
                    Holds::Scalar
                }
                // 'subtraction from stack pointer prohibited', whatever the capabilities
                // (adjust_ptr_min_max_vals; compilers add a negative number instead)
                OP_SUB if matches!(d, Holds::Stack(_)) && (!x || s.scalar()) => return Step::Refused,
                // (a register not known to be a scalar: added, were it a pointer, this way would
                // end; subtracted, see below)
                OP_ADD | OP_SUB if x && d.guarded() => {
                    gate = Some(Gate::PacketPointerPlusRegister);
                    d
                }
                OP_ADD if x && s.guarded() && !d.pointer() => {
                    gate = Some(Gate::PacketPointerPlusRegister);
                    s
                }
                // (with bypass_spec_v1 the verifier goes on with a pointer, as for any number
                // added: what a number not known gives, so that more knowledge never gives more)
                OP_ADD | OP_SUB if x && d.masked() && s == Holds::Constants => {
                    gate = Some(Gate::PointerPlusDifferingConstants);
                    match d {
                        Holds::Stack(_) => Holds::Stack(None),
                        d => d,
                    }
                }
                OP_ADD | OP_SUB => match (d, s) {
                    (Holds::Stack(Some(o)), Holds::Const(v)) => {
                        Holds::Stack(Some(if op == OP_ADD { o + v } else { o - v }))
                    }
                    (Holds::Stack(_), _) => Holds::Stack(None),
                    (Holds::Const(a), Holds::Const(b)) => {
                        Holds::Const(if op == OP_ADD { a.wrapping_add(b) } else { a.wrapping_sub(b) })
                    }
                    (d, _) if d.pointer() => d,
                    (d, s) if d.scalar() && s.scalar() => Holds::Scalar,
                    _ => Holds::Unknown,
                },
                // any other operation on a pointer is refused whatever the capabilities
                // ('bitwise operator %s on pointer prohibited', 'pointer arithmetic with %s
                // operator prohibited'): the way ends
                _ if d.pointer() || (x && s.pointer()) => return Step::Refused,
                _ => Holds::Scalar,
            };
            // A register not known to be a scalar subtracted from a pointer leaves a pointer if
            // it is a scalar and a scalar if it is a pointer: what the result holds is not known.
            // (Taking either would make what an instruction gives depend on the order its
            // ways are met in.)
            if op == OP_SUB && x && d.pointer() && s.untracked() {
                regs[dst] = Holds::Unknown;
            }
        }
        CLASS_ALU => {
            // 32-bit: what a pointer becomes is a number (with allow_ptr_leaks), if anything
            let op = ins.code & 0xf0;
            let x = ins.code & SRC_X != 0;
            let (d, s) = (regs[dst], if x { regs[src] } else { Holds::Const(i64::from(ins.imm)) });
            let (dp, sp) = (d.pointer(), s.pointer());
            match op {
                OP_MOV if sp => gate = Some(Gate::PointerTruncated),
                OP_MOV => {}
                // (two pointers combined are checked before the operation's width: `w2 -= w1`
                // on packet pointers is the same gate as `r2 -= r1`)
                OP_SUB if dp && sp => gate = Some(Gate::PointerMinusPointer),
                // (the other operand not known: a pointer too, or a number, a gate either way)
                OP_SUB if dp || sp => gate = Some(Gate::PointerIn32BitSubtraction),
                // (END's source bit says big or little endian: it has no source register)
                OP_NEG | OP_END if dp => gate = Some(Gate::PointerNegatedOrSwapped),
                OP_NEG | OP_END => {}
                // any other 32-bit arithmetic on a pointer: refused whatever the capabilities
                _ if dp || sp => return Step::Refused,
                _ => {}
            }
            regs[dst] = Holds::Scalar;
        }
        CLASS_JMP | CLASS_JMP32 if compares(ins) => {
            let s = if ins.code & SRC_X != 0 { regs[src] } else { Holds::Const(i64::from(ins.imm)) };
            if pointer_compared(ins, regs[dst], s) {
                gate = Some(Gate::PointerCompared);
            }
        }
        CLASS_JMP | CLASS_JMP32 if ins.code & 0xf0 == JMP_CALL => {
            // the buffers a helper reads: a byte no way has written is a gate
            for read in code.reads(ins) {
                if let Holds::Stack(Some(o)) = regs[usize::from(read.arg)]
                    && let Some(size) = read_size(read.size, regs, code.known.maps)
                    && st.written.lacks_any(o, size)
                {
                    gate = Some(Gate::UninitializedStackRead);
                }
            }
            // what it may write: through any argument that may point into the stack but those
            // buffers, anywhere in it (the function called may follow a pointer stored in the
            // stack, too); a register past a helper's arguments is none
            let read_only = |r: usize| code.reads(ins).any(|read| usize::from(read.arg) == r);
            if code.arguments(ins).any(|r| !read_only(r) && matches!(regs[r], Holds::Stack(_) | Holds::Unknown)) {
                st.written = Written::ALL;
            }
            // a helper or function may write the stack above the stack pointers it is given, and
            // anywhere through a register that may be one (not known: reloaded from a slot not
            // tracked, or ways that disagree)
            for arg in &regs[code.arguments(ins)] {
                match *arg {
                    Holds::Stack(Some(o)) => st.slots.retain(|(s, _)| *s + 8 <= o),
                    Holds::Stack(None) | Holds::Unknown => st.slots.clear(),
                    _ => {}
                }
            }
            let regs = &mut st.regs;
            let lookup = ins.src == 0 && ins.imm == FUNC_MAP_LOOKUP_ELEM;
            regs[0] = if lookup { Holds::Lookup } else { Holds::NotStack };
            regs[1..=5].fill(Holds::NotInit);
        }
        _ => {}
    }
    Step::On(gate)
}

/// How many bytes a helper reads from a buffer argument, when the registers show it: the key or
/// value size of the map in r1, or the number in a register.
fn read_size(size: ReadSize, regs: &[Holds; 11], maps: &[MapShape]) -> Option<i64> {
    let n = match (size, regs[1]) {
        (ReadSize::MapKey, Holds::Map(m)) => maps.get(m)?.key_size,
        (ReadSize::MapValue, Holds::Map(m)) => maps.get(m)?.value_size,
        (ReadSize::Register(r), _) => match regs.get(usize::from(r))? {
            Holds::Const(c) => u32::try_from(*c).ok()?,
            _ => return None,
        },
        _ => return None,
    };
    Some(i64::from(n))
}

/// The registers instruction `ins` reads (not a call's arguments: which it takes is the
/// function's own).
fn reads(ins: Insn) -> [Option<usize>; 2] {
    let (class, op, x) = (ins.code & 0x07, ins.code & 0xf0, ins.code & SRC_X != 0);
    let (dst, src) = (usize::from(ins.dst), usize::from(ins.src));
    let (a, b) = match class {
        CLASS_ALU | CLASS_ALU64 if op == OP_MOV => (x.then_some(src), None),
        CLASS_ALU | CLASS_ALU64 if matches!(op, OP_NEG | OP_END) => (Some(dst), None),
        CLASS_ALU | CLASS_ALU64 => (Some(dst), x.then_some(src)),
        CLASS_LDX => (Some(src), None),
        CLASS_ST => (Some(dst), None),
        CLASS_STX => (Some(dst), Some(src)),
        CLASS_JMP | CLASS_JMP32 if compares(ins) => (Some(dst), x.then_some(src)),
        CLASS_JMP if op == JMP_EXIT => (Some(0), None),
        _ => (None, None),
    };
    [a, b]
}

/// What a load from the context at `off` gives.
fn packet_field(c: &CtxPacket, off: i16, size: u8) -> Holds {
    let Ok(off) = u32::try_from(off) else { return Holds::NotStack };
    // (the fields are 4-byte loads, or 8-byte ones for __bpf_md_ptr)
    if size != SIZE_W && size != SIZE_DW {
        return Holds::NotStack;
    }
    if off == c.data {
        Holds::Packet
    } else if off == c.data_end {
        Holds::PacketEnd
    } else if Some(off) == c.data_meta {
        Holds::PacketMeta
    } else {
        Holds::NotStack
    }
}

/// Gate `gate` at instruction `i` of `f` (an addition, a subtraction, a copy, a negation, a
/// byte swap or a comparison), with the instruction as the verifier prints it
/// (kernel/bpf/disasm.c).
fn site(code: &Code, i: usize, gate: Gate) -> GateSite {
    let f = code.f;
    let ins = f.insns[i];
    let location = f.line_of(i).map(|l| l.to_string().into());
    // (`call bpf_map_lookup_elem#1`)
    if ins.code == CLASS_JMP | JMP_CALL {
        let name = code.reads(ins).next().map_or(String::new(), |r| format!("bpf_{}", r.helper));
        return GateSite { gate, insn: format!("call {name}#{}", ins.imm), location };
    }
    // (`r1 = *(u64 *)(r10 -16)`)
    if ins.code & 0x07 == CLASS_LDX {
        let size = ["u32", "u16", "u8", "u64"][usize::from(ins.code & 0x18) >> 3];
        let insn = format!("r{} = *({size} *)(r{} {:+})", ins.dst, ins.src, ins.off);
        return GateSite { gate, insn, location };
    }
    if compares(ins) {
        // (`if r1 > r2 goto pc+3`, `if w1 != 0x5 goto pc-2`)
        const OPS: [&str; 14] = ["", "==", ">", ">=", "&", "!=", "s>", "s>=", "", "", "<", "<=", "s<", "s<="];
        let width = if ins.code & 0x07 == CLASS_JMP32 { 'w' } else { 'r' };
        let op = OPS.get(usize::from(ins.code >> 4)).copied().unwrap_or("?");
        let src = if ins.code & SRC_X != 0 { format!("{width}{}", ins.src) } else { format!("{:#x}", ins.imm) };
        let insn = format!("if {width}{} {op} {src} goto pc{:+}", ins.dst, ins.off);
        return GateSite { gate, insn, location };
    }
    let alu32 = ins.code & 0x07 == CLASS_ALU;
    let width = if alu32 { 'w' } else { 'r' };
    let d = ins.dst;
    // (`w1 = -w1`; `r1 = be16 r1` in either width; `r1 = bswap64 r1`)
    let unary = match ins.code & 0xf0 {
        OP_NEG => Some(format!("{width}{d} = -{width}{d}")),
        OP_END if alu32 => Some(format!("r{d} = {}{} r{d}", if ins.code & SRC_X != 0 { "be" } else { "le" }, ins.imm)),
        OP_END => Some(format!("r{d} = bswap{} r{d}", ins.imm)),
        _ => None,
    };
    if let Some(insn) = unary {
        return GateSite { gate, insn, location };
    }
    // (as the verifier prints it: `w2 -= w3`, `w2 -= 8`, `w0 = w10`, `w0 = (s8)w1`)
    let op = match ins.code & 0xf0 {
        OP_ADD => "+=",
        OP_SUB => "-=",
        _ => "=",
    };
    let src = match (ins.code & SRC_X != 0, ins.off) {
        (false, _) => ins.imm.to_string(),
        // (a sign-extending copy: `w0 = (s8)w1`)
        (true, off) if op == "=" && off != 0 => format!("(s{off}){width}{}", ins.src),
        (true, _) => format!("{width}{}", ins.src),
    };
    GateSite { gate, insn: format!("{width}{} {op} {src}", ins.dst), location }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, dst, src, off, imm }
    }

    /// The gates an XDP program's main function of `insns` shows, each with its instruction.
    fn sites(insns: Vec<Insn>) -> Vec<(Gate, String)> {
        gates(&function(insns), Some(&XDP), Known::NONE).into_iter().map(|g| (g.gate, g.insn)).collect()
    }

    fn site(g: Gate, insn: &str) -> (Gate, String) {
        (g, insn.to_string())
    }

    fn function(insns: Vec<Insn>) -> Function {
        Function {
            name: "p".into(),
            section: "xdp".into(),
            offset: 0,
            global: true,
            insns,
            relocs: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// One map, global data (the relocations of the tests name map 0).
    const DATA: Known<'static> =
        Known { maps: &[MapShape { global_data: true, key_size: 4, value_size: 8 }], reads: &[], helper_args: &[] };

    const XDP: CtxPacket = CtxPacket { prog_types: Vec::new(), data: 0, data_end: 4, data_meta: Some(8) };
    const LDXW: u8 = CLASS_LDX | MODE_MEM | SIZE_W;
    const EXIT: u8 = CLASS_JMP | JMP_EXIT;

    #[test]
    fn packet_length_is_pointer_minus_pointer() {
        // r2 = data; r3 = data_end; r3 -= r2
        let f = function(vec![
            insn(LDXW, 2, 1, 0, 0),
            insn(LDXW, 3, 1, 4, 0),
            insn(CLASS_ALU64 | OP_SUB | SRC_X, 3, 2, 0, 0),
            insn(EXIT, 0, 0, 0, 0),
        ]);
        let g = gates(&f, Some(&XDP), Known::NONE);
        assert_eq!(
            g.iter().map(|g| (g.gate, g.insn.as_str())).collect::<Vec<_>>(),
            [(Gate::PointerMinusPointer, "r3 -= r2")]
        );
        // a type without packet pointers shows nothing
        assert!(gates(&f, None, Known::NONE).is_empty());
        // the 32-bit form (xdp-tools' xdpdump: `w2 -= w4`)
        let f = function(vec![
            insn(LDXW, 4, 1, 0, 0),
            insn(LDXW, 2, 1, 4, 0),
            insn(CLASS_ALU | OP_SUB | SRC_X, 2, 4, 0, 0),
            insn(EXIT, 0, 0, 0, 0),
        ]);
        assert_eq!(
            gates(&f, Some(&XDP), Known::NONE).iter().map(|g| g.insn.as_str()).collect::<Vec<_>>(),
            ["w2 -= w4"]
        );
    }

    #[test]
    fn variable_packet_offsets_and_what_is_not_a_gate() {
        let f = function(vec![
            insn(LDXW, 2, 1, 0, 0),                          // r2 = data
            insn(CLASS_ALU64 | OP_ADD, 2, 0, 0, 14),         // r2 += 14: a constant, fine
            insn(CLASS_LDX | MODE_MEM | 0x10, 4, 2, 0, 0),   // r4 = *(u8 *)(r2 + 0): unknown
            insn(CLASS_ALU64 | 0x50, 4, 0, 0, 15),           // r4 &= 15: a scalar
            insn(CLASS_ALU64 | OP_ADD | SRC_X, 2, 4, 0, 0),  // r2 += r4: gate
            insn(CLASS_ALU64 | OP_ADD | SRC_X, 10, 4, 0, 0), // r10 += r4: stack, not this gate
            insn(EXIT, 0, 0, 0, 0),
        ]);
        let g = gates(&f, Some(&XDP), Known::NONE);
        assert_eq!(
            g.iter().map(|g| (g.gate, g.insn.as_str())).collect::<Vec<_>>(),
            [(Gate::PacketPointerPlusRegister, "r2 += r4")]
        );
    }

    fn found(f: &Function) -> std::collections::BTreeSet<(Gate, String)> {
        gates(f, Some(&XDP), Known::NONE).into_iter().map(|g| (g.gate, g.insn)).collect()
    }

    #[test]
    fn a_way_the_verifier_refuses_adds_nothing_to_what_follows() {
        // (a crafted program from a reviewer's random programs: what an instruction gives must
        // not depend on the order in which its ways are met)
        const JGT_X: u8 = CLASS_JMP | 0x20 | SRC_X;
        let unknown_way_jumped_to = function(vec![
            insn(LDXW, 2, 1, 0, 0),                         // 0: r2 = data
            insn(LDXW, 3, 1, 0, 0),                         // 1: r3 = data
            insn(LDXW, 5, 1, 4, 0),                         // 2: r5 = data_end
            insn(JGT_X, 5, 2, 1, 0),                        // 3: if r5 > r2 goto 5
            insn(LDXW, 2, 1, 16, 0),                        // 4: r2 = a context field: not known
            insn(CLASS_ALU64 | OP_ADD | SRC_X, 2, 3, 0, 0), // 5: r2 += r3
            insn(CLASS_ALU64 | OP_SUB | SRC_X, 2, 3, 0, 0), // 6: r2 -= r3
            insn(CLASS_ALU64 | OP_MOV, 0, 0, 0, 0),
            insn(EXIT, 0, 0, 0, 0),
        ]);
        let unknown_way_fallen_into = function(vec![
            insn(LDXW, 2, 1, 0, 0),                         // 0: r2 = data
            insn(LDXW, 3, 1, 0, 0),                         // 1: r3 = data
            insn(LDXW, 5, 1, 4, 0),                         // 2: r5 = data_end
            insn(JGT_X, 5, 2, 1, 0),                        // 3: if r5 > r2 goto 5
            insn(CLASS_JMP | JMP_JA, 0, 0, 1, 0),           // 4: goto 6
            insn(LDXW, 2, 1, 16, 0),                        // 5: r2 = a context field: not known
            insn(CLASS_ALU64 | OP_ADD | SRC_X, 2, 3, 0, 0), // 6: r2 += r3
            insn(CLASS_ALU64 | OP_SUB | SRC_X, 2, 3, 0, 0), // 7: r2 -= r3
            insn(CLASS_ALU64 | OP_MOV, 0, 0, 0, 0),
            insn(EXIT, 0, 0, 0, 0),
        ]);
        // packet + packet is refused whatever the capabilities: only the way through the
        // unknown register goes on, and it shows both gates
        let want: std::collections::BTreeSet<(Gate, String)> = [
            (Gate::PacketPointerPlusRegister, "r2 += r3".to_string()),
            (Gate::PointerMinusPointer, "r2 -= r3".to_string()),
        ]
        .into();
        assert_eq!(found(&unknown_way_jumped_to), want);
        assert_eq!(found(&unknown_way_fallen_into), want);
    }

    #[test]
    fn a_pointer_minus_an_unknown_register_is_not_known() {
        let f = function(vec![
            insn(LDXW, 2, 1, 0, 0),                         // r2 = data
            insn(LDXW, 4, 1, 16, 0),                        // r4 = a context field: not known
            insn(CLASS_ALU64 | OP_SUB | SRC_X, 2, 4, 0, 0), // r2 -= r4: a gate either way
            insn(LDXW, 6, 1, 4, 0),                         // r6 = data_end
            insn(CLASS_ALU64 | OP_SUB | SRC_X, 6, 2, 0, 0), // r6 -= r2: r2 may not be a pointer
            insn(EXIT, 0, 0, 0, 0),
        ]);
        assert_eq!(found(&f), [(Gate::PacketPointerPlusRegister, "r2 -= r4".to_string())].into());
    }

    #[test]
    fn a_pointer_in_32bit_arithmetic() {
        // a copy of the lower half of a pointer, of a number (no gate)
        let truncated = vec![
            insn(LDXW, 2, 1, 0, 0),                        // r2 = data
            insn(CLASS_ALU | OP_MOV | SRC_X, 3, 2, 0, 0),  // w3 = w2
            insn(CLASS_ALU | OP_MOV | SRC_X, 4, 10, 0, 0), // w4 = w10
            insn(CLASS_ALU | OP_MOV | SRC_X, 5, 3, 0, 0),  // w5 = w3: a number now
            insn(EXIT, 0, 0, 0, 0),
        ];
        assert_eq!(
            sites(truncated),
            [site(Gate::PointerTruncated, "w3 = w2"), site(Gate::PointerTruncated, "w4 = w10")]
        );
        // a number subtracted from a pointer, or a pointer from a number; an unknown register
        // from a pointer (a pointer too, or a number: a gate either way)
        let subtracted = vec![
            insn(LDXW, 2, 1, 0, 0),                           // 0: r2 = data
            insn(CLASS_ALU | OP_SUB, 2, 0, 0, 14),            // 1: w2 -= 14
            insn(LDXW, 2, 1, 0, 0),                           // 2: r2 = data
            insn(CLASS_ALU64 | OP_MOV, 3, 0, 0, 5),           // 3: r3 = 5
            insn(CLASS_ALU | OP_SUB | SRC_X, 3, 2, 0, 0),     // 4: w3 -= w2
            insn(CLASS_LDX | MODE_MEM | SIZE_DW, 4, 2, 0, 0), // 5: r4 = *(u64 *)(r2 + 0): unknown
            insn(CLASS_ALU | OP_SUB | SRC_X, 2, 4, 0, 0),     // 6: w2 -= w4
            insn(EXIT, 0, 0, 0, 0),
        ];
        assert_eq!(
            sites(subtracted),
            [
                site(Gate::PointerIn32BitSubtraction, "w2 -= 14"),
                site(Gate::PointerIn32BitSubtraction, "w2 -= w4"),
                site(Gate::PointerIn32BitSubtraction, "w3 -= w2"),
            ]
        );
        // any other 32-bit operation on a pointer is refused whatever the capabilities: the way
        // ends there, and what follows on it is not a gate
        let refused = vec![
            insn(LDXW, 2, 1, 0, 0),                         // r2 = data
            insn(LDXW, 3, 1, 4, 0),                         // r3 = data_end
            insn(CLASS_ALU | OP_ADD, 2, 0, 0, 14),          // w2 += 14
            insn(CLASS_ALU64 | OP_SUB | SRC_X, 3, 2, 0, 0), // r3 -= r2
            insn(EXIT, 0, 0, 0, 0),
        ];
        assert_eq!(sites(refused), []);
        // a lookup's result (past its NULL check), a sign-extending copy
        let lookup = vec![
            insn(CLASS_JMP | JMP_CALL, 0, 0, 0, FUNC_MAP_LOOKUP_ELEM), // r0 = lookup
            insn(CLASS_JMP | 0x10, 0, 0, 2, 0),                        // if r0 == 0 goto +2
            insn(CLASS_ALU | OP_MOV | SRC_X, 1, 0, 0, 0),              // w1 = w0
            insn(CLASS_ALU | OP_MOV | SRC_X, 3, 10, 8, 0),             // w3 = (s8)w10
            insn(EXIT, 0, 0, 0, 0),
        ];
        assert_eq!(
            sites(lookup),
            [site(Gate::PointerTruncated, "w1 = w0"), site(Gate::PointerTruncated, "w3 = (s8)w10")]
        );
    }

    #[test]
    fn a_pointer_negated_swapped_or_sign_extended() {
        const TO_BE: u8 = SRC_X;
        let on_pointers = vec![
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 6, 10, 0, 0), // r6 = r10
            insn(CLASS_ALU64 | OP_NEG, 6, 0, 0, 0),          // r6 = -r6: a number now
            insn(CLASS_ALU64 | OP_NEG, 6, 0, 0, 0),          // r6 = -r6: no gate
            insn(LDXW, 2, 1, 0, 0),                          // r2 = data
            insn(CLASS_ALU | OP_END | TO_BE, 2, 0, 0, 64),   // r2 = be64 r2
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 3, 10, 0, 0), // r3 = r10
            insn(CLASS_ALU | OP_END, 3, 0, 0, 16),           // r3 = le16 r3
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 4, 10, 0, 0), // r4 = r10
            insn(CLASS_ALU64 | OP_END, 4, 0, 0, 32),         // r4 = bswap32 r4
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 5, 6, 32, 0), // r5 = (s32)r6: r6 a number
            insn(LDXW, 7, 2, 4, 0),                          // r7: not known (r2 a number)
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 7, 7, 16, 0), // r7 = (s16)r7: not known to be a pointer
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 8, 10, 8, 0), // r8 = (s8)r10
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 9, 10, 1, 1), // an address-space cast: not a copy
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 9, 10, 0, 0), // r9 = r10
            insn(CLASS_ALU | OP_NEG, 9, 0, 0, 0),            // w9 = -w9
            insn(EXIT, 0, 0, 0, 0),
        ];
        assert_eq!(
            sites(on_pointers),
            [
                site(Gate::PointerNegatedOrSwapped, "r2 = be64 r2"),
                site(Gate::PointerNegatedOrSwapped, "r3 = le16 r3"),
                site(Gate::PointerNegatedOrSwapped, "r4 = bswap32 r4"),
                site(Gate::PointerNegatedOrSwapped, "r6 = -r6"),
                site(Gate::PointerNegatedOrSwapped, "w9 = -w9"),
                site(Gate::PointerSignExtended, "r8 = (s8)r10"),
            ]
        );
        // refused whatever the capabilities, and the way ends there: a write to the frame
        // pointer, reserved fields (a negation with an immediate, a sign-extending copy with
        // one, a byte swap of 8 bits)
        for refused in [
            insn(CLASS_ALU | OP_NEG, 10, 0, 0, 0),
            insn(CLASS_ALU64 | OP_NEG, 1, 0, 0, 1),
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 2, 1, 32, 1),
            insn(CLASS_ALU | OP_END, 1, 0, 0, 8),
            insn(CLASS_ALU64 | OP_SUB | SRC_X, 1, 10, 0, 1),
            insn(CLASS_ALU64 | OP_ADD, 1, 2, 0, 8),
        ] {
            let f = vec![
                insn(CLASS_ALU64 | OP_MOV | SRC_X, 1, 10, 0, 0), // r1 = r10
                refused,
                insn(CLASS_ALU64 | OP_NEG, 1, 0, 0, 0), // r1 = -r1: not reached
                insn(EXIT, 0, 0, 0, 0),
            ];
            assert_eq!(sites(f), [], "{refused:?}");
        }
        // the same on numbers: no gate
        let on_numbers = vec![
            insn(CLASS_ALU64 | OP_MOV, 1, 0, 0, 7),          // r1 = 7
            insn(CLASS_ALU64 | OP_NEG, 1, 0, 0, 0),          // r1 = -r1
            insn(CLASS_ALU | OP_END | TO_BE, 1, 0, 0, 64),   // r1 = be64 r1
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 2, 1, 32, 0), // r2 = (s32)r1
            insn(EXIT, 0, 0, 0, 0),
        ];
        assert_eq!(sites(on_numbers), []);
    }

    #[test]
    fn a_pointer_compared() {
        // (every site here is the one gate: only its instruction is compared)
        let insns_of = |insns: Vec<Insn>| sites(insns).into_iter().map(|(_, insn)| insn).collect::<Vec<_>>();
        // `if rd op rs`, `if rd op imm`, `if wd op ws`
        let jx = |op: u8, d: u8, s: u8| insn(CLASS_JMP | op | SRC_X, d, s, 0, 0);
        let jk = |op: u8, d: u8, imm: i32| insn(CLASS_JMP | op, d, 0, 0, imm);
        let jmp32 = |op: u8, d: u8, s: u8| insn(CLASS_JMP32 | op | SRC_X, d, s, 0, 0);
        let f = vec![
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 6, 10, 0, 0), // r6 = r10
            insn(CLASS_ALU64 | OP_ADD, 6, 0, 0, -8),         // r6 += -8
            insn(LDXW, 2, 1, 0, 0),                          // r2 = data
            insn(LDXW, 3, 1, 4, 0),                          // r3 = data_end
            insn(LDXW, 4, 1, 8, 0),                          // r4 = data_meta
            insn(LDXW, 5, 2, 0, 0),                          // r5: not known (a load from the packet)
            insn(CLASS_ALU64 | OP_MOV, 7, 0, 0, 9),          // r7 = 9
            // refused without allow_ptr_leaks
            jx(JMP_JGT, 6, 10),   // stack > stack
            jk(JMP_JGT, 6, 5),    // stack > 5
            jk(JMP_JGT, 6, 0),    // stack > 0: decided only for (in)equality
            jx(JMP_JEQ, 6, 7),    // stack == 9
            jx(JMP_JGT, 7, 6),    // 9 > stack: the source a pointer
            jx(JMP_JGT, 2, 2),    // data > data: no packet range from two starts
            jx(JMP_JEQ, 2, 3),    // data == data_end: ordered only
            jmp32(JMP_JGT, 2, 3), // w2 > w3: 64-bit only
            jx(JMP_JGT, 4, 3),    // data_meta > data_end
            jx(JMP_JGT, 3, 10),   // data_end > stack
            jk(JMP_JEQ, 6, 0),    // stack == 0: a stack pointer may be NULL to the verifier
            jx(JMP_JNE, 6, 5),    // stack != r5
            // allowed
            jx(JMP_JGT, 2, 3), // data > data_end
            jx(JMP_JLE, 3, 2), // data_end <= data
            jx(JMP_JGT, 4, 2), // data_meta > data
            jx(JMP_JGT, 2, 5), // data > r5: r5 may be the packet's end
            jx(JMP_JGT, 7, 5), // numbers
            insn(CLASS_JMP | JMP_CALL, 0, 0, 0, FUNC_MAP_LOOKUP_ELEM),
            jk(JMP_JEQ, 0, 0), // the lookup's NULL check
            insn(EXIT, 0, 0, 0, 0),
        ];
        assert_eq!(
            insns_of(f),
            [
                "if r2 == r3 goto pc+0",
                "if r2 > r2 goto pc+0",
                "if r3 > r10 goto pc+0",
                "if r4 > r3 goto pc+0",
                "if r6 != r5 goto pc+0",
                "if r6 == 0x0 goto pc+0",
                "if r6 == r7 goto pc+0",
                "if r6 > 0x0 goto pc+0",
                "if r6 > 0x5 goto pc+0",
                "if r6 > r10 goto pc+0",
                "if r7 > r6 goto pc+0",
                "if w2 > w3 goto pc+0",
            ]
        );
        // a backward jump, as the verifier prints it
        let back = vec![
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 1, 10, 0, 0), // r1 = r10
            insn(CLASS_JMP | JMP_JGT, 1, 0, -2, -1),         // if r1 > 0xffffffff goto pc-2
            insn(EXIT, 0, 0, 0, 0),
        ];
        assert_eq!(insns_of(back), ["if r1 > 0xffffffff goto pc-2"]);
    }

    /// A lookup's result before its NULL check may be NULL: compared, it is no gate; past the
    /// check it is a map value, and compared with a number it is one. A global's address is
    /// never NULL: against 0 for (in)equality the verifier decides the jump (no gate), and the
    /// way it never takes it walks only speculatively, with the register a number it does not
    /// know (no gate there either); ordered against a number it is a gate.
    #[test]
    fn lookups_and_globals_compared() {
        use crate::model::Reloc;
        let jx = |op: u8, d: u8, s: u8| insn(CLASS_JMP | op | SRC_X, d, s, 0, 0);
        let mut f = function(vec![
            insn(CLASS_ALU64 | OP_MOV, 6, 0, 0, 3),                    // 0: r6 = 3
            insn(CLASS_JMP | JMP_CALL, 0, 0, 0, FUNC_MAP_LOOKUP_ELEM), // 1: r0 = lookup
            jx(JMP_JGE, 0, 6),                                         // 2: r0 >= r6: maybe NULL
            insn(CLASS_JMP | JMP_JEQ, 0, 0, 1, 0),                     // 3: if r0 == 0 goto 5
            jx(JMP_JGT, 0, 6),                                         // 4: r0 > r6: a map value
            jx(JMP_JLT, 0, 6),                                         // 5: r0 < r6: NULL on one way
            insn(LD_IMM64, 7, 0, 0, 0),                                // 6: r7 = &global
            insn(0, 0, 0, 0, 0),                                       // 7
            insn(CLASS_JMP | JMP_JNE, 7, 0, 2, 0),                     // 8: if r7 != 0 goto 11
            insn(CLASS_JMP | JMP_JGT, 7, 0, 0, 7),                     // 9: r7 > 7, never reached
            insn(EXIT, 0, 0, 0, 0),                                    // 10
            insn(LD_IMM64, 8, 0, 0, 0),                                // 11: r8 = 1 << 32
            insn(0, 0, 0, 0, 1),                                       // 12
            insn(CLASS_JMP32 | JMP_JEQ | SRC_X, 7, 8, 0, 0),           // 13: w7 == w8 (low half 0)
            insn(CLASS_JMP | JMP_JGT, 7, 0, 0, 0),                     // 14: r7 > 0
            insn(EXIT, 0, 0, 0, 0),                                    // 15
        ]);
        f.relocs = vec![Reloc { insn: 6, target: RelocTarget::Map(0) }];
        let found: Vec<String> = gates(&f, Some(&XDP), DATA).into_iter().map(|g| g.insn).collect();
        assert_eq!(found, ["if r0 > r6 goto pc+0", "if r7 > 0x0 goto pc+0"]);
        // the same decided jump in 32 bits, and against a register that holds 0: the way never
        // taken holds a number the verifier does not know
        for decided in [
            insn(CLASS_JMP32 | JMP_JNE, 7, 0, 2, 0),       // if w7 != 0 goto +2
            insn(CLASS_JMP | JMP_JNE | SRC_X, 7, 8, 2, 0), // if r7 != r8 (0) goto +2
        ] {
            let mut f = function(vec![
                insn(LD_IMM64, 7, 0, 0, 0),             // 0: r7 = &global
                insn(0, 0, 0, 0, 0),                    // 1
                insn(CLASS_ALU64 | OP_MOV, 8, 0, 0, 0), // 2: r8 = 0
                decided,                                // 3
                insn(CLASS_JMP | JMP_JGT, 7, 0, 0, 7),  // 4: r7 > 7, never reached
                insn(EXIT, 0, 0, 0, 0),                 // 5
                insn(EXIT, 0, 0, 0, 0),                 // 6
            ]);
            f.relocs = vec![Reloc { insn: 0, target: RelocTarget::Map(0) }];
            assert!(gates(&f, Some(&XDP), DATA).is_empty(), "{decided:?}");
        }
    }

    /// Past a lookup's NULL check proper (64 bits, against the immediate 0) the register
    /// tested is a map value on the way where it is not NULL: a pointer walk over the value
    /// (`r1 = r0; r1 += 16; if r0 < r1`) compares two map values. A check in 32 bits, or
    /// against a register (even one that holds 0: not every kernel takes that for a NULL
    /// check), is not taken for one; a copy made before the check is not refined (it may be
    /// NULL on the other way, as far as the flow knows).
    #[test]
    fn a_lookups_result_past_its_null_check_is_a_map_value() {
        let walk = |check: Insn| {
            function(vec![
                insn(CLASS_ALU64 | OP_MOV, 8, 0, 0, 0),                    // 0: r8 = 0
                insn(CLASS_JMP | JMP_CALL, 0, 0, 0, FUNC_MAP_LOOKUP_ELEM), // 1: r0 = lookup
                insn(CLASS_ALU64 | OP_MOV | SRC_X, 7, 0, 0, 0),            // 2: r7 = r0 (a copy)
                check,                                                     // 3: goto 8 where NULL
                insn(CLASS_ALU64 | OP_MOV | SRC_X, 1, 0, 0, 0),            // 4: r1 = r0
                insn(CLASS_ALU64 | OP_ADD, 1, 0, 0, 16),                   // 5: r1 += 16
                insn(CLASS_JMP | JMP_JLT | SRC_X, 0, 1, 0, 0),             // 6: if r0 < r1
                insn(CLASS_JMP | JMP_JLT | SRC_X, 7, 1, 0, 0),             // 7: if r7 < r1
                insn(EXIT, 0, 0, 0, 0),                                    // 8
            ])
        };
        let found = |check: Insn| -> Vec<String> {
            gates(&walk(check), Some(&XDP), Known::NONE).into_iter().map(|g| g.insn).collect()
        };
        // (r1 is the source: a map value there is a gate whatever the destination holds)
        let both = ["if r0 < r1 goto pc+0", "if r7 < r1 goto pc+0"];
        assert_eq!(found(insn(CLASS_JMP | JMP_JEQ, 0, 0, 4, 0)), both); // if r0 == 0 goto 8
        // the way taken where it is not NULL: `if r0 != 0 goto 4`, NULL falling through to 8
        let f = function(vec![
            insn(CLASS_JMP | JMP_CALL, 0, 0, 0, FUNC_MAP_LOOKUP_ELEM), // 0: r0 = lookup
            insn(CLASS_JMP | JMP_JNE, 0, 0, 1, 0),                     // 1: if r0 != 0 goto 3
            insn(EXIT, 0, 0, 0, 0),                                    // 2
            insn(CLASS_JMP | JMP_JGT, 0, 0, 0, 5),                     // 3: if r0 > 5
            insn(EXIT, 0, 0, 0, 0),                                    // 4
        ]);
        let found_ne: Vec<String> = gates(&f, Some(&XDP), Known::NONE).into_iter().map(|g| g.insn).collect();
        assert_eq!(found_ne, ["if r0 > 0x5 goto pc+0"]);
        // no NULL check: r0 may be NULL, a number, and so may r1 = r0 + 16 (which the verifier
        // would refuse on a result not checked, whatever the capabilities)
        for not_a_check in [
            insn(CLASS_JMP32 | JMP_JEQ, 0, 0, 4, 0),       // if w0 == 0 goto 8
            insn(CLASS_JMP | JMP_JEQ | SRC_X, 0, 8, 4, 0), // if r0 == r8 (0) goto 8
            insn(CLASS_JMP | JMP_JEQ | SRC_X, 0, 9, 4, 0), // if r0 == r9 (not known) goto 8
            insn(CLASS_JMP | JMP_JGT, 0, 0, 4, 0),         // if r0 > 0 goto 8
        ] {
            assert!(found(not_a_check).is_empty(), "{not_a_check:?}");
        }
        // a copy checked again on the way where the result is NULL (the verifier has made it
        // the number 0 there: the copy's own check is decided, its other way speculative): no
        // map value, no gate (a reviewer's case), nor for a copy kept in a stack slot
        for (keep, reload) in [
            (insn(CLASS_ALU64 | OP_MOV | SRC_X, 7, 0, 0, 0), insn(CLASS_ALU64 | OP_MOV, 8, 0, 0, 0)),
            (insn(CLASS_STX | MODE_MEM | SIZE_DW, 10, 0, -8, 0), insn(CLASS_LDX | MODE_MEM | SIZE_DW, 7, 10, -8, 0)),
        ] {
            let f = function(vec![
                insn(CLASS_JMP | JMP_CALL, 0, 0, 0, FUNC_MAP_LOOKUP_ELEM), // 0: r0 = lookup
                keep,                                                      // 1: r7 = r0, or spilled
                insn(CLASS_JMP | JMP_JNE, 0, 0, 4, 0),                     // 2: if r0 != 0 goto 7
                reload,                                                    // 3: (r7 reloaded)
                insn(CLASS_JMP | JMP_JEQ, 7, 0, 2, 0),                     // 4: if r7 == 0 goto 7
                insn(CLASS_JMP | JMP_JGT, 7, 0, 0, 5),                     // 5: if r7 > 5
                insn(EXIT, 0, 0, 0, 0),                                    // 6
                insn(EXIT, 0, 0, 0, 0),                                    // 7
            ]);
            assert!(gates(&f, Some(&XDP), Known::NONE).is_empty(), "{keep:?}");
        }
        // a map value in the destination only, compared with a number
        let dst_only = |check: Insn| -> Vec<String> {
            let f = function(vec![
                insn(CLASS_JMP | JMP_CALL, 0, 0, 0, FUNC_MAP_LOOKUP_ELEM), // 0: r0 = lookup
                insn(CLASS_ALU64 | OP_MOV | SRC_X, 7, 0, 0, 0),            // 1: r7 = r0 (a copy)
                check,                                                     // 2: goto 5 where NULL
                insn(CLASS_JMP | JMP_JGT, 0, 0, 0, 5),                     // 3: if r0 > 5
                insn(CLASS_JMP | JMP_JGT, 7, 0, 0, 5),                     // 4: if r7 > 5
                insn(EXIT, 0, 0, 0, 0),                                    // 5
            ]);
            gates(&f, Some(&XDP), Known::NONE).into_iter().map(|g| g.insn).collect()
        };
        assert_eq!(dst_only(insn(CLASS_JMP | JMP_JEQ, 0, 0, 2, 0)), ["if r0 > 0x5 goto pc+0"]);
        assert!(dst_only(insn(CLASS_JMP32 | JMP_JEQ, 0, 0, 2, 0)).is_empty());
        assert!(dst_only(insn(CLASS_JMP | JMP_JEQ | SRC_X, 0, 9, 2, 0)).is_empty());
        assert!(dst_only(insn(CLASS_JMP | JMP_JNE, 0, 0, 2, 5)).is_empty()); // if r0 != 5
    }

    /// Stack bytes read before any way wrote them: by a load, by a helper through a buffer the
    /// rules name (a map's key or value, of the map's size; an output buffer of the size in a
    /// register). A store at the start of an 8-byte slot counts for the whole slot (a spill, to
    /// the verifier); a call may write the stack through any argument that may point into it
    /// (a register not known too), but not through the buffers it reads, nor through a register
    /// a call clobbered.
    #[test]
    fn stack_bytes_nothing_wrote() {
        use crate::model::Reloc;
        let maps = [MapShape { global_data: false, key_size: 12, value_size: 8 }];
        let r = crate::rules::rules();
        let known = Known { maps: &maps, reads: &r.verifier.stack_read, helper_args: &r.enums.helper_args };
        let stx = |size: u8, off: i16| insn(CLASS_STX | MODE_MEM | size, 10, 6, off, 0);
        let r2_at = |off: i32| insn(CLASS_ALU64 | OP_ADD, 2, 0, 0, off);
        // r1 = the map (a relocation names it); r2 = r10 + off; call `helper`
        let call_with = |before: Vec<Insn>, helper: i32| -> Vec<String> {
            let mut v = vec![insn(CLASS_ALU64 | OP_MOV, 6, 0, 0, 1)]; // r6 = 1
            v.extend(before);
            let at = v.len();
            v.extend([
                insn(LD_IMM64, 1, 0, 0, 0),
                insn(0, 0, 0, 0, 0),
                insn(CLASS_ALU64 | OP_MOV | SRC_X, 2, 10, 0, 0), // r2 = r10
                r2_at(-16),
                insn(CLASS_ALU64 | OP_MOV | SRC_X, 3, 2, 0, 0), // r3 = r2 (update's value)
                insn(CLASS_JMP | JMP_CALL, 0, 0, 0, helper),
                insn(EXIT, 0, 0, 0, 0),
            ]);
            let mut f = function(v);
            f.relocs = vec![Reloc { insn: at, target: RelocTarget::Map(0) }];
            gates(&f, None, known).into_iter().map(|g| g.insn).collect()
        };
        let lookup = ["call bpf_map_lookup_elem#1"];
        // the key: 12 bytes at -16
        assert_eq!(call_with(vec![stx(SIZE_DW, -16)], 1), lookup); // -8..-5 not written
        assert!(call_with(vec![stx(SIZE_DW, -16), stx(SIZE_W, -8)], 1).is_empty());
        // a 4-byte store at a slot's start counts for the slot; one past it does not
        assert!(call_with(vec![stx(SIZE_W, -16), stx(SIZE_W, -8)], 1).is_empty());
        assert_eq!(call_with(vec![stx(SIZE_W, -12), stx(SIZE_W, -8)], 1), lookup);
        // an update reads the key and the value (8 bytes, the same here): one gate at the call
        assert_eq!(call_with(vec![stx(SIZE_W, -8)], 2), ["call bpf_map_update_elem#2"]);
        // a helper that reads no buffer (bpf_get_prandom_u32) reads nothing
        assert!(call_with(vec![], 7).is_empty());
        // an earlier call given a stack pointer, or a register not known, as an argument may
        // have written anything: bpf_probe_read_kernel (113) takes three; not one given it past
        // its arguments (bpf_get_prandom_u32, 7, takes none), nor one that clobbered the
        // registers it was not given
        let earlier = |helper: i32, mut set_r3: Vec<Insn>| {
            set_r3.push(insn(CLASS_JMP | JMP_CALL, 0, 0, 0, helper));
            set_r3
        };
        let r3_stack = vec![insn(CLASS_ALU64 | OP_MOV | SRC_X, 3, 10, 0, 0)];
        // (reloaded from a slot where 4 bytes were stored: not known, may be a stack pointer)
        let r3_unknown = vec![stx(SIZE_W, -24), insn(CLASS_LDX | MODE_MEM | SIZE_DW, 3, 10, -24, 0)];
        // (loaded from the context: not known, but no stack pointer)
        let r3_not_stack = vec![insn(LDXW, 3, 1, 0, 0)];
        assert!(call_with(earlier(113, r3_stack.clone()), 1).is_empty());
        assert!(call_with(earlier(113, r3_unknown.clone()), 1).is_empty());
        assert_eq!(call_with(earlier(113, r3_not_stack), 1), lookup);
        assert_eq!(call_with(earlier(7, r3_stack), 1), lookup);
        assert_eq!(call_with(earlier(7, r3_unknown), 1), lookup);
        assert_eq!(call_with(vec![insn(CLASS_JMP | JMP_CALL, 0, 0, 0, 7); 2], 1), lookup);
        // ... nor one given the key it reads (a lookup's key is not written): a delete after it
        // reads the same bytes no way wrote
        let key_call = |helper: i32| {
            [
                insn(LD_IMM64, 1, 0, 0, 0),
                insn(0, 0, 0, 0, 0),
                insn(CLASS_ALU64 | OP_MOV | SRC_X, 2, 10, 0, 0),
                r2_at(-16),
                insn(CLASS_JMP | JMP_CALL, 0, 0, 0, helper),
            ]
        };
        let mut v = vec![insn(CLASS_ALU64 | OP_MOV, 6, 0, 0, 1), stx(SIZE_DW, -16)];
        v.extend(key_call(1));
        v.extend(key_call(3));
        v.push(insn(EXIT, 0, 0, 0, 0));
        let mut f = function(v);
        f.relocs = vec![Reloc { insn: 2, target: RelocTarget::Map(0) }, Reloc { insn: 7, target: RelocTarget::Map(0) }];
        let found: Vec<String> = gates(&f, None, known).into_iter().map(|g| g.insn).collect();
        assert_eq!(found, ["call bpf_map_delete_elem#3", "call bpf_map_lookup_elem#1"]);
        // a load: byte by byte, but for a store at a slot's start (the slot counts as written)
        let load = |before: Vec<Insn>| -> Vec<String> {
            let mut v = vec![insn(CLASS_ALU64 | OP_MOV, 6, 0, 0, 1)];
            v.extend(before);
            v.extend([insn(CLASS_LDX | MODE_MEM | SIZE_DW, 0, 10, -8, 0), insn(EXIT, 0, 0, 0, 0)]);
            gates(&function(v), None, known).into_iter().map(|g| g.insn).collect()
        };
        assert_eq!(load(vec![]), ["r0 = *(u64 *)(r10 -8)"]);
        assert_eq!(load(vec![stx(SIZE_W, -4)]), ["r0 = *(u64 *)(r10 -8)"]);
        assert!(load(vec![stx(SIZE_W, -8)]).is_empty());
        // written on one way of two: it may have been written
        let mut one_way = vec![insn(CLASS_JMP | JMP_JEQ, 6, 0, 1, 0), stx(SIZE_DW, -8)];
        one_way.extend([insn(CLASS_LDX | MODE_MEM | SIZE_DW, 0, 10, -8, 0), insn(EXIT, 0, 0, 0, 0)]);
        assert!(gates(&function(one_way), None, known).is_empty());
    }

    /// What a call may write: the stack above a stack pointer it is given, all of it through
    /// a register that may be one (ways that disagree join to one not known), nothing through a
    /// register past a helper's arguments. Either walk order gives the same answer (it once did
    /// not: a register not known forgot no slot, a stack pointer those above it).
    #[test]
    fn a_call_forgets_the_slots_it_may_write() {
        let r = crate::rules::rules();
        let known = Known { maps: &[], reads: &r.verifier.stack_read, helper_args: &r.enums.helper_args };
        // r2 = data, kept at -16; on one way r3 = r10 - 8, on the other `other`; a call of
        // `helper`; r4 = data again from -16, r5 = data_end; r5 -= r4 (a gate if r4 is data)
        let f = |other: Insn, helper: i32| {
            function(vec![
                insn(LDXW, 2, 1, 0, 0),                              // 0: r2 = data
                insn(CLASS_STX | MODE_MEM | SIZE_DW, 10, 2, -16, 0), // 1: *(r10 -16) = r2
                insn(CLASS_STX | MODE_MEM | SIZE_W, 10, 2, -24, 0),  // 2: *(u32 *)(r10 -24) = w2
                insn(CLASS_ALU64 | OP_MOV | SRC_X, 3, 10, 0, 0),     // 3: r3 = r10
                insn(CLASS_ALU64 | OP_ADD, 3, 0, 0, -8),             // 4: r3 += -8
                insn(CLASS_JMP | JMP_JEQ, 2, 0, 1, 0),               // 5: if r2 == 0 goto 7
                other,                                               // 6: r3 = ...
                insn(CLASS_JMP | JMP_CALL, 0, 0, 0, helper),         // 7: call
                insn(CLASS_LDX | MODE_MEM | SIZE_DW, 4, 10, -16, 0), // 8: r4 = *(r10 -16)
                insn(LDXW, 5, 6, 4, 0),                              // 9: r5 = data_end (r6: ctx)
                insn(CLASS_ALU64 | OP_SUB | SRC_X, 5, 4, 0, 0),      // 10: r5 -= r4
                insn(EXIT, 0, 0, 0, 0),
            ])
        };
        let found = |f: &Function| {
            let walk = |o| gates_in_order(f, Entry::Main(Some(&XDP)), known, o);
            let (a, b) = (walk(Order::LastFirst), walk(Order::FirstFirst));
            assert_eq!(a, b, "the walk's order");
            a.into_iter().map(|g| g.insn).collect::<Vec<_>>()
        };
        let with_ctx = |mut f: Function| {
            f.insns.insert(0, insn(CLASS_ALU64 | OP_MOV | SRC_X, 6, 1, 0, 0)); // r6 = r1
            f
        };
        // (the packet's start against 0 is a gate of its own, on every way)
        let gate = ["r5 -= r4", "if r2 == 0x0 goto pc+1"];
        let same = insn(CLASS_ALU64 | OP_ADD, 3, 0, 0, 0); // r3 += 0: a stack pointer still
        let reloaded = insn(CLASS_LDX | MODE_MEM | SIZE_DW, 3, 10, -24, 0); // not known
        let from_ctx = insn(LDXW, 3, 1, 16, 0); // not known, no stack pointer
        // bpf_probe_read_kernel (113) takes r1-r3: r3 = r10 - 8 forgets what is above -8 only
        assert_eq!(found(&with_ctx(f(same, 113))), gate);
        assert_eq!(found(&with_ctx(f(reloaded, 113))), ["if r2 == 0x0 goto pc+1"]);
        // (a stack pointer on one way, no stack pointer on the other: the join knows neither)
        assert_eq!(found(&with_ctx(f(from_ctx, 113))), ["if r2 == 0x0 goto pc+1"]);
        // bpf_get_prandom_u32 (7) takes none: r3 is no argument
        assert_eq!(found(&with_ctx(f(reloaded, 7))), gate);
    }

    /// Operations the verifier refuses on a pointer whatever the capabilities end the way:
    /// a bitwise operation, a number subtracted from the stack pointer. (A second reviewer's
    /// case: a bitwise operation that gave a number for a register not known but not for a
    /// pointer made the answer depend on the order of the walk.)
    #[test]
    fn refused_operations_on_pointers_end_the_way() {
        use crate::model::Reloc;
        let both = |f: &Function| {
            let walk = |o| gates_in_order(f, Entry::Main(Some(&XDP)), DATA, o);
            let (a, b) = (walk(Order::LastFirst), walk(Order::FirstFirst));
            assert_eq!(a, b, "the walk's order");
            a.into_iter().map(|g| g.insn).collect::<Vec<_>>()
        };
        let mut f = function(vec![
            insn(LDXW, 0, 1, 16, 0),                         // 0: r0: not known
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 3, 10, 0, 0), // 1: r3 = r10
            insn(CLASS_JMP | JMP_JEQ, 0, 0, 1, 0),           // 2: if r0 == 0 goto 4
            insn(LDXW, 3, 1, 12, 0),                         // 3: r3: not known
            insn(CLASS_ALU64 | 0x50, 3, 0, 0, 7),            // 4: r3 &= 7
            insn(LD_IMM64, 6, 0, 0, 0),                      // 5: r6 = &global
            insn(0, 0, 0, 0, 0),                             // 6
            insn(CLASS_ALU64 | OP_SUB | SRC_X, 6, 3, 0, 0),  // 7: r6 -= r3
            insn(CLASS_JMP | JMP_JGT, 6, 0, 0, 0),           // 8: r6 > 0
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 2, 10, 0, 0), // 9: r2 = r10
            insn(CLASS_ALU64 | OP_SUB, 2, 0, 0, 8),          // 10: r2 -= 8: refused
            insn(CLASS_JMP | JMP_JGT, 2, 0, 0, 0),           // 11: not reached
            insn(EXIT, 0, 0, 0, 0),
        ]);
        f.relocs = vec![Reloc { insn: 5, target: RelocTarget::Map(0) }];
        assert_eq!(both(&f), ["if r6 > 0x0 goto pc+0"]);
    }

    /// The reviewer's case: the packet's start kept on the stack, lost to a call that may write
    /// it, reloaded: a register not tracked, ordered against the packet's end in 64 bits, may
    /// be the packet's start (no gate); in 32 bits it is refused whatever it is.
    #[test]
    fn a_register_not_tracked_against_the_packets_end() {
        let f = |class: u8| {
            function(vec![
                insn(LDXW, 7, 1, 4, 0),                    // r7 = data_end
                insn(CLASS_ST | MODE_MEM, 10, 0, -8, 0),   // *(u32 *)(r10 -8) = 0
                insn(LDXW, 4, 10, -8, 0),                  // r4: not known
                insn(class | JMP_JGT | SRC_X, 4, 7, 0, 0), // if r4 > r7
                insn(class | JMP_JGT | SRC_X, 7, 4, 0, 0), // if r7 > r4
                insn(EXIT, 0, 0, 0, 0),
            ])
        };
        assert!(gates(&f(CLASS_JMP), Some(&XDP), Known::NONE).is_empty());
        let in_32 = gates(&f(CLASS_JMP32), Some(&XDP), Known::NONE).into_iter().map(|g| g.insn).collect::<Vec<_>>();
        assert_eq!(in_32, ["if w4 > w7 goto pc+0", "if w7 > w4 goto pc+0"]);
    }

    #[test]
    fn a_global_datas_address_is_a_map_value_pointer() {
        use crate::model::Reloc;
        // r1 = &global (map 0: .data); w2 = w1; r3 = &map (map 1: a map's fd); w4 = w3
        let mut f = function(vec![
            insn(LD_IMM64, 1, 0, 0, 0),
            insn(0, 0, 0, 0, 0),
            insn(CLASS_ALU | OP_MOV | SRC_X, 2, 1, 0, 0),
            insn(LD_IMM64, 3, 0, 0, 0),
            insn(0, 0, 0, 0, 0),
            insn(CLASS_ALU | OP_MOV | SRC_X, 4, 3, 0, 0),
            insn(EXIT, 0, 0, 0, 0),
        ]);
        f.relocs = vec![Reloc { insn: 0, target: RelocTarget::Map(0) }, Reloc { insn: 3, target: RelocTarget::Map(1) }];
        let found = |maps: &[MapShape]| {
            gates(&f, None, Known { maps, reads: &[], helper_args: &[] })
                .into_iter()
                .map(|g| g.insn)
                .collect::<Vec<_>>()
        };
        let data = MapShape { global_data: true, ..MapShape::default() };
        assert_eq!(found(&[data, MapShape::default()]), ["w2 = w1"]);
        // (not global data: not tracked)
        assert!(found(&[MapShape::default(), MapShape::default()]).is_empty());
    }

    #[test]
    fn a_subprogram_knows_its_frame_pointer_not_its_arguments() {
        let mut f = function(vec![
            insn(LDXW, 2, 1, 0, 0),                          // 0: r2 = *(u32 *)(r1 + 0)
            insn(LDXW, 3, 1, 4, 0),                          // 1: r3 = *(u32 *)(r1 + 4)
            insn(CLASS_ALU64 | OP_SUB | SRC_X, 3, 2, 0, 0),  // 2: r3 -= r2: r1 not known
            insn(CLASS_ALU | OP_MOV | SRC_X, 4, 10, 0, 0),   // 3: w4 = w10
            insn(CLASS_ALU64 | OP_MOV, 0, 0, 0, 0),          // 4: r0 = 0
            insn(CLASS_JMP | 0x10, 3, 0, 2, 0),              // 5: if r3 == 0 goto 8 (not known)
            insn(CLASS_ALU64 | OP_MOV, 0, 0, 0, 8),          // 6: r0 = 8
            insn(CLASS_ALU | OP_MOV | SRC_X, 7, 10, 0, 0),   // 7: w7 = w10 (on one way)
            insn(CLASS_ALU64 | OP_MOV | SRC_X, 6, 10, 0, 0), // 8: r6 = r10
            insn(CLASS_ALU64 | OP_ADD | SRC_X, 6, 0, 0, 0),  // 9: r6 += r0: differing constants
            insn(EXIT, 0, 0, 0, 0),
        ]);
        let found = |g: Vec<GateSite>| g.into_iter().map(|g| g.insn).collect::<Vec<_>>();
        // a program's main function: r1 the context
        assert_eq!(found(gates(&f, Some(&XDP), Known::NONE)), ["r3 -= r2", "w4 = w10", "w7 = w10", "r6 += r0"]);
        // a global subprogram: walked on its own, both ways
        assert_eq!(found(subprogram_gates(&f, Known::NONE)), ["w4 = w10", "w7 = w10", "r6 += r0"]);
        // a static one: a caller's constant argument may leave one way only, so no differing
        // constants
        f.global = false;
        assert_eq!(found(subprogram_gates(&f, Known::NONE)), ["w4 = w10", "w7 = w10"]);
    }

    /// Random small programs (jumps anywhere, loops, comparisons and NULL checks, ld_imm64
    /// halves and maps' addresses, packet and context loads, register adds and subtracts,
    /// 32-bit operations, sign-extending copies, negations, stores and loads of 1-8 bytes on the
    /// stack, map lookups and helpers that read stack buffers, differing constants): the gates
    /// found do not depend on the order in which blocks are walked, and every kind of gate is
    /// among them.
    #[test]
    fn the_answer_does_not_depend_on_the_order_of_the_walk() {
        let maps = [
            MapShape { global_data: true, key_size: 4, value_size: 16 },
            MapShape { global_data: false, key_size: 12, value_size: 16 },
        ];
        let r = crate::rules::rules();
        let known = Known { maps: &maps, reads: &r.verifier.stack_read, helper_args: &r.enums.helper_args };
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut differ = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..300_000 {
            let len = 3 + rnd(14) as usize;
            let mut v = Vec::new();
            while v.len() < len {
                let (d, s) = (rnd(6) as u8, rnd(6) as u8);
                let off = rnd(len as u64 + 2) as i16 - (v.len() as i16) - 1;
                let slot = -8 * (1 + rnd(3) as i16);
                v.push(match rnd(19) {
                    0 | 1 => insn(LDXW, d, 1, [0, 4, 8, 16][rnd(4) as usize], 0),
                    // stores and loads of 1-8 bytes, at slots and between them
                    14 => {
                        let size = [SIZE_DW, SIZE_W, 0x08, 0x10][rnd(4) as usize];
                        let at = slot + [0, 0, 4, 1][rnd(4) as usize];
                        [
                            insn(CLASS_STX | MODE_MEM | size, 10, s, at, 0),
                            insn(CLASS_ST | MODE_MEM | size, 10, 0, at, 0),
                        ][rnd(2) as usize]
                    }
                    15 => {
                        let size = [SIZE_DW, SIZE_DW, SIZE_W, 0x10][rnd(4) as usize];
                        insn(CLASS_LDX | MODE_MEM | size, d, 10, slot + [0, 0, 4][rnd(3) as usize], 0)
                    }
                    16 => insn(CLASS_ALU64 | OP_MOV | SRC_X, d, 10, 0, 0),
                    17 => insn(CLASS_JMP | JMP_CALL, 0, 0, 0, FUNC_MAP_LOOKUP_ELEM),
                    18 => insn(CLASS_ALU64 | OP_MOV, d, 0, 0, 8 * rnd(3) as i32),
                    2 | 3 => insn(CLASS_ALU64 | [OP_ADD, OP_SUB][rnd(2) as usize] | SRC_X, d, s, 0, 0),
                    // copies, sign-extending copies, negations
                    4 => [
                        insn(CLASS_ALU64 | OP_MOV | SRC_X, d, s, 0, 0),
                        insn(CLASS_ALU64 | OP_MOV | SRC_X, d, s, 32, 0),
                        insn(CLASS_ALU64 | OP_NEG, d, 0, 0, 0),
                    ][rnd(3) as usize],
                    5 => insn(CLASS_ALU64 | OP_MOV, d, 0, 0, rnd(3) as i32),
                    // a number added, subtracted, a bitwise and
                    6 => insn(CLASS_ALU64 | [OP_ADD, OP_SUB, 0x50][rnd(3) as usize], d, 0, 0, rnd(3) as i32),
                    // comparisons: of registers, against 0 or a number, in 64 or 32 bits
                    7 | 8 => [
                        insn(CLASS_JMP | JMP_JEQ | SRC_X, d, s, off, 0),
                        insn(CLASS_JMP | JMP_JGT | SRC_X, d, s, off, 0),
                        insn(CLASS_JMP32 | JMP_JGT | SRC_X, d, s, off, 0),
                        insn(CLASS_JMP | JMP_JEQ, d, 0, off, 0),
                        insn(CLASS_JMP | JMP_JNE, d, 0, off, 0),
                        insn(CLASS_JMP | JMP_JGT, d, 0, off, 5),
                    ][rnd(6) as usize],
                    9 => insn(CLASS_JMP | JMP_JA, 0, 0, off, 0),
                    10 => {
                        // 32-bit: subtractions, copies, additions, a bitwise operation, a negation
                        let (op, x) = [
                            (OP_SUB, SRC_X),
                            (OP_SUB, 0),
                            (OP_MOV, SRC_X),
                            (OP_ADD, SRC_X),
                            (0x50, SRC_X),
                            (OP_NEG, 0),
                        ][rnd(6) as usize];
                        insn(CLASS_ALU | op | x, d, s * (x >> 3), 0, if x == 0 { rnd(3) as i32 } else { 0 })
                    }
                    11 => insn(EXIT, 0, 0, 0, 0),
                    // helpers: a lookup, an update (they read a key, a value), a ringbuf output
                    // (it reads a buffer the size of r3), one that reads nothing
                    12 => insn(CLASS_JMP | JMP_CALL, 0, 0, 0, [1, 2, 130, 5][rnd(4) as usize]),
                    // a number, or a map value's address (global data)
                    _ => insn(LD_IMM64, d, [0, PSEUDO_MAP_VALUE][rnd(2) as usize], 0, 1),
                });
            }
            // most registers set first (reading one no instruction has set ends the way): a
            // context field, a number, the frame pointer
            let mut set = Vec::new();
            for r in [0, 2, 3, 4, 5] {
                if rnd(4) != 0 {
                    set.push(match rnd(3) {
                        0 => insn(LDXW, r, 1, [0, 4, 8, 16][rnd(4) as usize], 0),
                        1 => insn(CLASS_ALU64 | OP_MOV, r, 0, 0, 8 * rnd(3) as i32),
                        _ => insn(CLASS_ALU64 | OP_MOV | SRC_X, r, 10, 0, 0),
                    });
                }
            }
            set.extend(v);
            let mut f = function(set);
            // ld_imm64 of a number: some of them a map's address the loader fills in (global
            // data, or a hash map)
            for i in 0..f.insns.len() {
                if f.insns[i].code == LD_IMM64 && f.insns[i].src == 0 && rnd(2) == 0 {
                    f.relocs.push(crate::model::Reloc { insn: i, target: RelocTarget::Map(rnd(2) as usize) });
                }
            }
            let (a, b) = (
                gates_in_order(&f, Entry::Main(Some(&XDP)), known, Order::LastFirst),
                gates_in_order(&f, Entry::Main(Some(&XDP)), known, Order::FirstFirst),
            );
            seen.extend(a.iter().map(|g| g.gate));
            if a != b {
                differ.push(f.insns);
            }
        }
        assert!(differ.is_empty(), "{} programs, e.g. {:?}", differ.len(), differ.first());
        // (the programs meet every gate: none is left out of the comparison)
        assert_eq!(seen.len(), 9, "{seen:?}");
    }

    #[test]
    fn a_join_keeps_what_every_way_agrees_on_and_a_call_clobbers() {
        let f = function(vec![
            insn(LDXW, 0, 1, 16, 0),                        // r0: not known
            insn(LDXW, 2, 1, 0, 0),                         // 0: r2 = data
            insn(LDXW, 3, 1, 4, 0),                         // 1: r3 = data_end
            insn(CLASS_JMP | 0x10, 0, 0, 1, 0),             // 2: if r0 == 0 goto 4 (r0 not known)
            insn(CLASS_ALU64 | OP_MOV, 3, 0, 0, 7),         // 3: r3 = 7 (on one way only)
            insn(CLASS_ALU64 | OP_SUB | SRC_X, 3, 2, 0, 0), // 4: r3 -= r2: the ways disagree on r3
            insn(LDXW, 4, 1, 0, 0),                         // 5: r4 = data
            insn(CLASS_JMP | 0x10, 0, 0, 0, 0),             // 6: if r0 == 0 goto 7 (both ways agree)
            insn(CLASS_ALU64 | OP_ADD | SRC_X, 4, 3, 0, 0), // 7: r4 += r3 (not a pointer): a gate
            insn(LDXW, 2, 1, 0, 0),                         // 8: r2 = data
            insn(LDXW, 3, 1, 4, 0),                         // 9: r3 = data_end
            insn(CLASS_JMP | JMP_CALL, 0, 0, 0, 5),         // 10: call: r1-r5 clobbered
            insn(CLASS_ALU64 | OP_SUB | SRC_X, 3, 2, 0, 0), // 11: r3 -= r2: unknown
            insn(EXIT, 0, 0, 0, 0),
        ]);
        assert_eq!(
            gates(&f, Some(&XDP), Known::NONE).iter().map(|g| g.insn.as_str()).collect::<Vec<_>>(),
            ["r4 += r3"]
        );
    }
}
