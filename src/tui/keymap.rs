//! The one table of key bindings. Dispatch, the footer hints and the `?` help popup are all
//! generated from [`ACTIONS`], so they can never disagree (gitui's and kdash's lesson).
//!
//! Users rebind actions in the config file (`[dashboard.keys]`, action name → key or
//! comma-separated keys). Mistakes there — an unknown action, a key name that does not parse,
//! two actions on one key — are collected as warnings and shown in the dashboard; they never
//! stop it from starting. `Ctrl-C` always quits, whatever the table says, so a bad config can
//! never trap anyone.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Something the user can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    Filter,
    StatusFilter,
    StatusFilterBack,
    Sort,
    SortReverse,
    Freeze,
    Theme,
    Refresh,
    WindowLonger,
    WindowShorter,
    NextView,
}

/// Where a binding is live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The cards overview.
    Overview,
    /// The metrics view (code reviews, averages, recent pipelines, per day).
    Metrics,
    /// One card's drilldown.
    Card,
    /// The help popup.
    Help,
}

/// One row of the binding table.
#[derive(Debug, Clone, Copy)]
pub struct ActionInfo {
    pub action: Action,
    /// The name used in the config file.
    pub name: &'static str,
    /// The footer's short label ("" = not in the footer).
    pub hint: &'static str,
    /// The help popup's description.
    pub help: &'static str,
    pub defaults: &'static [&'static str],
    pub scopes: &'static [Scope],
    /// Where the footer shows the hint (a subset of `scopes`).
    pub hint_in: &'static [Scope],
}

use Scope::{Card, Help, Metrics, Overview};

const ALL: &[Scope] = &[Overview, Metrics, Card, Help];
const VIEWS: &[Scope] = &[Overview, Metrics, Card];

/// The binding table, in help order.
pub const ACTIONS: &[ActionInfo] = &[
    ActionInfo {
        action: Action::Quit,
        name: "quit",
        hint: "quit",
        help: "Quit (Ctrl-C always quits too)",
        defaults: &["q"],
        scopes: ALL,
        hint_in: ALL,
    },
    ActionInfo {
        action: Action::Help,
        name: "help",
        hint: "help",
        help: "Show or hide this help",
        defaults: &["?"],
        scopes: ALL,
        hint_in: ALL,
    },
    ActionInfo {
        action: Action::Up,
        name: "up",
        hint: "",
        help: "Move up one row (scroll up in the drilldown, metrics and this help)",
        defaults: &["k", "Up"],
        scopes: ALL,
        hint_in: VIEWS,
    },
    ActionInfo {
        action: Action::Down,
        name: "down",
        hint: "",
        help: "Move down one row (scroll down in the drilldown, metrics and this help)",
        defaults: &["j", "Down"],
        scopes: ALL,
        hint_in: VIEWS,
    },
    ActionInfo {
        action: Action::PageUp,
        name: "page_up",
        hint: "",
        help: "Move up one page",
        defaults: &["PageUp"],
        scopes: ALL,
        hint_in: VIEWS,
    },
    ActionInfo {
        action: Action::PageDown,
        name: "page_down",
        hint: "",
        help: "Move down one page",
        defaults: &["PageDown"],
        scopes: ALL,
        hint_in: VIEWS,
    },
    ActionInfo {
        action: Action::Top,
        name: "top",
        hint: "",
        help: "Go to the first row",
        defaults: &["g", "Home"],
        scopes: ALL,
        hint_in: VIEWS,
    },
    ActionInfo {
        action: Action::Bottom,
        name: "bottom",
        hint: "",
        help: "Go to the last row",
        defaults: &["G", "End"],
        scopes: ALL,
        hint_in: VIEWS,
    },
    ActionInfo {
        action: Action::Open,
        name: "open",
        hint: "open",
        help: "Open the selected card",
        defaults: &["Enter"],
        scopes: &[Overview],
        hint_in: &[Overview],
    },
    ActionInfo {
        action: Action::Back,
        name: "back",
        hint: "back",
        help: "Back to the overview / close this help / clear the filter",
        defaults: &["Esc"],
        scopes: ALL,
        hint_in: &[Card, Help],
    },
    ActionInfo {
        action: Action::Filter,
        name: "filter",
        hint: "filter",
        help: "Filter cards by id, title, status, stage, metadata (Enter keeps, Esc clears)",
        defaults: &["/"],
        scopes: &[Overview],
        hint_in: &[Overview],
    },
    ActionInfo {
        action: Action::StatusFilter,
        name: "status_filter",
        hint: "status",
        help: "Show only one status: all, running, failed, queued, completed, cancelled",
        defaults: &["f"],
        scopes: &[Overview],
        hint_in: &[Overview],
    },
    ActionInfo {
        action: Action::StatusFilterBack,
        name: "status_filter_back",
        hint: "",
        help: "Step the status filter back",
        defaults: &["F"],
        scopes: &[Overview],
        hint_in: &[Overview],
    },
    ActionInfo {
        action: Action::Sort,
        name: "sort",
        hint: "sort",
        help: "Sort by the next column (attention, started, id, status, progress, time, cost)",
        defaults: &["s"],
        scopes: &[Overview],
        hint_in: &[Overview],
    },
    ActionInfo {
        action: Action::SortReverse,
        name: "sort_reverse",
        hint: "",
        help: "Reverse the sort order",
        defaults: &["S"],
        scopes: &[Overview],
        hint_in: &[Overview],
    },
    ActionInfo {
        action: Action::Freeze,
        name: "freeze",
        hint: "freeze",
        help: "Freeze / unfreeze the screen (data keeps being collected)",
        defaults: &["p", "Space"],
        scopes: VIEWS,
        hint_in: VIEWS,
    },
    ActionInfo {
        action: Action::Theme,
        name: "theme",
        hint: "theme",
        help: "Next colour theme: dark, light, mono (the footer names the one now on)",
        defaults: &["t"],
        scopes: VIEWS,
        hint_in: VIEWS,
    },
    ActionInfo {
        action: Action::Refresh,
        name: "refresh",
        hint: "refresh",
        help: "Read everything from Redis now, the SCAN for Python-written cards included",
        defaults: &["r"],
        scopes: VIEWS,
        hint_in: VIEWS,
    },
    ActionInfo {
        action: Action::NextView,
        name: "next_view",
        hint: "view",
        help: "Switch view: overview (cards, panels) / metrics (reviews, averages, per day)",
        defaults: &["Tab"],
        scopes: &[Overview, Metrics],
        hint_in: &[Overview, Metrics],
    },
    ActionInfo {
        action: Action::WindowLonger,
        name: "window_longer",
        hint: "window",
        help: "Charts: longer time window (15m, 1h, 6h, 24h, 30d)",
        defaults: &["+", "="],
        scopes: &[Overview],
        hint_in: &[Overview],
    },
    ActionInfo {
        action: Action::WindowShorter,
        name: "window_shorter",
        hint: "",
        help: "Charts: shorter time window",
        defaults: &["-"],
        scopes: &[Overview],
        hint_in: &[Overview],
    },
];

/// Looks an action's row up in the table.
pub fn info(action: Action) -> &'static ActionInfo {
    ACTIONS
        .iter()
        .find(|a| a.action == action)
        .expect("every action has a row in ACTIONS")
}

/// One key, as a config file names it (`q`, `G`, `ctrl-r`, `PageDown`, `Space`, `F1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    /// Only Ctrl and Alt: Shift is part of the character (`G`), not a modifier.
    pub mods: KeyModifiers,
}

impl Key {
    pub const fn plain(code: KeyCode) -> Self {
        Self {
            code,
            mods: KeyModifiers::NONE,
        }
    }

    /// Normalises a terminal key event so that it compares equal to a parsed [`Key`].
    pub fn from_event(e: &KeyEvent) -> Self {
        let mods = e.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        let code = match e.code {
            // Terminals disagree on whether Ctrl-letters arrive upper- or lowercase.
            KeyCode::Char(c) if mods.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            other => other,
        };
        Self { code, mods }
    }

    /// Parses a key name; `None` when it is not one.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = raw;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.chars().count() > 1
                && (lower.starts_with("ctrl-") || lower.starts_with("ctrl+"))
            {
                mods |= KeyModifiers::CONTROL;
                rest = &rest[5..];
            } else if rest.chars().count() > 1
                && (lower.starts_with("alt-") || lower.starts_with("alt+"))
            {
                mods |= KeyModifiers::ALT;
                rest = &rest[4..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_control() && c != ' ' => {
                if mods.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            _ => match rest.to_ascii_lowercase().as_str() {
                "space" => KeyCode::Char(' '),
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" | "ins" => KeyCode::Insert,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pageup" | "pgup" => KeyCode::PageUp,
                "pagedown" | "pgdn" | "pgdown" => KeyCode::PageDown,
                "comma" => KeyCode::Char(','),
                f if f.starts_with('f') => {
                    let n: u8 = f[1..].parse().ok()?;
                    if !(1..=24).contains(&n) {
                        return None;
                    }
                    KeyCode::F(n)
                }
                _ => return None,
            },
        };
        Some(Self { code, mods })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("BackTab"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Delete => f.write_str("Del"),
            KeyCode::Insert => f.write_str("Ins"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The live bindings: the table's defaults with the user's overrides applied.
#[derive(Debug, Clone)]
pub struct KeyMap {
    /// Keys per action, in table order.
    keys: Vec<(Action, Vec<Key>)>,
    /// Problems found in the user's bindings, one line each.
    pub warnings: Vec<String>,
}

impl Default for KeyMap {
    fn default() -> Self {
        Self::from_config(&BTreeMap::new())
    }
}

impl KeyMap {
    /// Builds the bindings from `[dashboard.keys]`. Never fails: every problem becomes a
    /// warning and the affected binding keeps its default (or, for a conflict, the action
    /// earlier in the table keeps the key).
    pub fn from_config(overrides: &BTreeMap<String, String>) -> Self {
        let mut warnings = Vec::new();
        let mut keys: Vec<(Action, Vec<Key>)> = ACTIONS
            .iter()
            .map(|a| {
                let ks = a.defaults.iter().filter_map(|k| Key::parse(k)).collect();
                (a.action, ks)
            })
            .collect();
        for (name, value) in overrides {
            let Some(pos) = ACTIONS.iter().position(|a| a.name == name.as_str()) else {
                let known: Vec<&str> = ACTIONS.iter().map(|a| a.name).collect();
                warnings.push(format!(
                    "dashboard.keys: unknown action {:?} (known: {})",
                    crate::text::sanitize(name),
                    known.join(", ")
                ));
                continue;
            };
            let parts: Vec<&str> = if value.trim() == "," {
                vec![","]
            } else {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            };
            let mut parsed = Vec::new();
            for p in &parts {
                match Key::parse(p) {
                    Some(k) if k == CTRL_C => warnings.push(format!(
                        "dashboard.keys.{name}: Ctrl-C is reserved for quitting; ignored"
                    )),
                    Some(k) => parsed.push(k),
                    None => warnings.push(format!(
                        "dashboard.keys.{name}: {:?} is not a key name; keeping the default",
                        crate::text::sanitize(p)
                    )),
                }
            }
            if parsed.is_empty() {
                if parts.is_empty() {
                    warnings.push(format!("dashboard.keys.{name}: empty; keeping the default"));
                }
                continue;
            }
            keys[pos].1 = parsed;
        }
        // Conflicts: the first action in table order keeps a key that two actions claim in an
        // overlapping scope; the later one loses it.
        for i in 0..keys.len() {
            for j in (i + 1)..keys.len() {
                let overlap = ACTIONS[i]
                    .scopes
                    .iter()
                    .any(|s| ACTIONS[j].scopes.contains(s));
                if !overlap {
                    continue;
                }
                let taken: Vec<Key> = keys[i].1.clone();
                let before = keys[j].1.len();
                keys[j].1.retain(|k| !taken.contains(k));
                if keys[j].1.len() != before {
                    let clash: Vec<String> = taken
                        .iter()
                        .filter(|k| !keys[j].1.contains(k))
                        .map(|k| k.to_string())
                        .collect();
                    warnings.push(format!(
                        "dashboard.keys: {} is bound to both {} and {}; {} keeps it",
                        clash.join(", "),
                        ACTIONS[i].name,
                        ACTIONS[j].name,
                        ACTIONS[i].name
                    ));
                }
                if keys[j].1.is_empty() {
                    warnings.push(format!(
                        "dashboard.keys: {} has no key left",
                        ACTIONS[j].name
                    ));
                }
            }
        }
        Self { keys, warnings }
    }

    /// The action a key event triggers in `scope`, if any. Key releases are ignored.
    pub fn action(&self, event: &KeyEvent, scope: Scope) -> Option<Action> {
        if event.kind == KeyEventKind::Release {
            return None;
        }
        let key = Key::from_event(event);
        if key == CTRL_C {
            return Some(Action::Quit);
        }
        self.keys
            .iter()
            .zip(ACTIONS)
            .find(|((_, ks), info)| info.scopes.contains(&scope) && ks.contains(&key))
            .map(|((a, _), _)| *a)
    }

    /// The key presses one key event stands for. A lone Escape and the key typed after it can
    /// reach the dashboard in one read (a fast typist, a loaded machine, a slow link): their
    /// bytes are then exactly those of Alt and that key (`ESC q`). When that Alt key is bound to
    /// nothing here (or the filter is being typed, where Alt keys do nothing), it is taken as
    /// what it almost certainly was: Escape, then the key.
    pub fn split_escape(&self, event: KeyEvent, scope: Scope, editing: bool) -> Vec<KeyEvent> {
        let alt_char = matches!(event.code, KeyCode::Char(_))
            && event.modifiers.contains(KeyModifiers::ALT)
            && !event.modifiers.contains(KeyModifiers::CONTROL);
        if !alt_char || (!editing && self.action(&event, scope).is_some()) {
            return vec![event];
        }
        let mut key = event;
        key.modifiers.remove(KeyModifiers::ALT);
        let mut esc = event;
        esc.code = KeyCode::Esc;
        esc.modifiers = KeyModifiers::NONE;
        vec![esc, key]
    }

    /// The keys bound to `action`.
    pub fn keys(&self, action: Action) -> &[Key] {
        self.keys
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, k)| k.as_slice())
            .unwrap_or(&[])
    }

    /// `k/↑` style label of an action's keys.
    pub fn label(&self, action: Action) -> String {
        let ks = self.keys(action);
        if ks.is_empty() {
            return "(unbound)".into();
        }
        ks.iter().map(Key::to_string).collect::<Vec<_>>().join("/")
    }

    /// The footer's hints for `scope`: (first key, short label) in table order.
    pub fn hints(&self, scope: Scope) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for info in ACTIONS {
            if info.hint.is_empty() || !info.hint_in.contains(&scope) {
                continue;
            }
            if let Some(k) = self.keys(info.action).first() {
                out.push((k.to_string(), info.hint));
            }
        }
        out
    }

    /// The help popup's rows: (keys, name, description, where) in table order.
    pub fn help_rows(&self) -> Vec<(String, &'static str, &'static str, &'static str)> {
        ACTIONS
            .iter()
            .map(|info| {
                let scope = match info.scopes {
                    s if s == ALL => "everywhere",
                    s if s == VIEWS => "views",
                    [Overview] => "overview",
                    [Overview, Metrics] => "overview, metrics",
                    [Card] => "card",
                    _ => "help",
                };
                (self.label(info.action), info.name, info.help, scope)
            })
            .collect()
    }
}

const CTRL_C: Key = Key {
    code: KeyCode::Char('c'),
    mods: KeyModifiers::CONTROL,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn defaults_have_no_conflicts_and_every_action_a_key() {
        let km = KeyMap::default();
        assert!(km.warnings.is_empty(), "{:?}", km.warnings);
        for info in ACTIONS {
            assert!(!km.keys(info.action).is_empty(), "{}", info.name);
        }
    }

    #[test]
    fn parses_key_names() {
        assert_eq!(Key::parse("q"), Some(Key::plain(KeyCode::Char('q'))));
        assert_eq!(Key::parse("G"), Some(Key::plain(KeyCode::Char('G'))));
        assert_eq!(Key::parse("PageDown"), Some(Key::plain(KeyCode::PageDown)));
        assert_eq!(Key::parse("space"), Some(Key::plain(KeyCode::Char(' '))));
        assert_eq!(
            Key::parse("Ctrl-R"),
            Some(Key {
                code: KeyCode::Char('r'),
                mods: KeyModifiers::CONTROL
            })
        );
        assert_eq!(Key::parse("F5"), Some(Key::plain(KeyCode::F(5))));
        assert_eq!(Key::parse("-"), Some(Key::plain(KeyCode::Char('-'))));
        assert_eq!(Key::parse("ctrl-"), None);
        assert_eq!(Key::parse("F99"), None);
        assert_eq!(Key::parse("nonsense"), None);
    }

    #[test]
    fn shift_is_part_of_the_character() {
        let km = KeyMap::default();
        let g = ev(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(km.action(&g, Scope::Overview), Some(Action::Bottom));
        let c = ev(
            KeyCode::Char('C'),
            KeyModifiers::CONTROL | KeyModifiers::SHIFT,
        );
        assert_eq!(km.action(&c, Scope::Card), Some(Action::Quit));
    }

    #[test]
    fn config_mistakes_are_warnings_not_errors() {
        let cfg: BTreeMap<String, String> = [
            ("quit", "x"),
            ("frobnicate", "z"),
            ("sort", "Hyper-Q"),
            ("theme", "x"),
            ("refresh", "ctrl-c"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let km = KeyMap::from_config(&cfg);
        let w = km.warnings.join("\n");
        assert!(w.contains("unknown action \"frobnicate\""), "{w}");
        assert!(w.contains("\"Hyper-Q\" is not a key name"), "{w}");
        assert!(
            w.contains("x is bound to both quit and theme; quit keeps it"),
            "{w}"
        );
        assert!(w.contains("Ctrl-C is reserved"), "{w}");
        assert_eq!(km.label(Action::Quit), "x");
        assert_eq!(km.label(Action::Sort), "s", "unparseable keeps the default");
        assert_eq!(km.label(Action::Refresh), "r");
        let x = ev(KeyCode::Char('x'), KeyModifiers::NONE);
        assert_eq!(km.action(&x, Scope::Overview), Some(Action::Quit));
        // Ctrl-C always quits.
        let cc = ev(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(km.action(&cc, Scope::Help), Some(Action::Quit));
    }

    #[test]
    fn scopes_limit_where_keys_work() {
        let km = KeyMap::default();
        let enter = ev(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(km.action(&enter, Scope::Overview), Some(Action::Open));
        assert_eq!(km.action(&enter, Scope::Card), None);
        let esc = ev(KeyCode::Esc, KeyModifiers::NONE);
        assert_eq!(km.action(&esc, Scope::Card), Some(Action::Back));
    }

    #[test]
    fn footer_and_help_come_from_the_same_table() {
        let cfg: BTreeMap<String, String> = [("filter".to_string(), "f".to_string())]
            .into_iter()
            .collect();
        let km = KeyMap::from_config(&cfg);
        assert!(
            km.hints(Scope::Overview)
                .contains(&("f".to_string(), "filter"))
        );
        assert!(
            km.help_rows()
                .iter()
                .any(|(k, name, _, _)| k == "f" && *name == "filter")
        );
        assert!(!km.hints(Scope::Card).iter().any(|(_, h)| *h == "filter"));
    }
}
