//! The log pane's state: a bounded buffer with follow, scroll, wrap, timestamps, a search that
//! highlights, and a filter. Everything here is pure; the pane renders what [`LogBuffer::window`]
//! returns.

use super::data::LogLine;
use std::collections::VecDeque;

/// Lines kept per stream unless `--log-lines` says otherwise.
pub const DEFAULT_CAPACITY: usize = 5_000;

#[derive(Debug, Clone)]
pub struct LogBuffer {
    lines: VecDeque<LogLine>,
    capacity: usize,
    /// Lines dropped from the front since the stream started (shown so nobody thinks they are all).
    pub dropped: u64,
    /// New lines scroll into view; turned off when the user scrolls up.
    pub follow: bool,
    /// Visible lines between the bottom of the view and the newest (filtered) line.
    scroll: usize,
    pub wrap: bool,
    pub timestamps: bool,
    /// Highlighted, case-insensitive.
    pub search: String,
    /// Only lines containing this (case-insensitive) are shown.
    pub filter: String,
    /// Stream notes (container replaced, stream ended) shown in the pane's title.
    pub note: Option<String>,
}

/// What one frame of the pane shows: lines oldest first, each with its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowLine<'a> {
    pub timestamp: Option<&'a str>,
    pub stderr: bool,
    pub text: &'a str,
}

impl LogBuffer {
    pub fn new(capacity: usize) -> LogBuffer {
        LogBuffer {
            lines: VecDeque::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
            dropped: 0,
            follow: true,
            scroll: 0,
            wrap: false,
            timestamps: false,
            search: String::new(),
            filter: String::new(),
            note: None,
        }
    }

    /// Empties the buffer for a new stream, keeping the view settings.
    pub fn reset(&mut self) {
        self.lines.clear();
        self.dropped = 0;
        self.scroll = 0;
        self.follow = true;
        self.note = None;
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn push(&mut self, lines: impl IntoIterator<Item = LogLine>) {
        let mut added = 0;
        for line in lines {
            if self.lines.len() == self.capacity {
                self.lines.pop_front();
                self.dropped += 1;
            }
            if self.shows(&line) {
                added += 1;
            }
            self.lines.push_back(line);
        }
        if !self.follow {
            // Keep the lines the user is reading where they are.
            self.scroll = (self.scroll + added).min(self.visible_count().saturating_sub(1));
        }
    }

    fn shows(&self, line: &LogLine) -> bool {
        self.filter.is_empty() || contains_ignore_case(&line.text, &self.filter)
    }

    fn visible(&self) -> impl DoubleEndedIterator<Item = &LogLine> {
        self.lines.iter().filter(|l| self.shows(l))
    }

    pub fn visible_count(&self) -> usize {
        if self.filter.is_empty() {
            self.lines.len()
        } else {
            self.visible().count()
        }
    }

    pub fn scroll_up(&mut self, n: usize) {
        let max = self.visible_count().saturating_sub(1);
        self.scroll = (self.scroll + n).min(max);
        if self.scroll > 0 {
            self.follow = false;
        }
    }

    pub fn scroll_down(&mut self, n: usize) {
        self.scroll = self.scroll.saturating_sub(n);
    }

    pub fn top(&mut self) {
        self.scroll = self.visible_count().saturating_sub(1);
        self.follow = false;
    }

    /// End: to the newest line and follow again.
    pub fn bottom(&mut self) {
        self.scroll = 0;
        self.follow = true;
    }

    pub fn toggle_follow(&mut self) {
        if self.follow {
            self.follow = false;
        } else {
            self.bottom();
        }
    }

    pub fn set_filter(&mut self, filter: String) {
        self.filter = filter;
        self.scroll = 0;
    }

    /// Scrolls to the next line (older with `backwards`) matching the search, from the line at
    /// the bottom of the view. Returns false when nothing matches.
    pub fn jump_to_match(&mut self, backwards: bool) -> bool {
        if self.search.is_empty() {
            return false;
        }
        let total = self.visible_count();
        let from_bottom: Vec<bool> = self
            .visible()
            .rev()
            .map(|l| contains_ignore_case(&l.text, &self.search))
            .collect();
        let target = if backwards {
            (self.scroll + 1..total).find(|i| from_bottom[*i])
        } else {
            (0..self.scroll).rev().find(|i| from_bottom[*i])
        };
        match target {
            Some(i) => {
                self.scroll = i;
                self.follow = i == 0 && self.follow;
                true
            }
            None => false,
        }
    }

    /// Count of visible lines matching the search.
    pub fn matches(&self) -> usize {
        if self.search.is_empty() {
            return 0;
        }
        self.visible()
            .filter(|l| contains_ignore_case(&l.text, &self.search))
            .count()
    }

    /// The lines that fill `height` rows of `width` columns, oldest first, ending `scroll`
    /// lines above the newest. With wrap on, long lines take several rows.
    pub fn window(&self, width: u16, height: u16) -> Vec<WindowLine<'_>> {
        let height = usize::from(height);
        let mut rows = 0;
        let mut out = Vec::new();
        for line in self.visible().rev().skip(self.scroll) {
            if rows >= height {
                break;
            }
            let shown = WindowLine {
                timestamp: self
                    .timestamps
                    .then_some(line.timestamp.as_deref())
                    .flatten(),
                stderr: line.stderr,
                text: line.text.as_str(),
            };
            rows += if self.wrap {
                row_count(&shown, width)
            } else {
                1
            };
            out.push(shown);
        }
        out.reverse();
        out
    }
}

/// Rows a line takes when wrapped at `width` columns (at least one).
pub fn row_count(line: &WindowLine<'_>, width: u16) -> usize {
    let chars = line.text.chars().count() + line.timestamp.map_or(0, |t| t.chars().count() + 1);
    chars.div_ceil(usize::from(width.max(1))).max(1)
}

pub fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if haystack.is_ascii() && needle.is_ascii() {
        let n = needle.as_bytes();
        return haystack
            .as_bytes()
            .windows(n.len())
            .any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// Byte ranges of `needle` in `haystack`, ignoring ASCII case (for highlighting).
pub fn match_ranges(haystack: &str, needle: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if needle.is_empty() || needle.len() > haystack.len() {
        return out;
    }
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    let mut i = 0;
    while i + n.len() <= h.len() {
        if h[i..i + n.len()].eq_ignore_ascii_case(n)
            && haystack.is_char_boundary(i)
            && haystack.is_char_boundary(i + n.len())
        {
            out.push((i, i + n.len()));
            i += n.len();
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogLine {
        LogLine {
            timestamp: Some("2026-11-27T02:00:00Z".into()),
            stderr: false,
            text: text.into(),
        }
    }

    fn texts(b: &LogBuffer, h: u16) -> Vec<String> {
        b.window(80, h).iter().map(|l| l.text.to_string()).collect()
    }

    #[test]
    fn the_buffer_is_bounded_and_counts_what_it_dropped() {
        let mut b = LogBuffer::new(3);
        b.push((0..10).map(|i| line(&format!("line {i}"))));
        assert_eq!(b.len(), 3);
        assert_eq!(b.dropped, 7);
        assert_eq!(texts(&b, 10), ["line 7", "line 8", "line 9"]);
    }

    #[test]
    fn scrolling_up_stops_follow_and_keeps_the_view_still() {
        let mut b = LogBuffer::new(100);
        b.push((0..10).map(|i| line(&format!("l{i}"))));
        assert_eq!(texts(&b, 2), ["l8", "l9"]);
        b.scroll_up(3);
        assert!(!b.follow);
        assert_eq!(texts(&b, 2), ["l5", "l6"]);
        b.push([line("l10"), line("l11")]);
        assert_eq!(
            texts(&b, 2),
            ["l5", "l6"],
            "new lines must not move the view"
        );
        b.bottom();
        assert!(b.follow);
        assert_eq!(texts(&b, 2), ["l10", "l11"]);
        b.push([line("l12")]);
        assert_eq!(texts(&b, 2), ["l11", "l12"]);
    }

    #[test]
    fn filter_hides_lines_and_search_jumps_between_matches() {
        let mut b = LogBuffer::new(100);
        b.push(["GET /a", "error: x", "GET /b", "error: y", "GET /c"].map(line));
        b.set_filter("get".into());
        assert_eq!(texts(&b, 10), ["GET /a", "GET /b", "GET /c"]);
        b.set_filter(String::new());
        b.search = "ERROR".into();
        assert_eq!(b.matches(), 2);
        assert!(b.jump_to_match(true));
        assert_eq!(texts(&b, 1), ["error: y"]);
        assert!(b.jump_to_match(true));
        assert_eq!(texts(&b, 1), ["error: x"]);
        assert!(!b.jump_to_match(true), "no older match");
        assert!(b.jump_to_match(false));
        assert_eq!(texts(&b, 1), ["error: y"]);
    }

    #[test]
    fn wrapped_lines_take_several_rows() {
        let mut b = LogBuffer::new(100);
        b.push([line("short"), line(&"x".repeat(30)), line("last")]);
        b.wrap = true;
        // Width 10: "last" 1 row, 30 x's 3 rows: a 4-row window holds those two only.
        let w: Vec<_> = b.window(10, 4).iter().map(|l| l.text.len()).collect();
        assert_eq!(w, [30, 4]);
        b.timestamps = true;
        assert_eq!(
            row_count(&b.window(10, 1)[0], 10),
            3,
            "timestamp counts toward the width"
        );
    }

    #[test]
    fn highlight_ranges_ignore_case() {
        assert_eq!(match_ranges("Error and ERROR", "error"), [(0, 5), (10, 15)]);
        assert!(contains_ignore_case("Ünïcode Error", "error"));
        assert!(match_ranges("abc", "").is_empty());
    }
}
