//! The kernel's ABI numbers the reader and the analysis decode objects with
//! (include/uapi/linux/elf.h, include/uapi/linux/bpf.h, include/uapi/linux/bpf_common.h).
//! They never change. The map types are the kernel's enum values, which rules/kernel/enums.toml
//! also holds: a test checks that the two agree.

/// `e_type` of a relocatable file (what `clang -target bpf -c` writes).
pub const ET_REL: u16 = 1;
/// `e_machine` of a BPF object.
pub const EM_BPF: u16 = 247;

/// `BPF_JMP | BPF_CALL`: a call of a helper, a kfunc or a BPF function.
pub const BPF_JMP_CALL: u8 = 0x85;
/// `BPF_LD | BPF_IMM | BPF_DW`: a 64-bit immediate load (map, function address).
pub const BPF_LD_IMM64: u8 = 0x18;
/// `src_reg` of a call of a BPF function.
pub const BPF_PSEUDO_CALL: u8 = 1;
/// `src_reg` of a call of a kernel function.
pub const BPF_PSEUDO_KFUNC_CALL: u8 = 2;

pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
pub const BPF_MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;
pub const BPF_MAP_TYPE_HASH_OF_MAPS: u32 = 13;
pub const BPF_MAP_TYPE_STRUCT_OPS: u32 = 26;

pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
pub const BPF_F_LINK: u32 = 1 << 13;

/// Bytes of a kernel object name, with its terminating NUL.
pub const BPF_OBJ_NAME_LEN: usize = 16;

/// Whether the ELF header at the start of `b` says: a relocatable file for BPF. Only the
/// identification and `e_type`/`e_machine` are read, in the byte order the identification
/// names; whether the rest is well-formed is the reader's to say.
pub fn is_bpf_object(b: &[u8]) -> bool {
    if b.len() < 20 || &b[..4] != b"\x7fELF" {
        return false;
    }
    let half = |o: usize| match b[5] {
        2 => u16::from_be_bytes([b[o], b[o + 1]]),
        _ => u16::from_le_bytes([b[o], b[o + 1]]),
    };
    half(16) == ET_REL && half(18) == EM_BPF
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::rules;
    use crate::vocab::ListKind;

    #[test]
    fn map_types_agree_with_the_rules() {
        let r = rules();
        for (name, value) in [
            ("array", BPF_MAP_TYPE_ARRAY),
            ("array_of_maps", BPF_MAP_TYPE_ARRAY_OF_MAPS),
            ("hash_of_maps", BPF_MAP_TYPE_HASH_OF_MAPS),
            ("struct_ops", BPF_MAP_TYPE_STRUCT_OPS),
        ] {
            assert_eq!(r.enums.value_of(ListKind::Maps, name), Some(value), "{name}");
        }
    }

    #[test]
    fn a_bpf_object_by_its_header() {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(b"\x7fELF");
        h[5] = 1;
        h[16..18].copy_from_slice(&ET_REL.to_le_bytes());
        h[18..20].copy_from_slice(&EM_BPF.to_le_bytes());
        assert!(is_bpf_object(&h));
        h[5] = 2;
        assert!(!is_bpf_object(&h), "read big-endian it is another machine");
        h[16..18].copy_from_slice(&ET_REL.to_be_bytes());
        h[18..20].copy_from_slice(&EM_BPF.to_be_bytes());
        assert!(is_bpf_object(&h));
        assert!(!is_bpf_object(&h[..19]));
    }
}
