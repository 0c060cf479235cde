//! Colour themes: dark, light and mono, all as named styles so that no render function picks a
//! colour itself.
//!
//! Mono uses no colour at all, only bold, reverse, dim and underline, so that everything still
//! reads on a monochrome terminal and in `NO_COLOR` setups. `NO_COLOR` follows no-color.org:
//! present *and non-empty* means mono (an empty `NO_COLOR=` does not count).

use ratatui::style::{Color, Modifier, Style};

/// The theme names, in the order `t` cycles through them.
pub const THEMES: &[&str] = &["dark", "light", "mono"];

/// Whether the `NO_COLOR` convention asks for no colour, given the variable's value.
pub fn no_color_requested(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// Whether the current process environment asks for no colour.
pub fn no_color_env() -> bool {
    no_color_requested(std::env::var_os("NO_COLOR").as_deref())
}

/// The named styles every render function uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    pub name: &'static str,
    /// Ordinary text.
    pub text: Style,
    /// Labels, units, secondary information.
    pub dim: Style,
    /// Panel borders.
    pub border: Style,
    /// Panel titles.
    pub title: Style,
    /// The title bar of the whole screen.
    pub header: Style,
    /// The selected table row.
    pub selected: Style,
    /// Column headers.
    pub column: Style,
    /// Good: connected, completed, plenty of headroom.
    pub ok: Style,
    /// Running / in progress.
    pub busy: Style,
    /// Attention: queued, little headroom.
    pub warn: Style,
    /// Bad: failed, unreachable, exhausted.
    pub bad: Style,
    /// The FROZEN mark.
    pub frozen: Style,
    /// Banner across the screen when Redis is down.
    pub banner: Style,
    /// Filled part of bars and gauges.
    pub bar: Style,
    /// Charts (sparklines, bar charts).
    pub chart: Style,
    /// Key names in the footer and help.
    pub key: Style,
}

impl Theme {
    /// A theme by name; unknown names give `dark` (the config validator already rejects them).
    pub fn by_name(name: &str) -> Self {
        match name {
            "light" => Self::light(),
            "mono" => Self::mono(),
            _ => Self::dark(),
        }
    }

    /// The theme after this one in [`THEMES`].
    pub fn next(&self) -> Self {
        let i = THEMES.iter().position(|n| *n == self.name).unwrap_or(0);
        Self::by_name(THEMES[(i + 1) % THEMES.len()])
    }

    pub fn dark() -> Self {
        let s = Style::new();
        Self {
            name: "dark",
            text: s.fg(Color::Gray),
            dim: s.fg(Color::DarkGray),
            border: s.fg(Color::DarkGray),
            title: s.fg(Color::Cyan).add_modifier(Modifier::BOLD),
            header: s.fg(Color::Black).bg(Color::Cyan),
            selected: s.bg(Color::Indexed(237)).add_modifier(Modifier::BOLD),
            column: s.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ok: s.fg(Color::Green),
            busy: s.fg(Color::Cyan),
            warn: s.fg(Color::Yellow),
            bad: s.fg(Color::Red).add_modifier(Modifier::BOLD),
            frozen: s
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
            banner: s
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
            bar: s.fg(Color::Cyan),
            chart: s.fg(Color::Magenta),
            key: s.fg(Color::Cyan).add_modifier(Modifier::BOLD),
        }
    }

    /// For light terminal backgrounds: no bright yellow or white text, which vanish there.
    pub fn light() -> Self {
        let s = Style::new();
        Self {
            name: "light",
            text: s.fg(Color::Black),
            dim: s.fg(Color::Indexed(244)),
            border: s.fg(Color::Indexed(248)),
            title: s.fg(Color::Blue).add_modifier(Modifier::BOLD),
            header: s.fg(Color::White).bg(Color::Blue),
            selected: s.bg(Color::Indexed(153)).add_modifier(Modifier::BOLD),
            column: s.fg(Color::Indexed(94)).add_modifier(Modifier::BOLD),
            ok: s.fg(Color::Indexed(28)),
            busy: s.fg(Color::Blue),
            warn: s.fg(Color::Indexed(130)),
            bad: s.fg(Color::Indexed(160)).add_modifier(Modifier::BOLD),
            frozen: s
                .fg(Color::White)
                .bg(Color::Indexed(130))
                .add_modifier(Modifier::BOLD),
            banner: s
                .fg(Color::White)
                .bg(Color::Indexed(160))
                .add_modifier(Modifier::BOLD),
            bar: s.fg(Color::Blue),
            chart: s.fg(Color::Indexed(90)),
            key: s.fg(Color::Blue).add_modifier(Modifier::BOLD),
        }
    }

    /// No colour at all: modifiers only.
    pub fn mono() -> Self {
        let s = Style::new();
        Self {
            name: "mono",
            text: s,
            dim: s.add_modifier(Modifier::DIM),
            border: s,
            title: s.add_modifier(Modifier::BOLD),
            header: s.add_modifier(Modifier::REVERSED),
            selected: s.add_modifier(Modifier::REVERSED),
            column: s.add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            ok: s,
            busy: s.add_modifier(Modifier::BOLD),
            warn: s.add_modifier(Modifier::UNDERLINED),
            bad: s.add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            frozen: s.add_modifier(Modifier::REVERSED | Modifier::BOLD),
            banner: s.add_modifier(Modifier::REVERSED | Modifier::BOLD),
            bar: s,
            chart: s,
            key: s.add_modifier(Modifier::BOLD),
        }
    }

    /// Whether this theme uses any colour (tests check mono uses none).
    pub fn uses_colour(&self) -> bool {
        [
            self.text,
            self.dim,
            self.border,
            self.title,
            self.header,
            self.selected,
            self.column,
            self.ok,
            self.busy,
            self.warn,
            self.bad,
            self.frozen,
            self.banner,
            self.bar,
            self.chart,
            self.key,
        ]
        .iter()
        .any(|s| s.fg.is_some() || s.bg.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn no_color_means_present_and_non_empty() {
        assert!(!no_color_requested(None));
        assert!(!no_color_requested(Some(OsStr::new(""))));
        assert!(no_color_requested(Some(OsStr::new("1"))));
        assert!(
            no_color_requested(Some(OsStr::new("0"))),
            "any non-empty value counts"
        );
    }

    #[test]
    fn themes_cycle_and_mono_has_no_colour() {
        let t = Theme::dark();
        assert_eq!(t.next().name, "light");
        assert_eq!(t.next().next().name, "mono");
        assert_eq!(t.next().next().next().name, "dark");
        assert!(!Theme::mono().uses_colour());
        assert!(Theme::light().uses_colour());
    }
}
