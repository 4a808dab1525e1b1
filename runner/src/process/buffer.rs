//! One stream of a background process, as the agent reads it: the protected text (escapes
//! stripped, secrets redacted) kept as a fixed head plus a ring-buffered tail, addressed
//! by byte offsets into the whole protected stream.
//!
//! Offsets make reads incremental: a reader passes back the offset it got, and gets what
//! came after it exactly once. When the ring has moved past an offset, the read starts at
//! the oldest byte still kept and says how many bytes were lost in between. Memory is
//! bounded by `head + tail` however much the process prints; the totals stay exact.

use execkit_protect::{ceil_boundary, floor_boundary};

/// What a read of one stream returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slice {
    /// The text from the offset on (at most the bytes asked for).
    pub text: String,
    /// Offset to pass next time (the end of `text`).
    pub next: u64,
    /// Bytes between the offset asked for and the first one returned that are no longer
    /// kept (the ring moved past them).
    pub lost: u64,
}

/// Head + ring tail of one protected stream.
#[derive(Debug)]
pub struct StreamBuffer {
    head: String,
    head_cap: usize,
    /// Text after the head; `tail_start` is the stream offset of its first byte.
    tail: String,
    tail_start: u64,
    tail_cap: usize,
    /// Protected bytes ever appended.
    total: u64,
    /// Newlines ever appended.
    lines: u64,
}

impl StreamBuffer {
    /// A buffer that keeps the first `head` and the last `tail` bytes.
    pub fn new(head: usize, tail: usize) -> StreamBuffer {
        StreamBuffer {
            head: String::new(),
            head_cap: head,
            tail: String::new(),
            tail_start: 0,
            tail_cap: tail.max(1),
            total: 0,
            lines: 0,
        }
    }

    /// Appends protected text.
    pub fn push(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.total += text.len() as u64;
        self.lines += memchr::memchr_iter(b'\n', text.as_bytes()).count() as u64;
        let mut rest = text;
        if self.tail.is_empty() && self.tail_start == self.head.len() as u64 {
            let room = self.head_cap.saturating_sub(self.head.len());
            let take = floor_boundary(rest, room);
            self.head.push_str(&rest[..take]);
            rest = &rest[take..];
            self.tail_start = self.head.len() as u64;
        }
        if rest.is_empty() {
            return;
        }
        // Only the last `tail_cap` bytes of a huge push can survive.
        if rest.len() > self.tail_cap {
            let cut = ceil_boundary(rest, rest.len() - self.tail_cap);
            self.tail_start += (self.tail.len() + cut) as u64;
            self.tail.clear();
            rest = &rest[cut..];
        }
        self.tail.push_str(rest);
        if self.tail.len() > self.tail_cap {
            // Drop from the front, twice the excess at once so pushes stay amortised O(1).
            let excess = self.tail.len() - self.tail_cap;
            let cut = ceil_boundary(&self.tail, (excess * 2).min(self.tail.len()));
            self.tail.drain(..cut);
            self.tail_start += cut as u64;
        }
    }

    /// Protected bytes ever appended.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Lines ever appended (newlines).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Bytes held now (never more than head + tail, plus one push's worth of slack).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Up to `max` bytes from stream offset `from` on (cut at a char boundary; at least
    /// one char when anything is there, so a reader always moves forward).
    pub fn read(&self, from: u64, max: usize) -> Slice {
        let from = from.min(self.total);
        let head_len = self.head.len() as u64;
        let (src, start, lost) = if from < head_len {
            (&self.head, from as usize, 0)
        } else if from < self.tail_start {
            (&self.tail, 0, self.tail_start - from)
        } else {
            (&self.tail, (from - self.tail_start) as usize, 0)
        };
        let start = ceil_boundary(src, start);
        let mut end = floor_boundary(src, start.saturating_add(max));
        if end == start && start < src.len() {
            end = ceil_boundary(src, start + 1);
        }
        let text = src[start..end].to_string();
        let base = if std::ptr::eq(src, &self.head) {
            0
        } else {
            self.tail_start
        };
        Slice {
            next: base + end as u64,
            text,
            lost,
        }
    }

    /// The offset of the first kept byte of the line holding `offset` (for scanning a
    /// pattern from the start of a line), not earlier than the oldest byte kept.
    pub fn line_start_before(&self, offset: u64) -> u64 {
        let offset = offset.min(self.total);
        let head_len = self.head.len() as u64;
        let in_head = |upto: usize| {
            memchr::memrchr(b'\n', &self.head.as_bytes()[..upto]).map(|i| i as u64 + 1)
        };
        if offset <= head_len {
            return in_head(offset as usize).unwrap_or(0);
        }
        if offset < self.tail_start {
            return self.tail_start;
        }
        let at = ((offset - self.tail_start) as usize).min(self.tail.len());
        match memchr::memrchr(b'\n', &self.tail.as_bytes()[..at]) {
            Some(i) => self.tail_start + i as u64 + 1,
            None if self.tail_start == head_len => in_head(self.head.len()).unwrap_or(0),
            None => self.tail_start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(b: &StreamBuffer, mut from: u64) -> (String, u64) {
        let mut out = String::new();
        let mut lost = 0;
        loop {
            let s = b.read(from, 7);
            lost += s.lost;
            if s.text.is_empty() {
                return (out, lost);
            }
            out.push_str(&s.text);
            from = s.next;
        }
    }

    #[test]
    fn small_streams_are_kept_whole_and_read_incrementally() {
        let mut b = StreamBuffer::new(16, 16);
        b.push("one\n");
        let s = b.read(0, 100);
        assert_eq!((s.text.as_str(), s.next, s.lost), ("one\n", 4, 0));
        b.push("two\n");
        let s2 = b.read(s.next, 100);
        assert_eq!(s2.text, "two\n");
        assert_eq!(b.read(s2.next, 100).text, "");
    }

    #[test]
    fn a_flood_keeps_head_and_tail_with_exact_totals_and_reports_the_loss() {
        let mut b = StreamBuffer::new(10, 20);
        let mut all = String::new();
        for i in 0..1000 {
            let line = format!("line {i}\n");
            all.push_str(&line);
            b.push(&line);
        }
        assert_eq!(b.total(), all.len() as u64);
        assert_eq!(b.lines(), 1000);
        assert!(b.held() <= 10 + 2 * 20, "held {}", b.held());
        let (text, lost) = read_all(&b, 0);
        assert_eq!(&text[..10], &all[..10]);
        assert!(all.ends_with(&text[10..]));
        assert_eq!(text.len() as u64 + lost, all.len() as u64);
    }

    #[test]
    fn multibyte_text_is_never_split() {
        let mut b = StreamBuffer::new(5, 7);
        for _ in 0..50 {
            b.push("ééé\n");
        }
        let (text, _) = read_all(&b, 0);
        assert!(text.starts_with("éé"));
        // A cursor inside a char is moved to the next boundary.
        let s = b.read(1, 100);
        assert!(s.text.starts_with('é'));
    }

    #[test]
    fn line_start_finds_the_beginning_of_the_current_line() {
        let mut b = StreamBuffer::new(100, 100);
        b.push("abc\ndef");
        assert_eq!(b.line_start_before(6), 4);
        assert_eq!(b.line_start_before(2), 0);
    }
}
