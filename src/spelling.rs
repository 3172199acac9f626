//! Suggestions for misspelt names: how many edits apart two words are, and which of a list of
//! known names a word most likely meant.

/// Levenshtein distance: the fewest insertions, deletions and substitutions of characters that
/// turn `a` into `b`.
pub fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate `word` most likely meant, ignoring case: the nearest one (the first of equals),
/// if it is at most 3 edits away, or a quarter of the word's length for a long word.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (distance(&lower, &c.to_ascii_lowercase()), c))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d <= 3.max(word.len() / 4))
        .map(|(_, c)| c)
}

/// The longest start all `words` share (empty for no words).
pub fn common_prefix<'a>(words: &[&'a str]) -> &'a str {
    let Some((first, rest)) = words.split_first() else { return "" };
    rest.iter().fold(*first, |prefix, w| {
        let shared = prefix.char_indices().zip(w.chars()).take_while(|((_, a), b)| a == b).last();
        &prefix[..shared.map_or(0, |((i, c), _)| i + c.len_utf8())]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_and_suggestions() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(closest("privatebpf", ["PrivateUsers", "PrivateBPF"]), Some("PrivateBPF"));
        assert_eq!(
            closest("BPFDelegateComands", ["BPFDelegateCommands", "BPFDelegateMaps"]),
            Some("BPFDelegateCommands")
        );
        assert_eq!(closest("xyz", ["PrivateBPF"]), None);
        assert_eq!(common_prefix(&["BPFDelegateMaps", "BPFDelegatePrograms", "BPFDelegateMaps"]), "BPFDelegate");
        assert_eq!(common_prefix(&["abc", "ab"]), "ab");
        assert_eq!(common_prefix(&["abc", "xbc"]), "");
        assert_eq!(common_prefix(&[]), "");
    }
}
