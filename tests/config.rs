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
            ("ARTEMIS_CACHE_TTL_SECONDS", "60"),
            ("ARTEMIS_DASHBOARD_THEME", "mono"),
            ("ARTEMIS_REDIS_CLUSTER_NODES", "a:1, b:2"),
            ("ARTEMIS_LIMITER_FAILURE_POLICY", "closed"),
            ("ARTEMIS_PREFIXES_PIPELINE", "team-a:pipeline"),
            ("ARTEMIS_CONFIG", "/ignored/here"),
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

    let e = error_of(&none(), &[("ARTEMIS_CACHE_TLL", "1")], &[]);
    assert!(
        e.contains("cache.tll") && e.contains("ARTEMIS_CACHE_TLL"),
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
    let get = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let c = config::choose_file(
        Some(Path::new("/x/flag.toml")),
        &get(&[("ARTEMIS_CONFIG", "/y")]),
    );
    assert_eq!(c.path.as_deref(), Some(Path::new("/x/flag.toml")));
    assert!(c.required);
    let c = config::choose_file(None, &get(&[("ARTEMIS_CONFIG", "/y/env.toml")]));
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
    for (k, _) in std::env::vars() {
        if k.starts_with("REDIS_") || k.starts_with("ARTEMIS_") {
            c.env_remove(k);
        }
    }
    c.env("XDG_CONFIG_HOME", "/nonexistent-artemis-test");
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
