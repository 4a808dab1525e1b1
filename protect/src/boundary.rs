//! Character boundaries near a byte offset: where text may be cut (a window, a kept head or
//! tail, a shown prefix) without splitting a UTF-8 character. One copy for every crate that
//! cuts text (`str::floor_char_boundary` is newer than the workspace's minimum Rust).

/// The largest character boundary of `s` at or below `i` (`s.len()` past the end).
pub fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest character boundary of `s` at or above `i` (`s.len()` past the end).
pub fn ceil_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_round_to_whole_characters() {
        let s = "aé€z"; // 1 + 2 + 3 + 1 bytes
        let floors: Vec<usize> = (0..=8).map(|i| floor_boundary(s, i)).collect();
        let ceils: Vec<usize> = (0..=8).map(|i| ceil_boundary(s, i)).collect();
        assert_eq!(floors, [0, 1, 1, 3, 3, 3, 6, 7, 7]);
        assert_eq!(ceils, [0, 1, 3, 3, 6, 6, 6, 7, 7]);
    }
}
