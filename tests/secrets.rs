//! No password appears in anything artemis-top prints: `--print-config`, `--once` (text and
//! JSON), `check` and the dashboard with its log file, with the
//! password given in each way the configuration accepts (URL, environment, config file), with
//! the right and the wrong password, with the most verbose logging, and in `Debug` output of
//! the library's types. Each run's stdout, stderr and log file are searched for the secrets.

mod support;

use artemis::Backend;
use artemis::store::Store;
use std::time::Duration;

use support::tmux::{Tmux, binary_line};
use support::{RedisServer, ServerOptions};

const ADMIN_PASS: &str = "adm1n-S3cret-pass";
const USER_PASS: &str = "us3r-S3cret-pass";
const WRONG_PASS: &str = "wr0ng-S3cret-pass";

fn server() -> RedisServer {
    RedisServer::start_with(ServerOptions {
        password: Some(ADMIN_PASS.into()),
        acl_users: vec![
            [
                "app",
                "on",
                &format!(">{USER_PASS}"),
                "~artemis:*",
                "&artemis:*",
                "+@all",
            ]
            .map(String::from)
            .to_vec(),
        ],
        ..Default::default()
    })
}

/// Everything one run printed (stdout, stderr, and the log file if any), for searching.
struct Run {
    label: String,
    status: std::process::ExitStatus,
    printed: String,
}

fn run(label: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("artemis.log");
    let mut cmd = support::artemis_top(home.path());
    cmd.env("ARTEMIS_LOG", "trace")
        .env("ARTEMIS_LOG_FILE", &log)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let mut printed = String::from_utf8_lossy(&out.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&out.stderr));
    printed.push_str(&std::fs::read_to_string(&log).unwrap_or_default());
    Run {
        label: label.to_owned(),
        status: out.status,
        printed,
    }
}

fn assert_no_secret(run: &Run) {
    for secret in [ADMIN_PASS, USER_PASS, WRONG_PASS] {
        // Also the URL-encoded and the base64 forms a careless logger could print.
        for form in [secret.to_owned(), secret.replace('-', "%2D")] {
            assert!(
                !run.printed.contains(&form),
                "{}: the secret {form:?} was printed:\n{}",
                run.label,
                run.printed
            );
        }
    }
}

#[test]
fn no_mode_of_the_binary_prints_a_password() {
    let server = server();
    let port = server.port.to_string();
    let host_port = format!("127.0.0.1:{port}");
    let user_url = format!("redis://app:{USER_PASS}@{host_port}/0");
    let admin_url = format!("redis://:{ADMIN_PASS}@{host_port}/0");
    let wrong_url = format!("redis://app:{WRONG_PASS}@{host_port}/0");
    let dead_port = support::free_port();
    let dead_url = format!("redis://app:{USER_PASS}@127.0.0.1:{dead_port}/0");
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[redis]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"app\"\npassword = \"{USER_PASS}\"\n"),
    )
    .unwrap();
    let bad_config = config_dir.path().join("bad.toml");
    std::fs::write(
        &bad_config,
        format!("[redis]\npassword = \"{USER_PASS}\"\nport = \"abc\"\n"),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let bad_config = bad_config.to_str().unwrap();

    let env_pass = [
        ("REDIS_HOST", "127.0.0.1"),
        ("REDIS_PORT", port.as_str()),
        ("REDIS_PASSWORD", ADMIN_PASS),
    ];
    let runs = [
        // Succeeding runs, the password given each way.
        (
            run(
                "print-config url",
                &["--redis-url", &user_url, "--print-config"],
                &[],
            ),
            true,
        ),
        (
            run("print-config env", &["--print-config"], &env_pass),
            true,
        ),
        (
            run(
                "print-config file",
                &["--config", config, "--print-config"],
                &[],
            ),
            true,
        ),
        (
            run(
                "once json url",
                &["--redis-url", &user_url, "--once", "--format", "json"],
                &[],
            ),
            true,
        ),
        (
            run(
                "once text admin url",
                &["--redis-url", &admin_url, "--once"],
                &[],
            ),
            true,
        ),
        (
            run("once env", &["--once", "--format", "json"], &env_pass),
            true,
        ),
        (run("once file", &["--config", config, "--once"], &[]), true),
        (
            run("check url", &["--redis-url", &user_url, "check"], &[]),
            true,
        ),
        (run("check env", &["check"], &env_pass), true),
        // Failing runs: wrong password, unreachable server, bad config next to a password.
        (
            run(
                "wrong password",
                &["--redis-url", &wrong_url, "--once"],
                &[],
            ),
            false,
        ),
        (
            run(
                "wrong password check",
                &["--redis-url", &wrong_url, "check"],
                &[],
            ),
            false,
        ),
        (
            run(
                "wrong env password",
                &["--once"],
                &[
                    ("REDIS_PORT", port.as_str()),
                    ("REDIS_PASSWORD", WRONG_PASS),
                ],
            ),
            false,
        ),
        (
            run("unreachable", &["--redis-url", &dead_url, "--once"], &[]),
            false,
        ),
        (
            run("bad config", &["--config", bad_config, "--once"], &[]),
            false,
        ),
        (
            run(
                "bad url",
                &[
                    "--redis-url",
                    &format!("redis://app:{USER_PASS}@[::1:bad/0"),
                    "--once",
                ],
                &[],
            ),
            false,
        ),
    ];
    for (run, should_succeed) in &runs {
        assert_eq!(
            run.status.success(),
            *should_succeed,
            "{}: exit {:?}\n{}",
            run.label,
            run.status,
            run.printed
        );
        assert_no_secret(run);
    }
    // The runs printed something worth searching: the redacted forms are there.
    let all: String = runs.iter().map(|(r, _)| r.printed.as_str()).collect();
    assert!(all.contains("app:<redacted>@127.0.0.1"), "{all}");
    assert!(
        all.contains("TRACE"),
        "the runs logged at trace level: {all}"
    );
    assert!(
        all.contains("credentials") || all.contains("password"),
        "{all}"
    );
}

#[test]
fn the_dashboard_and_its_log_never_show_a_password() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dash.log");
    let url = format!("redis://app:{USER_PASS}@127.0.0.1:{}/0", server.port);
    let log_file = log.display().to_string();
    let (line, _) = binary_line(
        dir.path(),
        &[("ARTEMIS_LOG", "trace"), ("ARTEMIS_LOG_FILE", &log_file)],
        &["--redis-url", &url],
    );
    let tmux = Tmux::start("secrets", 160, 40, &line);
    let s = tmux.wait_for("the header", |s| s.contains("connected"));
    assert!(
        s.contains("redis://127.0.0.1:"),
        "the endpoint is shown:\n{s}"
    );
    // The help overlay and the cards view, then Redis goes away under it.
    tmux.keys(&["?"]);
    std::thread::sleep(Duration::from_millis(300));
    let help = tmux.screen();
    tmux.keys(&["Escape"]);
    drop(server);
    let down = tmux.wait_for("the outage", |s| !s.contains("● connected"));
    std::thread::sleep(Duration::from_millis(1500));
    let later = tmux.screen();
    tmux.keys(&["q"]);
    let end = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    let printed = format!(
        "{s}\n{help}\n{down}\n{later}\n{end}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_no_secret(&Run {
        label: "dashboard".into(),
        status: std::process::ExitStatus::default(),
        printed,
    });
}

#[tokio::test]
async fn debug_output_of_the_library_has_no_password() {
    let server = server();
    let mut settings = server.settings();
    settings.redis.url = Some(format!(
        "redis://app:{USER_PASS}@127.0.0.1:{}/0",
        server.port
    ));
    settings.redis.password = Some(USER_PASS.into());
    let storage = Backend::redis(settings.clone()).await.unwrap();
    let tracker = artemis::tracker::Tracker::new(storage.tracker().clone());
    let metrics = artemis::metrics::Metrics::new(storage.metrics().clone());
    let limiter = artemis::limiter::RateLimiter::new(storage.limiter().clone());
    let redis = artemis::connection::Redis::connect(&settings.redis)
        .await
        .unwrap();
    let mut wrong = settings.redis.clone();
    wrong.url = Some(format!(
        "redis://app:{WRONG_PASS}@127.0.0.1:{}/0",
        server.port
    ));
    wrong.password = None;
    let err = artemis::connection::Redis::connect(&wrong)
        .await
        .unwrap_err();
    let printed = format!(
        "{settings:?}\n{:?}\n{tracker:?}\n{metrics:?}\n{limiter:?}\n{redis:?}\n{err:?}\n{err}\n{}\n{}",
        settings.redis,
        storage.endpoint(),
        settings.to_redacted_toml(),
    );
    assert!(printed.contains("127.0.0.1"), "{printed}");
    assert_no_secret(&Run {
        label: "Debug".into(),
        status: std::process::ExitStatus::default(),
        printed,
    });
}
