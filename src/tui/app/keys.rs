//! Key and mouse handling: a key press becomes an action through the key map (or edits the
//! filter while it is being typed), a mouse event becomes the action it stands for (the wheel
//! moves, a click selects, a double click opens), and each action changes the app's state or
//! asks the source tasks for work.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use super::{App, CardView, Click, DOUBLE_CLICK_MS, Row, STATUS_FILTERS, View};
use crate::tui::keymap::Action;
use crate::tui::message::Command;

impl App {
    /// Handles one key press; returns work for the source tasks.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        self.dirty = true;
        self.notices.clear();
        self.flash = None;
        if self.filter_editing {
            return self.edit_filter(key);
        }
        let Some(action) = self.keymap.action(&key, self.scope()) else {
            return Vec::new();
        };
        self.perform(action)
    }

    fn edit_filter(&mut self, key: KeyEvent) -> Vec<Command> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => self.quit = true,
            KeyCode::Char('u') if ctrl => self.set_filter(String::new()),
            KeyCode::Esc => {
                self.filter_editing = false;
                self.set_filter(String::new());
            }
            KeyCode::Enter => self.filter_editing = false,
            KeyCode::Backspace => {
                let mut f = self.filter.clone();
                f.pop();
                self.set_filter(f);
            }
            KeyCode::Up => self.move_by(-1),
            KeyCode::Down => self.move_by(1),
            KeyCode::Char(c)
                if !ctrl
                    && !key.modifiers.contains(KeyModifiers::ALT)
                    && !c.is_control()
                    && self.filter.chars().count() < 200 =>
            {
                let mut f = self.filter.clone();
                f.push(c);
                self.set_filter(f);
            }
            _ => {}
        }
        Vec::new()
    }

    /// A new filter text; the selection stays on its card, or its neighbour if filtered out.
    fn set_filter(&mut self, f: String) {
        self.filter = f;
        self.rows_stale = true;
    }

    /// Steps the quick status filter: all → running → failed → queued → completed →
    /// cancelled → all (`step` 1), or back (`step` -1).
    fn step_status_filter(&mut self, step: i64) {
        let n = STATUS_FILTERS.len() as i64 + 1; // "all" is position 0
        let at = self
            .status_filter
            .and_then(|s| STATUS_FILTERS.iter().position(|x| *x == s))
            .map_or(0, |i| i as i64 + 1);
        let next = (at + step).rem_euclid(n);
        self.status_filter = (next > 0).then(|| STATUS_FILTERS[next as usize - 1]);
        self.rows_stale = true;
    }

    /// Carries out an action as if its key had been pressed.
    pub fn perform(&mut self, action: Action) -> Vec<Command> {
        self.dirty = true;
        if self.help {
            // The renderer clamps the scroll to the text's length.
            let page = self.page.max(1);
            let scroll = &mut self.help_scroll;
            match action {
                Action::Quit => self.quit = true,
                Action::Help | Action::Back => {
                    self.help = false;
                    *scroll = 0;
                }
                Action::Up => *scroll = scroll.saturating_sub(1),
                Action::Down => *scroll = scroll.saturating_add(1),
                Action::PageUp => *scroll = scroll.saturating_sub(page),
                Action::PageDown => *scroll = scroll.saturating_add(page),
                Action::Top => *scroll = 0,
                Action::Bottom => *scroll = usize::MAX / 2,
                _ => {}
            }
            return Vec::new();
        }
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.help = true,
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page.max(1) as i64)),
            Action::PageDown => self.move_by(self.page.max(1) as i64),
            Action::Top => {
                self.move_by(i64::MIN / 2);
                if matches!(self.view, View::Overview) {
                    self.follow_top = true;
                }
            }
            Action::Bottom => self.move_by(i64::MAX / 2),
            Action::Open => return self.open_selected(),
            Action::Back => match self.view {
                View::Card(_) => {
                    self.view = View::Overview;
                    self.card_history = None;
                }
                View::Metrics => self.view = View::Overview,
                View::Overview => {
                    if !self.filter.is_empty() {
                        self.set_filter(String::new());
                    } else if self.status_filter.is_some() {
                        self.status_filter = None;
                        self.rows_stale = true;
                    }
                }
            },
            Action::Filter => self.filter_editing = true,
            Action::StatusFilter => self.step_status_filter(1),
            Action::StatusFilterBack => self.step_status_filter(-1),
            Action::Sort => {
                self.sort = self.sort.next();
                self.reverse = false;
                self.rows_stale = true;
            }
            Action::SortReverse => {
                self.reverse = !self.reverse;
                self.rows_stale = true;
            }
            Action::Freeze => {
                if self.is_frozen() {
                    // The rows index the frozen copy, about to go.
                    self.keep_order_before_replacing();
                    self.frozen = None;
                } else {
                    self.frozen = Some(Box::new(self.freeze()));
                }
                self.rows_stale = true;
            }
            Action::Theme => {
                if self.no_color {
                    self.notices
                        .push("NO_COLOR is set: the theme stays mono".to_owned());
                } else {
                    self.theme = self.theme.next();
                    self.flash = Some(format!(
                        "theme {} · {} switches: {}",
                        self.theme.name,
                        self.keymap.label(Action::Theme),
                        crate::tui::theme::THEMES.join(" → ")
                    ));
                }
            }
            Action::Refresh => return vec![Command::Refresh],
            Action::NextView => {
                self.view = match self.view {
                    View::Overview => View::Metrics,
                    View::Metrics => View::Overview,
                    // Tab is not bound in the drilldown; nothing to switch from there.
                    View::Card(_) => return Vec::new(),
                };
            }
            Action::WindowLonger | Action::WindowShorter => {
                self.window = if action == Action::WindowLonger {
                    self.window.longer()
                } else {
                    self.window.shorter()
                };
                return vec![Command::Window(self.window)];
            }
        }
        Vec::new()
    }

    fn move_by(&mut self, delta: i64) {
        // The renderer clamps the scrolls to what there is to show.
        match &mut self.view {
            View::Card(v) => {
                v.scroll = (v.scroll as i64).saturating_add(delta).max(0) as usize;
                return;
            }
            View::Metrics => {
                self.metrics_scroll =
                    (self.metrics_scroll as i64).saturating_add(delta).max(0) as usize;
                return;
            }
            View::Overview => {}
        }
        let n = self.rows().len() as i64;
        if n == 0 {
            self.selected = 0;
            return;
        }
        self.selected = (self.selected as i64).saturating_add(delta).clamp(0, n - 1) as usize;
        self.follow_top = false;
        self.remember_selection();
    }

    fn open_selected(&mut self) -> Vec<Command> {
        self.rows();
        match self.rows_slice(self.selected, 1).first().copied() {
            Some(Row::Card(_)) => {
                let Some(card) = self.selected_card().cloned() else {
                    return Vec::new();
                };
                let id = card.pipeline.card_id.clone();
                self.view = View::Card(Box::new(CardView {
                    card_id: id.clone(),
                    scroll: 0,
                    last_seen: Some(card),
                }));
                self.card_history = None;
                vec![Command::LoadHistory(id)]
            }
            Some(Row::Malformed(_)) => {
                self.notices.push(
                    "a malformed document has nothing to open; its reason is shown in the row"
                        .into(),
                );
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// Handles one mouse event (only delivered with `dashboard.mouse = true`): the wheel moves
    /// like ↑/↓ (three rows a notch, as terminals scroll) in every view and the help, a left
    /// click on a card row selects it, a second click on the same row within
    /// [`DOUBLE_CLICK_MS`] opens it.
    pub fn handle_mouse(&mut self, m: MouseEvent) -> Vec<Command> {
        const WHEEL_ROWS: usize = 3;
        match m.kind {
            MouseEventKind::ScrollDown => {
                self.notices.clear();
                for _ in 0..WHEEL_ROWS {
                    self.perform(Action::Down);
                }
                Vec::new()
            }
            MouseEventKind::ScrollUp => {
                self.notices.clear();
                for _ in 0..WHEEL_ROWS {
                    self.perform(Action::Up);
                }
                Vec::new()
            }
            MouseEventKind::Down(MouseButton::Left) => self.click(m.column, m.row),
            _ => Vec::new(),
        }
    }

    fn click(&mut self, column: u16, row: u16) -> Vec<Command> {
        let double = self.last_click.is_some_and(|c| {
            c.row == row && (self.now - c.at).num_milliseconds() <= DOUBLE_CLICK_MS
        });
        // A double click is two clicks, not the start of the next one.
        self.last_click = (!double).then_some(Click {
            at: self.now,
            column,
            row,
        });
        if self.help || self.filter_editing || !matches!(self.view, View::Overview) {
            return Vec::new();
        }
        let Some(index) = self.row_at(column, row) else {
            return Vec::new();
        };
        self.dirty = true;
        self.notices.clear();
        self.flash = None;
        self.move_by(index as i64 - self.selected as i64);
        if double {
            return self.open_selected();
        }
        Vec::new()
    }

    /// The index among the rows of the table row drawn at a screen cell, if one is. Data rows
    /// start below the table's top border and its column header.
    fn row_at(&mut self, column: u16, row: u16) -> Option<usize> {
        let area = self.table_area;
        let first = area.y.saturating_add(2);
        let inside = column > area.x
            && column < area.right().saturating_sub(1)
            && row >= first
            && row < area.bottom().saturating_sub(1);
        if !inside {
            return None;
        }
        let index = self.offset + usize::from(row - first);
        (index < self.rows().len()).then_some(index)
    }
}
