//! The memory an object's maps declare: what the kernel allocates when it creates them, from
//! their definitions, as rules/kernel/map-memory.toml lays each map type out (a lower bound).
//! `verify` refuses to load an object that declares more than its memory budget.

use crate::model::{Map, Object};
use crate::rules::{MapLayout, Rules};
use crate::vocab::ListKind;

/// BPF_F_NO_PREALLOC (include/uapi/linux/bpf.h): hash elements are allocated as they are added.
const BPF_F_NO_PREALLOC: u32 = 1;

fn round8(n: u64) -> u64 {
    n.div_ceil(8).saturating_mul(8)
}

/// The bytes the kernel allocates when it creates `map`, on a machine with `cpus` possible CPUs.
pub fn map_bytes(map: &Map, cpus: u64, rules: &Rules) -> u64 {
    let table = rules.map_memory();
    let Some(rule) = rules.enums.name_of(ListKind::Maps, map.map_type).and_then(|t| table.rule(t)) else {
        return 0;
    };
    let entries = u64::from(map.max_entries);
    let (key, value) = (u64::from(map.key_size), u64::from(map.value_size));
    let per_value = if rule.percpu { round8(value).saturating_mul(cpus) } else { round8(value) };
    match rule.layout {
        MapLayout::Values => entries.saturating_mul(per_value),
        MapLayout::Elements if map.map_flags & BPF_F_NO_PREALLOC != 0 => 0,
        MapLayout::Elements => {
            entries.saturating_mul(table.element_overhead.saturating_add(round8(key)).saturating_add(per_value))
        }
        MapLayout::Pointers => entries.saturating_mul(8),
        MapLayout::Bytes => entries,
        MapLayout::Queue => entries.saturating_add(1).saturating_mul(value),
        MapLayout::Bits => entries / 8,
        MapLayout::Lazy => 0,
    }
}

/// What an object's maps declare in all (every map is created, whichever programs load), and
/// the map that declares most, with its bytes.
pub fn object_bytes<'o>(obj: &'o Object, cpus: u64, rules: &Rules) -> (u64, Option<(&'o str, u64)>) {
    let mut total = 0u64;
    let mut largest: Option<(&str, u64)> = None;
    for m in &obj.maps {
        let b = map_bytes(m, cpus, rules);
        total = total.saturating_add(b);
        if largest.is_none_or(|(_, l)| b > l) {
            largest = Some((&m.name, b));
        }
    }
    (total, largest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MapOrigin;
    use crate::rules::rules;

    fn map(ty: &str, key: u32, value: u32, entries: u32, flags: u32) -> Map {
        Map {
            name: ty.into(),
            map_type: rules().enums.value_of(ListKind::Maps, ty).unwrap(),
            key_size: key,
            value_size: value,
            max_entries: entries,
            map_flags: flags,
            pinning: 0,
            origin: MapOrigin::Btf,
            section: ".maps".into(),
            inner: None,
            struct_ops: None,
            btf_special_fields: Vec::new(),
            btf_key_value: false,
            variables: false,
        }
    }

    #[test]
    fn layouts() {
        let r = rules();
        // two 2 GiB arrays: 4 GiB
        assert_eq!(map_bytes(&map("array", 4, 1 << 20, 2048, 0), 2, r), 2 << 30);
        // values rounded up to 8 bytes, per CPU for percpu types
        assert_eq!(map_bytes(&map("array", 4, 5, 10, 0), 2, r), 80);
        assert_eq!(map_bytes(&map("percpu_array", 4, 5, 10, 0), 4, r), 320);
        // hash elements: 48 + key + value, preallocated unless BPF_F_NO_PREALLOC
        assert_eq!(map_bytes(&map("hash", 4, 8, 100, 0), 2, r), 100 * (48 + 8 + 8));
        assert_eq!(map_bytes(&map("hash", 4, 8, 100, BPF_F_NO_PREALLOC), 2, r), 0);
        assert_eq!(map_bytes(&map("ringbuf", 0, 0, 1 << 24, 0), 2, r), 1 << 24);
        assert_eq!(map_bytes(&map("prog_array", 4, 4, 16, 0), 2, r), 128);
        assert_eq!(map_bytes(&map("queue", 0, 8, 3, 0), 2, r), 32);
        assert_eq!(map_bytes(&map("sk_storage", 4, 8, 0, BPF_F_NO_PREALLOC), 2, r), 0);
        // no overflow
        assert_eq!(map_bytes(&map("percpu_hash", u32::MAX, u32::MAX, u32::MAX, 0), u64::MAX, r), u64::MAX);
    }
}
