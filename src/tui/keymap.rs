//! The one key map: input handling looks keys up here, and the help popup and the hint bar are
//! generated from it, so they cannot drift apart.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key does; the app's update function gives each its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Quit,
    Help,
    Back,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Logs,
    Filter,
    SortNext,
    SortReverse,
    SyncAll,
    SyncTenant,
    Restart,
    Suspend,
    Resume,
    NextTab,
    PrevTab,
    Follow,
    Wrap,
    Timestamps,
    Search,
    LogFilter,
    NextMatch,
    PrevMatch,
    Activity,
    /// Detail tab by number, 1 = Overview.
    GoTab(u8),
    /// Mouse capture on/off (off lets the terminal select and copy text).
    Mouse,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Table,
    Detail,
    Logs,
    Activity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn ch(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}

const fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

impl Key {
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "S-Tab".into(),
            other => format!("{other:?}"),
        };
        if self.ctrl { format!("C-{base}") } else { base }
    }

    fn matches(&self, event: &KeyEvent) -> bool {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        // Terminals report Shift with upper-case letters or not; the character decides.
        self.code == event.code && self.ctrl == ctrl
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [Key],
    pub act: Act,
    pub help: &'static str,
    /// Shown in the hint bar (the help popup shows every binding).
    pub hint: bool,
}

const fn bind(keys: &'static [Key], act: Act, help: &'static str, hint: bool) -> Binding {
    Binding {
        keys,
        act,
        help,
        hint,
    }
}

/// Keys for moving through a list; shared by every scope.
const MOVE: &[Binding] = &[
    bind(&[ch('k'), code(KeyCode::Up)], Act::Up, "up", false),
    bind(&[ch('j'), code(KeyCode::Down)], Act::Down, "down", false),
    bind(
        &[code(KeyCode::PageUp), ctrl('b')],
        Act::PageUp,
        "page up",
        false,
    ),
    bind(
        &[code(KeyCode::PageDown), ctrl('f')],
        Act::PageDown,
        "page down",
        false,
    ),
    bind(&[code(KeyCode::Home), ch('g')], Act::Top, "first", false),
];

const GLOBAL: &[Binding] = &[
    bind(&[ch('?')], Act::Help, "help", true),
    bind(&[ch('q'), ctrl('c')], Act::Quit, "quit", true),
    bind(&[ch('m')], Act::Mouse, "mouse on/off (off: copy)", false),
];

const TABLE: &[Binding] = &[
    bind(&[code(KeyCode::Enter)], Act::Open, "details", true),
    bind(&[ch('l')], Act::Logs, "logs", true),
    bind(&[ch('/')], Act::Filter, "filter", true),
    bind(&[ch('a')], Act::Activity, "activity log", false),
    bind(&[ch('o')], Act::SortNext, "sort by next column", true),
    bind(
        &[ch('O')],
        Act::SortReverse,
        "reverse the sort order",
        false,
    ),
    bind(&[ch('S')], Act::SyncAll, "sync all now", true),
    bind(&[ch('s')], Act::SyncTenant, "sync this tenant now", true),
    bind(&[ch('R')], Act::Restart, "restart container (asks)", true),
    bind(
        &[ch('z')],
        Act::Suspend,
        "suspend (says how, in git)",
        false,
    ),
    bind(&[ch('r')], Act::Resume, "resume (says how, in git)", false),
    bind(&[code(KeyCode::End), ch('G')], Act::Bottom, "last", false),
    bind(&[code(KeyCode::Esc)], Act::Back, "clear the filter", false),
];

const DETAIL: &[Binding] = &[
    bind(&[ch('s')], Act::SyncTenant, "sync this tenant now", true),
    bind(&[ch('R')], Act::Restart, "restart container (asks)", true),
    bind(
        &[ch('z')],
        Act::Suspend,
        "suspend (says how, in git)",
        false,
    ),
    bind(&[ch('r')], Act::Resume, "resume (says how, in git)", false),
    bind(&[code(KeyCode::End), ch('G')], Act::Bottom, "last", false),
];

/// Back and tab keys of the detail view, whatever its tab.
const DETAIL_NAV: &[Binding] = &[
    bind(&[code(KeyCode::Esc)], Act::Back, "back", true),
    bind(
        &[code(KeyCode::Tab), code(KeyCode::Right)],
        Act::NextTab,
        "next tab",
        false,
    ),
    bind(
        &[code(KeyCode::BackTab), code(KeyCode::Left)],
        Act::PrevTab,
        "previous tab",
        false,
    ),
];

/// `1`–`5` jump to a detail tab.
const TABS: &[Binding] = &[
    bind(&[ch('1')], Act::GoTab(1), "Overview tab", false),
    bind(&[ch('2')], Act::GoTab(2), "Spec tab", false),
    bind(&[ch('3')], Act::GoTab(3), "Diff tab", false),
    bind(&[ch('4')], Act::GoTab(4), "Events tab", false),
    bind(&[ch('5')], Act::GoTab(5), "Logs tab", false),
];

const LOGS: &[Binding] = &[
    bind(&[ch('s')], Act::Follow, "follow on/off", true),
    bind(
        &[code(KeyCode::End), ch('G')],
        Act::Bottom,
        "newest, follow on",
        false,
    ),
    bind(&[ch('w')], Act::Wrap, "wrap", true),
    bind(&[ch('t')], Act::Timestamps, "timestamps", true),
    bind(&[ch('/')], Act::Search, "search (highlight)", true),
    bind(&[ch('n')], Act::NextMatch, "older match", false),
    bind(&[ch('N')], Act::PrevMatch, "newer match", false),
    bind(&[ch('f')], Act::LogFilter, "filter lines", true),
    bind(&[ch('R')], Act::Restart, "restart container (asks)", false),
];

const ACTIVITY: &[Binding] = &[
    bind(&[code(KeyCode::Esc)], Act::Back, "back", true),
    bind(&[ch('S')], Act::SyncAll, "sync all now", true),
    bind(&[code(KeyCode::End), ch('G')], Act::Bottom, "newest", false),
];

fn scope_bindings(scope: Scope) -> &'static [Binding] {
    match scope {
        Scope::Table => TABLE,
        Scope::Detail => DETAIL,
        Scope::Logs => LOGS,
        Scope::Activity => ACTIVITY,
    }
}

/// Every binding of `scope`: help and quit first (so the hint bar always shows them), then its
/// own, then moving.
pub fn bindings(scope: Scope) -> impl Iterator<Item = &'static Binding> {
    let (nav, tabs): (&'static [Binding], &'static [Binding]) = match scope {
        Scope::Detail | Scope::Logs => (DETAIL_NAV, TABS),
        Scope::Table | Scope::Activity => (&[], &[]),
    };
    GLOBAL
        .iter()
        .chain(nav.iter())
        .chain(scope_bindings(scope).iter())
        .chain(tabs.iter())
        .chain(MOVE.iter())
}

/// What `event` does in `scope`, if anything.
pub fn lookup(scope: Scope, event: &KeyEvent) -> Option<Act> {
    bindings(scope)
        .find(|b| b.keys.iter().any(|k| k.matches(event)))
        .map(|b| b.act)
}

/// `keys: help` pairs for the hint bar.
pub fn hints(scope: Scope) -> Vec<(String, &'static str)> {
    bindings(scope)
        .filter(|b| b.hint)
        .map(|b| (b.keys[0].label(), short(b.help)))
        .collect()
}

/// The help text up to its first parenthesis, for the hint bar.
fn short(help: &'static str) -> &'static str {
    help.split(" (").next().unwrap_or(help)
}

/// Every binding of `scope` for the help popup: all keys, then what they do.
pub fn help(scope: Scope) -> Vec<(String, &'static str)> {
    bindings(scope)
        .map(|b| {
            let keys: Vec<String> = b.keys.iter().map(Key::label).collect();
            (keys.join(" "), b.help)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn no_key_is_bound_twice_in_one_scope() {
        for scope in [Scope::Table, Scope::Detail, Scope::Logs, Scope::Activity] {
            let mut seen = Vec::new();
            for b in bindings(scope) {
                for k in b.keys {
                    assert!(!seen.contains(k), "{scope:?}: {} bound twice", k.label());
                    seen.push(*k);
                }
            }
        }
    }

    #[test]
    fn one_key_means_different_things_in_different_views() {
        let s = key(KeyCode::Char('s'));
        assert_eq!(lookup(Scope::Table, &s), Some(Act::SyncTenant));
        assert_eq!(lookup(Scope::Logs, &s), Some(Act::Follow));
        let shift_s = KeyEvent::new(KeyCode::Char('S'), KeyModifiers::SHIFT);
        assert_eq!(lookup(Scope::Table, &shift_s), Some(Act::SyncAll));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(Scope::Logs, &ctrl_c), Some(Act::Quit));
        assert_eq!(lookup(Scope::Table, &key(KeyCode::Char('c'))), None);
    }

    #[test]
    fn help_and_hints_come_from_the_bindings() {
        let help = help(Scope::Logs);
        assert!(help.contains(&("w".to_string(), "wrap")));
        assert!(help.contains(&("q C-c".to_string(), "quit")));
        let hints = hints(Scope::Table);
        assert!(hints.contains(&("R".to_string(), "restart container")));
        assert!(!hints.iter().any(|(k, _)| k == "O"), "O is in help only");
    }
}
