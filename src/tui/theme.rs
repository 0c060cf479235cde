//! Colour themes: dark, light and mono, all as named styles so that no render function picks a
//! colour itself, and `auto`, which picks dark or light from the terminal's background.
//!
//! Body text is drawn in the terminal's own foreground (no colour set) in every theme: the
//! user's terminal already chose a foreground that reads on its background, and a fixed palette
//! colour (grey, black) is unreadable on the other kind of background. The themes differ in
//! their accents only, chosen to read on a dark (dark) or light (light) background.
//!
//! Mono uses no colour at all, only bold, reverse, dim and underline, so that everything still
//! reads on a monochrome terminal and in `NO_COLOR` setups. `NO_COLOR` follows no-color.org:
//! present *and non-empty* means mono (an empty `NO_COLOR=` does not count).
//!
//! `auto` asks the terminal for its background colour (OSC 11) once, before the input thread
//! starts reading, so that the answer never reaches the key parser. The query is followed by a
//! primary device attributes request (DA1), which every terminal worth the name answers: when
//! the DA1 answer comes first, the terminal does not know OSC 11 and the wait ends at once
//! instead of running into the timeout, and nothing is left unread. A terminal that answers
//! neither costs [`BACKGROUND_QUERY_TIMEOUT`]. Without an answer, `COLORFGBG` (set by rxvt,
//! Konsole and others) decides, and without that, dark.

use std::time::Duration;

use ratatui::style::{Color, Modifier, Style};

/// The theme names, in the order `t` cycles through them.
pub const THEMES: &[&str] = &["dark", "light", "mono"];

/// Every name `dashboard.theme` / `--theme` accepts.
pub const THEME_SETTINGS: &[&str] = &["auto", "dark", "light", "mono"];

/// How long the background query waits for a terminal that answers neither OSC 11 nor DA1
/// (local terminals answer in about a millisecond, tmux and ssh in tens of them).
pub const BACKGROUND_QUERY_TIMEOUT: Duration = Duration::from_millis(250);

/// Which kind of background the terminal has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    /// Dark background, light text: the dark theme.
    Dark,
    /// Light background, dark text: the light theme.
    Light,
}

impl Background {
    /// The theme that reads on this background.
    pub fn theme(self) -> Theme {
        match self {
            Self::Dark => Theme::dark(),
            Self::Light => Theme::light(),
        }
    }
}

/// How `auto` decided, for the footer's note at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackgroundSource {
    /// The terminal answered the OSC 11 query.
    Terminal,
    /// `COLORFGBG` named the background colour.
    ColorFgBg,
    /// Neither: dark is assumed.
    Assumed,
}

impl BackgroundSource {
    /// Words for "theme light (auto, …)".
    pub fn describe(self) -> &'static str {
        match self {
            Self::Terminal => "from the terminal's background",
            Self::ColorFgBg => "from COLORFGBG",
            Self::Assumed => "the terminal reported no background: dark assumed",
        }
    }
}

/// The background an OSC 11 answer reports, if `reply` holds one (`ESC ] 11 ; rgb:RRRR/GGGG/BBBB`
/// ended by ST or BEL; 1 to 4 hex digits per channel, as xterm allows). Light means a relative
/// luminance above one half.
pub fn parse_osc11_reply(reply: &[u8]) -> Option<Background> {
    let text = String::from_utf8_lossy(reply);
    let start = text.find("\x1b]11;")? + 5;
    let body = &text[start..];
    let end = body.find(['\x1b', '\x07'])?;
    let spec = body[..end].trim();
    let channels = spec
        .strip_prefix("rgb:")
        .or_else(|| spec.strip_prefix("rgba:"))?;
    let mut parts = channels.split('/');
    let mut rgb = [0f64; 3];
    for c in &mut rgb {
        let hex = parts.next()?;
        if hex.is_empty() || hex.len() > 4 {
            return None;
        }
        let v = u32::from_str_radix(hex, 16).ok()?;
        *c = f64::from(v) / f64::from((1u32 << (4 * hex.len() as u32)) - 1);
    }
    let luminance = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
    Some(if luminance > 0.5 {
        Background::Light
    } else {
        Background::Dark
    })
}

/// Whether `reply` holds a complete DA1 answer (`ESC [ ? … c`): the terminal has answered
/// everything it is going to.
pub fn has_da1_reply(reply: &[u8]) -> bool {
    reply.windows(3).enumerate().any(|(i, w)| {
        w == b"\x1b[?"
            && reply[i + 3..]
                .iter()
                .find(|b| !(b.is_ascii_digit() || **b == b';'))
                == Some(&b'c')
    })
}

/// The background `COLORFGBG` names (`fg;bg` or `fg;default;bg`, ANSI colour numbers: 7 and
/// 9-15 are light, the rest dark), if it is set to something readable.
pub fn background_from_colorfgbg(value: &str) -> Option<Background> {
    let bg: u8 = value.rsplit(';').next()?.trim().parse().ok()?;
    match bg {
        7 | 9..=15 => Some(Background::Light),
        0..=6 | 8 => Some(Background::Dark),
        _ => None,
    }
}

/// Asks the terminal (`/dev/tty`, which must be in raw mode so that the answer is neither
/// echoed nor held back for a line end) for its background colour and waits at most
/// `timeout`. `None` when it does not answer OSC 11 or there is no terminal. Must run before
/// anything else reads the terminal: the answer arrives as input bytes.
pub fn query_terminal_background(timeout: Duration) -> Option<Background> {
    use std::io::{Read, Write};
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    // OSC 11 then DA1: the DA1 answer marks the end of whatever the terminal will say.
    tty.write_all(b"\x1b]11;?\x1b\\\x1b[c").ok()?;
    tty.flush().ok()?;
    let deadline = std::time::Instant::now() + timeout;
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while !has_da1_reply(&reply) && reply.len() < 4096 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let wait = rustix::event::Timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        };
        let mut fds = [rustix::event::PollFd::new(
            &tty,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&wait)) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        match tty.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    parse_osc11_reply(&reply)
}

/// What `auto` resolves to: the terminal's answer if there is one, else `COLORFGBG`, else dark.
pub fn resolve_auto(
    osc11: Option<Background>,
    colorfgbg: Option<&str>,
) -> (Background, BackgroundSource) {
    if let Some(bg) = osc11 {
        return (bg, BackgroundSource::Terminal);
    }
    if let Some(bg) = colorfgbg.and_then(background_from_colorfgbg) {
        return (bg, BackgroundSource::ColorFgBg);
    }
    (Background::Dark, BackgroundSource::Assumed)
}

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
    /// A theme by name; unknown names (and `auto`, which [`resolve_auto`] settles) give `dark`
    /// (the config validator already rejects unknown names).
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

    /// For dark terminal backgrounds.
    pub fn dark() -> Self {
        let s = Style::new();
        Self {
            name: "dark",
            text: s,
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

    /// For light terminal backgrounds: no bright yellow, cyan or white text, which vanish there.
    pub fn light() -> Self {
        let s = Style::new();
        Self {
            name: "light",
            text: s,
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

    #[test]
    fn body_text_is_the_terminals_own_foreground_in_every_theme() {
        for name in THEMES {
            let t = Theme::by_name(name);
            assert_eq!(t.text, Style::new(), "{name}");
        }
    }

    #[test]
    fn osc11_answers_give_the_background() {
        let white = b"\x1b]11;rgb:ffff/ffff/ffff\x1b\\";
        assert_eq!(parse_osc11_reply(white), Some(Background::Light));
        let black_bel = b"\x1b]11;rgb:0000/0000/0000\x07";
        assert_eq!(parse_osc11_reply(black_bel), Some(Background::Dark));
        // Solarized light, two digits per channel, then the DA1 answer behind it.
        let solarized = b"\x1b]11;rgb:fd/f6/e3\x1b\\\x1b[?62;22c";
        assert_eq!(parse_osc11_reply(solarized), Some(Background::Light));
        let dark_blue = b"\x1b]11;rgb:1e1e/1e1e/2e2e\x1b\\";
        assert_eq!(parse_osc11_reply(dark_blue), Some(Background::Dark));
    }

    #[test]
    fn incomplete_or_foreign_answers_give_no_background() {
        for reply in [
            &b""[..],
            b"\x1b[?1;2c",
            b"\x1b]11;rgb:ffff/ffff",
            b"\x1b]11;rgb:ffff/ffff\x1b\\",
            b"\x1b]11;rgb:fffff/0/0\x1b\\",
            b"\x1b]11;#ffffff\x1b\\",
            b"\x1b]10;rgb:ffff/ffff/ffff\x1b\\",
        ] {
            assert_eq!(parse_osc11_reply(reply), None, "{reply:?}");
        }
    }

    #[test]
    fn a_da1_answer_ends_the_wait() {
        assert!(has_da1_reply(b"\x1b[?1;2c"));
        assert!(has_da1_reply(b"\x1b]11;rgb:0/0/0\x07\x1b[?62;4;22c"));
        assert!(!has_da1_reply(b"\x1b[?1;2"));
        assert!(!has_da1_reply(b"\x1b]11;rgb:0/0/0\x07"));
    }

    #[test]
    fn colorfgbg_names_the_background() {
        assert_eq!(background_from_colorfgbg("0;15"), Some(Background::Light));
        assert_eq!(background_from_colorfgbg("15;0"), Some(Background::Dark));
        assert_eq!(
            background_from_colorfgbg("0;default;7"),
            Some(Background::Light)
        );
        assert_eq!(background_from_colorfgbg("default"), None);
        assert_eq!(background_from_colorfgbg("0;99"), None);
    }

    #[test]
    fn auto_prefers_the_terminal_then_colorfgbg_then_dark() {
        assert_eq!(
            resolve_auto(Some(Background::Light), Some("15;0")),
            (Background::Light, BackgroundSource::Terminal)
        );
        assert_eq!(
            resolve_auto(None, Some("0;15")),
            (Background::Light, BackgroundSource::ColorFgBg)
        );
        assert_eq!(
            resolve_auto(None, Some("nonsense")),
            (Background::Dark, BackgroundSource::Assumed)
        );
        assert_eq!(
            resolve_auto(None, None),
            (Background::Dark, BackgroundSource::Assumed)
        );
    }
}
