//! A small builder for hand-made BPF objects (little-endian ELF64, ET_REL, EM_BPF), for the
//! tests' inputs that a compiler will not make: many functions, symbols, relocations, line
//! records, hostile names.

pub const SHT_SYMTAB: u32 = 2;
pub const SHT_REL: u32 = 9;

/// Writes an `n`-byte integer (truncating `v`); does nothing past the end.
pub fn wr(b: &mut [u8], off: usize, n: usize, le: bool, v: u64) {
    let Some(s) = off.checked_add(n).and_then(|e| b.get_mut(off..e)) else { return };
    for i in 0..n {
        let byte = (v >> (8 * i)) as u8;
        if le { s[i] = byte } else { s[n - 1 - i] = byte }
    }
}

pub const SHT_PROGBITS: u32 = 1;
pub const SHT_STRTAB: u32 = 3;
pub const SHF_ALLOC: u64 = 2;
pub const SHF_EXECINSTR: u64 = 4;
pub const SHF_WRITE: u64 = 1;

pub struct BuildSec {
    name: String,
    sh_type: u32,
    flags: u64,
    data: Vec<u8>,
    link: u32,
    info: u32,
    entsize: u64,
}

#[derive(Default)]
pub struct ElfBuilder {
    pub sections: Vec<BuildSec>,
    /// .strtab contents and the symbols (name offset, info, shndx, value, size).
    pub strtab: Vec<u8>,
    pub syms: Vec<(u32, u8, u16, u64, u64)>,
}

impl ElfBuilder {
    pub fn new() -> Self {
        let mut b = ElfBuilder { strtab: vec![0], syms: vec![(0, 0, 0, 0, 0)], ..Default::default() };
        b.section("", 0, 0, Vec::new());
        b
    }
    /// Adds a section; returns its index.
    pub fn section(&mut self, name: &str, sh_type: u32, flags: u64, data: Vec<u8>) -> usize {
        self.sections.push(BuildSec { name: name.into(), sh_type, flags, data, link: 0, info: 0, entsize: 0 });
        self.sections.len() - 1
    }
    pub fn exec(&mut self, name: &str, insns: &[u64]) -> usize {
        self.section(
            name,
            SHT_PROGBITS,
            SHF_ALLOC | SHF_EXECINSTR,
            insns.iter().flat_map(|i| i.to_le_bytes()).collect(),
        )
    }
    pub fn name(&mut self, name: &str) -> u32 {
        let off = self.strtab.len() as u32;
        self.strtab.extend(name.as_bytes());
        self.strtab.push(0);
        off
    }
    /// A global function symbol (STB_GLOBAL, STT_FUNC); returns its symbol index.
    pub fn func(&mut self, name: &str, shndx: usize, value: u64, size: u64) -> u32 {
        let n = self.name(name);
        self.syms.push((n, 0x12, shndx as u16, value, size));
        self.syms.len() as u32 - 1
    }
    /// A global object symbol (STB_GLOBAL, STT_OBJECT).
    pub fn object(&mut self, name: &str, shndx: usize, value: u64, size: u64) -> u32 {
        let n = self.name(name);
        self.syms.push((n, 0x11, shndx as u16, value, size));
        self.syms.len() as u32 - 1
    }
    /// A `.rel<target>` section: (offset, symbol index, type).
    pub fn rel(&mut self, target: usize, relocs: &[(u64, u32, u32)]) {
        let name = format!(".rel{}", self.sections[target].name);
        let data = relocs
            .iter()
            .flat_map(|&(off, sym, ty)| {
                [off.to_le_bytes(), ((u64::from(sym) << 32) | u64::from(ty)).to_le_bytes()].concat()
            })
            .collect();
        let i = self.section(&name, SHT_REL, 0, data);
        self.sections[i].info = target as u32;
        self.sections[i].entsize = 16;
        // link to .symtab is fixed up in build()
        self.sections[i].link = u32::MAX;
    }

    pub fn build(mut self) -> Vec<u8> {
        // .strtab, .symtab (all symbols but the null one are global), .shstrtab
        let strtab = std::mem::take(&mut self.strtab);
        let str_idx = self.section(".strtab", SHT_STRTAB, 0, strtab);
        let symdata: Vec<u8> = self
            .syms
            .iter()
            .flat_map(|&(n, info, shndx, value, size)| {
                let mut e = Vec::with_capacity(24);
                e.extend(n.to_le_bytes());
                e.extend([info, 0]);
                e.extend(shndx.to_le_bytes());
                e.extend(value.to_le_bytes());
                e.extend(size.to_le_bytes());
                e
            })
            .collect();
        let sym_idx = self.section(".symtab", SHT_SYMTAB, 0, symdata);
        self.sections[sym_idx].link = str_idx as u32;
        self.sections[sym_idx].info = 1;
        self.sections[sym_idx].entsize = 24;
        for s in &mut self.sections {
            if s.link == u32::MAX {
                s.link = sym_idx as u32;
            }
        }
        let mut shstr = vec![0u8];
        let mut name_offs = Vec::new();
        for s in &self.sections {
            name_offs.push(if s.name.is_empty() { 0 } else { shstr.len() as u32 });
            if !s.name.is_empty() {
                shstr.extend(s.name.as_bytes());
                shstr.push(0);
            }
        }
        name_offs.push(shstr.len() as u32);
        shstr.extend(b".shstrtab\0");
        let shstr_idx = self.section(".shstrtab", SHT_STRTAB, 0, shstr);

        let mut out = vec![0u8; 64];
        let mut offsets = Vec::new();
        for s in &self.sections {
            while !out.len().is_multiple_of(8) {
                out.push(0);
            }
            offsets.push(out.len() as u64);
            out.extend(&s.data);
        }
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        let shoff = out.len() as u64;
        for (i, s) in self.sections.iter().enumerate() {
            let mut h = Vec::with_capacity(64);
            h.extend(name_offs[i].to_le_bytes());
            h.extend(s.sh_type.to_le_bytes());
            h.extend(s.flags.to_le_bytes());
            h.extend(0u64.to_le_bytes());
            h.extend(if i == 0 { 0 } else { offsets[i] }.to_le_bytes());
            h.extend((s.data.len() as u64).to_le_bytes());
            h.extend(s.link.to_le_bytes());
            h.extend(s.info.to_le_bytes());
            h.extend(if i == 0 { 0u64 } else { 8 }.to_le_bytes());
            h.extend(s.entsize.to_le_bytes());
            out.extend(h);
        }
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2; // ELFCLASS64
        out[5] = 1; // little-endian
        out[6] = 1; // EV_CURRENT
        wr(&mut out, 16, 2, true, 1); // ET_REL
        wr(&mut out, 18, 2, true, 247); // EM_BPF
        wr(&mut out, 20, 4, true, 1);
        wr(&mut out, 40, 8, true, shoff);
        wr(&mut out, 52, 2, true, 64);
        wr(&mut out, 58, 2, true, 64);
        wr(&mut out, 60, 2, true, self.sections.len() as u64);
        wr(&mut out, 62, 2, true, shstr_idx as u64);
        out
    }
}

/// BPF instructions, little-endian encoding.
pub fn insn(code: u8, regs: u8, off: i16, imm: i32) -> u64 {
    u64::from(code) | (u64::from(regs) << 8) | (u64::from(off as u16) << 16) | (u64::from(imm as u32) << 32)
}
pub const EXIT: u64 = 0x95;
pub fn call_helper(id: i32) -> u64 {
    insn(0x85, 0, 0, id)
}
/// bpf-to-bpf call `imm` instructions after the next one.
pub fn call_rel(imm: i32) -> u64 {
    insn(0x85, 0x10, 0, imm)
}

/// A .BTF blob from raw type words and a string section.
pub fn btf_blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let type_len = (types.len() * 4) as u32;
    let mut v = Vec::new();
    v.extend([0x9f, 0xeb, 1, 0]);
    for w in [24, 0, type_len, type_len, strings.len() as u32] {
        v.extend(w.to_le_bytes());
    }
    for t in types {
        v.extend(t.to_le_bytes());
    }
    v.extend(strings);
    v
}

pub fn btf_info(kind: u32, vlen: u32) -> u32 {
    (kind << 24) | vlen
}
