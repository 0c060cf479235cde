//! Configuration layering, case by case: default < file < environment < flag, every Python
//! environment variable, bad values with the setting and source named, the example file, and
//! the binary's exit code and redacted `--print-config`.

use std::path::Path;
use std::process::Command;

use artemis::config::{self, FileChoice, FlagOverrides, Settings};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn flags(pairs: &[(&str, &str, &str)]) -> FlagOverrides {
    pairs
        .iter()
        .map(|(k, v, f)| (k.to_string(), v.to_string(), f.to_string()))
        .collect()
}

fn file(dir: &Path, text: &str) -> FileChoice {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    FileChoice {
        path: Some(path),
        required: true,
    }
}

fn none() -> FileChoice {
    FileChoice {
        path: None,
        required: false,
    }
}

#[test]
fn each_layer_overrides_the_one_below() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(
        dir.path(),
        "[redis]\nport = 7001\nhost = \"filehost\"\ndb = 1\n",
    );

    let s = config::load(&none(), &[], &vec![]).unwrap();
    assert_eq!(s.redis.port, 6379, "default");

    let s = config::load(&f, &[], &vec![]).unwrap();
    assert_eq!(
        (s.redis.port, s.redis.host.as_str()),
        (7001, "filehost"),
        "file over default"
    );

    let s = config::load(&f, &env(&[("REDIS_PORT", "7002")]), &vec![]).unwrap();
    assert_eq!(s.redis.port, 7002, "env over file");
    assert_eq!(
        s.redis.host, "filehost",
        "file value kept where env is silent"
    );

    let s = config::load(
        &f,
        &env(&[("REDIS_URL", "redis://envhost:1/2")]),
        &flags(&[("redis.url", "redis://flaghost:2/3", "--redis-url")]),
    )
    .unwrap();
    assert_eq!(
        s.redis.url.as_deref(),
        Some("redis://flaghost:2/3"),
        "flag over env"
    );
}

#[test]
fn every_python_variable_is_honoured() {
    let s = config::load(
        &none(),
        &env(&[
            ("REDIS_HOST", "redis.internal"),
            ("REDIS_PORT", "6380"),
            ("REDIS_DB", "4"),
            ("REDIS_PASSWORD", "s3cret"),
            ("REDIS_TIMEOUT", "2.5"),
            ("REDIS_CONNECT_TIMEOUT", "1"),
            ("REDIS_URL", "redis://other:1/0"),
            ("REDIS_USERNAME", "artemis"),
        ]),
        &vec![],
    )
    .unwrap();
    assert_eq!(s.redis.host, "redis.internal");
    assert_eq!(s.redis.port, 6380);
    assert_eq!(s.redis.db, 4);
    assert_eq!(s.redis.password.as_deref(), Some("s3cret"));
    assert_eq!(s.redis.timeout, 2.5);
    assert_eq!(s.redis.connect_timeout, 1.0);
    assert_eq!(s.redis.url.as_deref(), Some("redis://other:1/0"));
    assert_eq!(s.redis.username.as_deref(), Some("artemis"));
}

#[test]
fn artemis_variables_reach_every_section() {
    let s = config::load(
        &none(),
        &env(&[
            ("ARTEMIS_TOP_CACHE_TTL_SECONDS", "60"),
            ("ARTEMIS_TOP_DASHBOARD_THEME", "mono"),
            ("ARTEMIS_TOP_REDIS_CLUSTER", "true"),
            ("ARTEMIS_TOP_REDIS_CLUSTER_NODES", "a:1, b:2"),
            ("ARTEMIS_TOP_LIMITER_FAILURE_POLICY", "closed"),
            ("ARTEMIS_TOP_PREFIXES_PIPELINE", "team-a:pipeline"),
            ("ARTEMIS_TOP_CONFIG", "/ignored/here"),
        ]),
        &vec![],
    )
    .unwrap();
    assert_eq!(s.cache.ttl_seconds, 60);
    assert_eq!(s.dashboard.theme, "mono");
    assert_eq!(s.redis.cluster_nodes, vec!["a:1", "b:2"]);
    assert_eq!(
        s.limiter.failure_policy,
        artemis::config::FailurePolicy::Closed
    );
    assert_eq!(s.prefixes.pipeline, "team-a:pipeline");
}

fn error_of(f: &FileChoice, e: &[(&str, &str)], fl: &[(&str, &str, &str)]) -> String {
    config::load(f, &env(e), &flags(fl)).unwrap_err().0
}

#[test]
fn bad_values_name_the_setting_and_the_source() {
    let e = error_of(&none(), &[("REDIS_PORT", "abc")], &[]);
    assert!(e.contains("redis.port") && e.contains("REDIS_PORT"), "{e}");

    let e = error_of(&none(), &[("REDIS_TIMEOUT", "-1")], &[]);
    assert!(
        e.contains("redis.timeout") && e.contains("REDIS_TIMEOUT"),
        "{e}"
    );

    let e = error_of(&none(), &[("REDIS_CONNECT_TIMEOUT", "0")], &[]);
    assert!(e.contains("redis.connect_timeout"), "{e}");

    let e = error_of(&none(), &[("REDIS_DB", "-3")], &[]);
    assert!(e.contains("redis.db") && e.contains("REDIS_DB"), "{e}");

    let e = error_of(&none(), &[("REDIS_PORT", "70000")], &[]);
    assert!(e.contains("redis.port"), "{e}");

    let e = error_of(&none(), &[], &[("dashboard.theme", "neon", "--theme")]);
    assert!(
        e.contains("dashboard.theme") && e.contains("--theme"),
        "{e}"
    );

    let e = error_of(
        &none(),
        &[],
        &[("dashboard.poll_interval", "fast", "--interval")],
    );
    assert!(
        e.contains("dashboard.poll_interval") && e.contains("--interval"),
        "{e}"
    );

    let e = error_of(&none(), &[("REDIS_URL", "http://nope")], &[]);
    assert!(e.contains("redis.url"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let f = file(dir.path(), "[redis]\nport = \"abc\"\n");
    let e = error_of(&f, &[], &[]);
    assert!(e.contains("redis.port") && e.contains("config.toml"), "{e}");

    let f = file(dir.path(), "[redis]\ntimeout = -2.0\n");
    let e = error_of(&f, &[], &[]);
    assert!(
        e.contains("redis.timeout") && e.contains("config.toml"),
        "{e}"
    );
}

#[test]
fn unknown_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(dir.path(), "[redis]\nprot = 1\n");
    let e = error_of(&f, &[], &[]);
    assert!(
        e.contains("unknown setting redis.prot") && e.contains("config.toml"),
        "{e}"
    );

    let f = file(dir.path(), "[redsi]\nport = 1\n");
    let e = error_of(&f, &[], &[]);
    assert!(e.contains("unknown setting redsi"), "{e}");

    let e = error_of(&none(), &[("ARTEMIS_TOP_CACHE_TLL", "1")], &[]);
    assert!(
        e.contains("cache.tll") && e.contains("ARTEMIS_TOP_CACHE_TLL"),
        "{e}"
    );

    // Key bindings are a free-form table.
    let f = file(dir.path(), "[dashboard.keys]\nquit = \"x\"\n");
    let s = config::load(&f, &[], &vec![]).unwrap();
    assert_eq!(s.dashboard.keys["quit"], "x");
}

#[test]
fn malformed_or_missing_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(dir.path(), "[redis\nport = 1\n");
    let e = error_of(&f, &[], &[]);
    assert!(e.contains("config.toml"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");

    let missing = FileChoice {
        path: Some(dir.path().join("nope.toml")),
        required: true,
    };
    let e = error_of(&missing, &[], &[]);
    assert!(e.contains("does not exist"), "{e}");

    // The default location may be absent.
    let optional = FileChoice {
        path: Some(dir.path().join("absent.toml")),
        required: false,
    };
    assert!(config::load(&optional, &[], &vec![]).is_ok());
}

#[test]
fn file_location_follows_flag_then_env_then_xdg() {
    let get =
        |pairs: &[(&str, &str)]| config::Environment::from_vars(pairs.iter().copied()).unwrap();
    let c = config::choose_file(
        Some(Path::new("/x/flag.toml")),
        &get(&[("ARTEMIS_TOP_CONFIG", "/y")]),
    );
    assert_eq!(c.path.as_deref(), Some(Path::new("/x/flag.toml")));
    assert!(c.required);
    let c = config::choose_file(None, &get(&[("ARTEMIS_TOP_CONFIG", "/y/env.toml")]));
    assert_eq!(c.path.as_deref(), Some(Path::new("/y/env.toml")));
    let c = config::choose_file(
        None,
        &get(&[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/u")]),
    );
    assert_eq!(
        c.path.as_deref(),
        Some(Path::new("/xdg/artemis-top/config.toml"))
    );
    assert!(!c.required);
    let c = config::choose_file(None, &get(&[("HOME", "/home/u")]));
    assert_eq!(
        c.path.as_deref(),
        Some(Path::new("/home/u/.config/artemis-top/config.toml"))
    );
}

#[test]
fn the_example_file_parses_and_lists_every_setting() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("config.toml.example")).unwrap();
    // Uncommented, every example line is a valid setting equal to its default.
    let uncommented: String = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            let rest = t.strip_prefix("# ").unwrap_or("");
            let is_setting = rest.split_once(" = ").is_some_and(|(key, _)| {
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
            if is_setting {
                rest.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let f = file(dir.path(), &uncommented);
    let s = config::load(&f, &[], &vec![]).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    assert_eq!(s, Settings::default(), "the example documents the defaults");
    // Every default setting appears in the example.
    let defaults = toml::to_string(&Settings::default()).unwrap();
    for line in defaults.lines() {
        if let Some((key, _)) = line.split_once(" = ") {
            assert!(
                uncommented.contains(&format!("{key} = ")),
                "config.toml.example does not document {key}"
            );
        }
    }
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_artemis-top"));
    // Only what the test sets: none of the caller's REDIS_* or ARTEMIS_* variables.
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("XDG_CONFIG_HOME", "/nonexistent-artemis-test");
    c
}

#[test]
fn binary_exits_2_with_one_line_on_bad_config() {
    let out = bin()
        .env("REDIS_PORT", "abc")
        .arg("--print-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("REDIS_PORT"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );

    let out = bin()
        .args(["--config", "/nonexistent/x.toml", "--print-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn print_config_redacts_secrets() {
    let out = bin()
        .env("REDIS_PASSWORD", "hunter2-secret")
        .args([
            "--redis-url",
            "redis://bob:other-secret@h:1/0",
            "--print-config",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("hunter2-secret") && !text.contains("other-secret"),
        "{text}"
    );
    assert!(text.contains("<redacted>"), "{text}");
    assert!(text.contains("[redis]"), "{text}");
}

#[test]
fn help_works() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--print-config") && text.contains("--once"),
        "{text}"
    );
}

// ── Environment: read with `vars_os`, our own namespace ────────────────────────────────────

mod support;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;

/// Bytes that are not UTF-8, as an environment value or name.
fn not_utf8(text: &str) -> OsString {
    let mut bytes = text.as_bytes().to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, b'x']);
    OsString::from_vec(bytes)
}

/// Runs the binary with a clean environment plus `env`, waits at most 20 s.
fn run_bin(args: &[&str], env: &[(OsString, OsString)]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = support::artemis_top(home.path());
    cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    support::wait_output(
        cmd.spawn().unwrap(),
        std::time::Duration::from_secs(20),
        "artemis-top",
    )
}

fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every mode of the binary that reads the environment, against a real server where one is
/// needed (the dashboard itself is run under tmux in `tests/secrets.rs`).
fn every_mode(port: u16) -> Vec<Vec<String>> {
    let url = format!("redis://127.0.0.1:{port}/0");
    [
        vec!["--print-config"],
        vec!["--redis-url", &url, "--once"],
        vec!["--redis-url", &url, "check"],
        vec!["--demo", "--once"],
        vec!["--demo", "simulate", "--cards", "2", "--speed", "1000"],
        vec![
            "--redis-url",
            &url,
            "simulate",
            "--cards",
            "2",
            "--speed",
            "1000",
        ],
    ]
    .into_iter()
    .map(|a| a.into_iter().map(str::to_owned).collect())
    .collect()
}

#[test]
fn a_non_utf8_variable_of_someone_else_is_ignored_in_every_mode() {
    let server = support::RedisServer::start();
    let env = [
        (OsString::from("JUNK"), not_utf8("junk")),
        (OsString::from("LANG_EXTRA"), not_utf8("")),
        // The Python original's namespace, and a name that is itself not UTF-8.
        (OsString::from("ARTEMIS_LLM_PROVIDER"), not_utf8("openai")),
        (not_utf8("WEIRD_"), OsString::from("1")),
    ];
    for args in every_mode(server.port) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_bin(&args, &env);
        let text = printed(&out);
        assert!(
            out.status.success(),
            "{args:?}: exit {:?}\n{text}",
            out.status.code()
        );
        assert!(!text.contains("panicked"), "{args:?}: {text}");
    }
}

#[test]
fn a_non_utf8_value_of_ours_is_one_error_naming_the_variable_in_every_mode() {
    let server = support::RedisServer::start();
    for name in [
        "REDIS_PASSWORD",
        "REDIS_HOST",
        "ARTEMIS_TOP_CACHE_TTL_SECONDS",
        "ARTEMIS_TOP_LOG",
    ] {
        let env = [(OsString::from(name), not_utf8("pa55-secret-"))];
        for args in every_mode(server.port) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run_bin(&args, &env);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{name} {args:?}: {err}");
            assert!(
                err.contains(name) && err.contains("not valid UTF-8"),
                "{name} {args:?}: {err}"
            );
            assert!(
                !err.contains("pa55-secret"),
                "{name}: the value is shown: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

#[test]
fn a_non_utf8_name_in_our_namespace_is_an_error() {
    let out = run_bin(
        &["--print-config"],
        &[(not_utf8("ARTEMIS_TOP_CACHE_"), OsString::from("1"))],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ARTEMIS_TOP_CACHE_") && err.contains("not valid UTF-8"),
        "{err}"
    );
}

#[test]
fn paths_that_are_not_utf8_are_used_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut name = dir.path().as_os_str().to_owned().into_vec();
    name.extend_from_slice(b"/conf\xff.toml");
    let path = std::path::PathBuf::from(OsString::from_vec(name));
    std::fs::write(&path, "[dashboard]\ntheme = \"light\"\n").unwrap();
    let out = run_bin(
        &["--print-config"],
        &[(OsString::from("ARTEMIS_TOP_CONFIG"), path.into_os_string())],
    );
    let text = printed(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("theme = \"light\""), "{text}");
}

#[test]
fn the_python_originals_artemis_variables_are_ignored() {
    // What a Python Artemis environment holds (PROTOCOL A), including names that look like
    // our sections under the old, shared prefix.
    let original = [
        ("ARTEMIS_LLM_PROVIDER", "openai"),
        ("ARTEMIS_MESSENGER_TYPE", "slack"),
        ("ARTEMIS_DEVELOPER_DIR", "/srv/dev"),
        ("ARTEMIS_DAILY_BUDGET", "25"),
        ("ARTEMIS_REDIS_URL", "redis://elsewhere:1/0"),
        ("ARTEMIS_REDIS_PORT", "1"),
        ("ARTEMIS_CACHE_TTL_SECONDS", "not-a-number"),
        ("ARTEMIS_CONFIG", "/nonexistent/python.toml"),
        ("ARTEMIS_LOG", "not a filter ((("),
    ];
    let s = config::load(&none(), &env(&original), &vec![]).unwrap();
    assert_eq!(s, Settings::default());

    let env: Vec<(OsString, OsString)> =
        original.iter().map(|(k, v)| (k.into(), v.into())).collect();
    let out = run_bin(&["--demo", "--once"], &env);
    let text = printed(&out);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("not a log filter"), "{text}");
}

#[test]
fn a_typo_in_our_namespace_is_an_error_naming_the_variable() {
    for (name, want) in [
        ("ARTEMIS_TOP_CACHE_TLL", "cache.tll"),
        (
            "ARTEMIS_TOP_CAHCE_TTL_SECONDS",
            "ARTEMIS_TOP_CAHCE_TTL_SECONDS",
        ),
        ("ARTEMIS_TOP_REDIS", "ARTEMIS_TOP_REDIS"),
        ("ARTEMIS_TOP_REDIS_", "ARTEMIS_TOP_REDIS_"),
    ] {
        let e = error_of(&none(), &[(name, "1")], &[]);
        assert!(e.contains(want) && e.contains(name), "{name}: {e}");
    }
}

/// Every leaf setting (as the defaults serialize, so a field any job adds is covered at once)
/// can be given as `ARTEMIS_TOP_<SECTION>_<KEY>`: with its default's text it loads and changes
/// nothing, where an unmapped name would be an "unknown setting" error.
#[test]
fn every_setting_is_reachable_through_our_namespace() {
    let defaults = serde_json::to_value(Settings::default()).unwrap();
    let mut checked = 0;
    for (section, fields) in defaults.as_object().unwrap() {
        for (key, value) in fields.as_object().unwrap() {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Array(a) if a.iter().all(|v| v.is_string()) && !a.is_empty() => {
                    a.iter()
                        .map(|v| v.as_str().unwrap())
                        .collect::<Vec<_>>()
                        .join(",")
                }
                // Tables, lists of tables, empty lists and unset values have no text form.
                _ => continue,
            };
            let name = format!(
                "ARTEMIS_TOP_{}_{}",
                section.to_uppercase(),
                key.to_uppercase()
            );
            let s = config::load(&none(), &env(&[(&name, &text)]), &vec![])
                .unwrap_or_else(|e| panic!("{name}={text}: {e}"));
            assert_eq!(s, Settings::default(), "{name}={text}");
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} settings checked");
}

// ── Config file: a size cap, regular files only ────────────────────────────────────────────

#[test]
fn a_config_file_above_the_cap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cap = usize::try_from(config::MAX_CONFIG_BYTES).unwrap();
    let at_cap = format!("[dashboard]\ntheme = \"mono\"\n{}\n", "#".repeat(cap - 30));
    assert!(at_cap.len() <= cap);
    let f = file(dir.path(), &at_cap);
    assert_eq!(
        config::load(&f, &[], &vec![]).unwrap().dashboard.theme,
        "mono"
    );
    let f = file(dir.path(), &format!("{at_cap}{}", "#".repeat(cap)));
    let e = error_of(&f, &[], &[]);
    assert!(
        e.contains("config.toml") && e.contains("larger than 1024 KiB"),
        "{e}"
    );
}

#[test]
fn an_endless_config_file_is_refused_at_once_and_in_little_memory() {
    let started = std::time::Instant::now();
    let out = run_bin(&["--config", "/dev/zero", "--print-config"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("/dev/zero") && err.contains("device"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn a_directory_fifo_or_device_as_config_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.toml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for (path, what) in [
        (dir.path().to_owned(), "a directory"),
        (fifo, "a FIFO"),
        (std::path::PathBuf::from("/dev/null"), "a device"),
    ] {
        let f = FileChoice {
            path: Some(path.clone()),
            required: true,
        };
        // A FIFO nobody writes to must not block the read.
        let e = error_of(&f, &[], &[]);
        assert!(
            e.contains(&path.display().to_string()) && e.contains(what),
            "{e}"
        );
    }
    // A non-UTF-8 file.
    let bad = dir.path().join("latin1.toml");
    std::fs::write(&bad, b"# caf\xe9\n").unwrap();
    let f = FileChoice {
        path: Some(bad),
        required: true,
    };
    assert!(error_of(&f, &[], &[]).contains("not UTF-8"));
}

// ── Bounds on every duration and count ─────────────────────────────────────────────────────

#[test]
fn durations_outside_1ms_to_a_day_are_refused() {
    for (name, key) in [
        ("REDIS_TIMEOUT", "redis.timeout"),
        ("REDIS_CONNECT_TIMEOUT", "redis.connect_timeout"),
        (
            "ARTEMIS_TOP_REDIS_RECONNECT_MAX_BACKOFF",
            "redis.reconnect_max_backoff",
        ),
        (
            "ARTEMIS_TOP_LIMITER_ACQUIRE_TIMEOUT",
            "limiter.acquire_timeout",
        ),
        (
            "ARTEMIS_TOP_DASHBOARD_POLL_INTERVAL",
            "dashboard.poll_interval",
        ),
    ] {
        for bad in [
            "1e-300", "0", "-1", "0.0009", "86400.5", "1e9", "NaN", "inf", "-inf", "",
        ] {
            let e = error_of(&none(), &[(name, bad)], &[]);
            assert!(e.contains(key) && e.contains(name), "{name}={bad}: {e}");
        }
        for good in ["0.01", "1", "2.5", "86400"] {
            config::load(&none(), &env(&[(name, good)]), &vec![])
                .unwrap_or_else(|e| panic!("{name}={good}: {e}"));
        }
    }
    // The command timeout's own lower edge is 1 ms.
    let s = config::load(&none(), &env(&[("REDIS_TIMEOUT", "0.001")]), &vec![]).unwrap();
    assert_eq!(s.redis.timeout, 0.001);
}

#[test]
fn counts_outside_their_bounds_are_refused() {
    // (variable, a value just outside, the edge inside)
    let table: &[(&str, &str, &str)] = &[
        ("ARTEMIS_TOP_TRACKER_TTL_SECONDS", "0", "1"),
        ("ARTEMIS_TOP_TRACKER_TTL_SECONDS", "315360001", "315360000"),
        ("ARTEMIS_TOP_TRACKER_HISTORY_MAX_EVENTS", "0", "1"),
        (
            "ARTEMIS_TOP_TRACKER_HISTORY_MAX_EVENTS",
            "1000001",
            "1000000",
        ),
        ("ARTEMIS_TOP_TRACKER_OUTAGE_BUFFER", "0", "1"),
        ("ARTEMIS_TOP_TRACKER_OUTAGE_BUFFER", "10000001", "10000000"),
        ("ARTEMIS_TOP_TRACKER_SCAN_INTERVAL_SECONDS", "86401", "0"),
        ("ARTEMIS_TOP_METRICS_DAILY_TTL_SECONDS", "0", "1"),
        // Retention is off unless set; a set retention of 0 would delete everything.
        ("ARTEMIS_TOP_METRICS_TIMESERIES_RETENTION_DAYS", "0", "1"),
        (
            "ARTEMIS_TOP_METRICS_TIMESERIES_RETENTION_DAYS",
            "36501",
            "36500",
        ),
        ("ARTEMIS_TOP_METRICS_SCAN_INTERVAL_SECONDS", "86401", "0"),
        ("ARTEMIS_TOP_METRICS_SNAPSHOT_DAYS", "0", "3660"),
        ("ARTEMIS_TOP_METRICS_SNAPSHOT_RECENT", "10001", "0"),
        ("ARTEMIS_TOP_CACHE_TTL_SECONDS", "0", "315360000"),
        (
            "ARTEMIS_TOP_CACHE_MEMORY_TIER_BYTES",
            "68719476737",
            "68719476736",
        ),
        ("ARTEMIS_TOP_CACHE_MEMORY_TIER_TTL_SECONDS", "0", "86400"),
        ("ARTEMIS_TOP_CACHE_LEASE_MS", "0", "86400000"),
        ("ARTEMIS_TOP_CACHE_LEASE_WAIT_MS", "86400001", "0"),
        ("ARTEMIS_TOP_DASHBOARD_MAX_FPS", "0", "240"),
        ("ARTEMIS_TOP_DASHBOARD_MAX_FPS", "241", "1"),
        ("ARTEMIS_TOP_LIMITER_ACQUIRE_JITTER_MS", "60001", "60000"),
        ("REDIS_PORT", "0", "65535"),
        ("REDIS_DB", "16000", "15999"),
        // Negative or not a number: a type error, named all the same.
        ("ARTEMIS_TOP_TRACKER_OUTAGE_BUFFER", "-1", "10"),
        ("ARTEMIS_TOP_CACHE_LEASE_MS", "1.5", "2"),
    ];
    for (name, bad, good) in table {
        let e = error_of(&none(), &[(name, bad)], &[]);
        assert!(e.contains(name), "{name}={bad}: {e}");
        config::load(&none(), &env(&[(name, good)]), &vec![])
            .unwrap_or_else(|e| panic!("{name}={good}: {e}"));
    }
}

#[test]
fn cluster_nodes_without_cluster_protocol_are_an_error_not_ignored() {
    let e = error_of(
        &none(),
        &[],
        &[("redis.cluster_nodes", "127.0.0.1:7000", "--cluster-nodes")],
    );
    assert!(
        e.contains("--cluster-nodes") && e.contains("add --cluster"),
        "{e}"
    );
    let out = run_bin(&["--cluster-nodes", "127.0.0.1:1", "--once"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("only used with Redis Cluster"), "{err}");
}

#[test]
fn an_empty_url_host_or_node_list_is_an_error_not_a_default() {
    for (e, want) in [
        (error_of(&none(), &[("REDIS_URL", "")], &[]), "REDIS_URL"),
        (error_of(&none(), &[("REDIS_URL", "  ")], &[]), "REDIS_URL"),
        (
            error_of(&none(), &[], &[("redis.url", "", "--redis-url")]),
            "--redis-url",
        ),
        (error_of(&none(), &[("REDIS_HOST", "")], &[]), "REDIS_HOST"),
        (
            error_of(
                &none(),
                &[],
                &[("redis.cluster_nodes", "", "--cluster-nodes")],
            ),
            "--cluster-nodes",
        ),
        (
            error_of(
                &none(),
                &[],
                &[("redis.cluster_nodes", " , ", "--cluster-nodes")],
            ),
            "--cluster-nodes",
        ),
    ] {
        assert!(e.contains(want) && e.contains("empty"), "{e}");
    }
    let out = run_bin(&["--redis-url", "", "--once"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("redis.url") && err.contains("empty"), "{err}");
}

/// The dashboard (under a real terminal) starts and quits normally beside a variable that is
/// not UTF-8; with one of ours not UTF-8 it never starts, and says which.
#[test]
fn the_dashboard_runs_beside_a_non_utf8_variable() {
    use support::tmux::{Tmux, binary_line};
    let dir = tempfile::tempdir().unwrap();
    let (line, _) = binary_line(dir.path(), &[], &["--demo"]);
    // Bytes 0xff 0xfe through printf: the shell line itself stays ASCII.
    let junk = |name: &str| format!("{name}=\"$(printf 'pa55\\377\\376')\" TERM=");
    let tmux = Tmux::start(
        "envjunk",
        140,
        40,
        &line.replacen("TERM=", &junk("JUNK"), 1),
    );
    tmux.wait_for("the demo dashboard", |s| s.contains("in-process"));
    tmux.keys(&["q"]);
    let end = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(end.contains("EXIT=0"), "{end}");
    drop(tmux);

    let tmux = Tmux::start(
        "envjunk2",
        140,
        40,
        &line.replacen("TERM=", &junk("REDIS_PASSWORD"), 1),
    );
    let end = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(end.contains("EXIT=2"), "{end}");
    assert!(
        end.contains("REDIS_PASSWORD") && end.contains("not valid UTF-8"),
        "{end}"
    );
    assert!(!end.contains("pa55") && !end.contains("panicked"), "{end}");
}

/// The library (`Artemis::from_env`) reads the environment through the same
/// `config::Environment`: others' bytes ignored, ours checked, values never in `Debug`.
#[test]
fn the_environment_keeps_only_our_variables_and_never_shows_values() {
    let vars = vec![
        (OsString::from("JUNK"), not_utf8("x")),
        (not_utf8("ALSO_JUNK"), OsString::from("y")),
        (OsString::from("REDIS_PORT"), OsString::from("7003")),
        (
            OsString::from("REDIS_PASSWORD"),
            OsString::from("dbg-s3cret"),
        ),
        (OsString::from("ARTEMIS_DAILY_BUDGET"), not_utf8("5")),
        (OsString::from("REDIS_SERVER_BIN"), not_utf8("/x")),
    ];
    let env = config::Environment::from_vars(vars.clone()).unwrap();
    let s = config::load(&none(), env.settings(), &vec![]).unwrap();
    assert_eq!(s.redis.port, 7003);
    assert_eq!(env.settings().len(), 2, "{env:?}");
    assert!(!format!("{env:?}").contains("dbg-s3cret"), "{env:?}");

    let mut bad = vars;
    bad.push((OsString::from("REDIS_USERNAME"), not_utf8("dbg-user")));
    let e = config::Environment::from_vars(bad).unwrap_err().0;
    assert!(
        e.contains("REDIS_USERNAME") && !e.contains("dbg-user"),
        "{e}"
    );
}

#[test]
fn the_theme_is_auto_unless_chosen_and_auto_can_be_chosen() {
    let s = config::load(&none(), &env(&[]), &vec![]).unwrap();
    assert_eq!(s.dashboard.theme, "auto");
    assert!(
        !s.dashboard.mouse,
        "the terminal keeps the mouse by default"
    );
    let s = config::load(
        &none(),
        &env(&[("ARTEMIS_TOP_DASHBOARD_THEME", "light")]),
        &flags(&[
            ("dashboard.theme", "auto", "--theme"),
            ("dashboard.mouse", "true", "--mouse"),
        ]),
    )
    .unwrap();
    assert_eq!(s.dashboard.theme, "auto", "the flag wins");
    assert!(s.dashboard.mouse);
}
