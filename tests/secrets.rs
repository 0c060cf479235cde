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
    cmd.env("ARTEMIS_TOP_LOG", "trace")
        .env("ARTEMIS_TOP_LOG_FILE", &log)
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
        &[
            ("ARTEMIS_TOP_LOG", "trace"),
            ("ARTEMIS_TOP_LOG_FILE", &log_file),
        ],
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

/// `--cluster-nodes user:pw@host:port` (a node list with credentials) in every mode: the
/// endpoint line, the error lines and `--print-config` show the nodes redacted.
#[test]
fn passwords_in_cluster_nodes_are_never_shown() {
    let (a, b) = (support::free_port(), support::free_port());
    // One password for every node (the driver refuses a mix), user name and all.
    let nodes = format!("app:{USER_PASS}@127.0.0.1:{a},app:{USER_PASS}@127.0.0.1:{b}");
    let bad_port = format!("app:{USER_PASS}@127.0.0.1:nope");
    let runs = [
        run(
            "nodes print-config",
            &["--cluster", "--cluster-nodes", &nodes, "--print-config"],
            &[],
        ),
        run(
            "nodes once",
            &["--cluster", "--cluster-nodes", &nodes, "--once"],
            &[],
        ),
        run(
            "nodes check",
            &["--cluster", "--cluster-nodes", &nodes, "check"],
            &[],
        ),
        run(
            "nodes bad port",
            &["--cluster", "--cluster-nodes", &bad_port, "--once"],
            &[],
        ),
        run(
            "nodes env",
            &["--cluster", "--once"],
            &[("ARTEMIS_TOP_REDIS_CLUSTER_NODES", &nodes)],
        ),
    ];
    for r in &runs {
        assert_no_secret(r);
    }
    assert!(runs[0].status.success(), "{}", runs[0].printed);
    assert!(
        runs[0].printed.contains("app:<redacted>@127.0.0.1"),
        "{}",
        runs[0].printed
    );
    // The failing runs name the nodes they tried, without the credentials.
    assert!(
        runs[2].printed.contains(&format!("127.0.0.1:{a}")),
        "{}",
        runs[2].printed
    );
    assert!(runs[3].printed.contains("bad port"), "{}", runs[3].printed);
}

/// The dashboard's header shows the endpoint: for a node list with credentials, redacted.
#[test]
fn the_dashboard_header_never_shows_a_node_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let nodes = format!("app:{USER_PASS}@127.0.0.1:{port}");
    let (line, _) = binary_line(dir.path(), &[], &["--cluster", "--cluster-nodes", &nodes]);
    let tmux = Tmux::start("nodesecret", 160, 40, &line);
    let s = tmux.wait_for("the header", |s| s.contains(&format!("127.0.0.1:{port}")));
    std::thread::sleep(Duration::from_millis(1000));
    let later = tmux.screen();
    tmux.keys(&["q"]);
    let end = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert_no_secret(&Run {
        label: "dashboard with nodes".into(),
        status: std::process::ExitStatus::default(),
        printed: format!("{s}\n{later}\n{end}"),
    });
}

/// URLs that do not parse still have their password taken out before they are echoed.
#[test]
fn malformed_urls_are_never_echoed_with_their_password() {
    let urls = [
        format!("redis:/:{USER_PASS}@127.0.0.1:1"),
        format!("redis::{USER_PASS}@127.0.0.1:1"),
        format!("redis:{USER_PASS}@127.0.0.1:1"),
        format!("redis://app:{USER_PASS}@127.0.0.1:notaport/0"),
        format!("redis://app:{USER_PASS}/x@127.0.0.1:1/0"),
        format!("http://app:{USER_PASS}@127.0.0.1:1"),
        format!("unix:///nonexistent/redis.sock?db=0&pass={USER_PASS}"),
    ];
    for url in &urls {
        for args in [
            vec!["--redis-url", url, "--print-config"],
            vec!["--redis-url", url, "--once"],
            vec!["--redis-url", url, "check"],
        ] {
            let r = run(&format!("{args:?}"), &args, &[]);
            assert_no_secret(&r);
            assert!(!r.printed.contains("panicked"), "{}", r.printed);
        }
        let r = run(
            &format!("REDIS_URL={url}"),
            &["--once"],
            &[("REDIS_URL", url)],
        );
        assert_no_secret(&r);
    }
}

/// A config file mistake on the password's own line: neither a TOML syntax error (whose
/// message would quote the line) nor a type error (which would show the value) shows it.
#[test]
fn config_file_errors_never_quote_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let numeric = "918273645546372819";
    // (file, text, exit code, what the output names)
    let cases = [
        (
            "syntax.toml",
            format!("[redis]\npassword = \"{USER_PASS}\n"),
            2,
            "syntax.toml",
        ),
        (
            "syntax2.toml",
            format!("[redis]\npassword = {USER_PASS}\n"),
            2,
            "line 2",
        ),
        (
            "type.toml",
            format!("[redis]\npassword = {{ v = \"{USER_PASS}\" }}\n"),
            2,
            "redis.password",
        ),
        (
            "url.toml",
            format!("[redis]\nurl = \"redis:/:{USER_PASS}@h:1\"\n"),
            2,
            "redis.url",
        ),
        // A number is taken as the password's text, and redacted like any password.
        (
            "number.toml",
            format!("[redis]\npassword = {numeric}\n"),
            0,
            "<redacted>",
        ),
    ];
    for (name, text, code, named) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let r = run(
            name,
            &["--config", path.to_str().unwrap(), "--print-config"],
            &[],
        );
        assert_eq!(r.status.code(), Some(code), "{name}: {}", r.printed);
        assert!(r.printed.contains(named), "{name}: {}", r.printed);
        assert!(!r.printed.contains(numeric), "{name}: {}", r.printed);
        assert_no_secret(&r);
    }
}

fn requirepass_server() -> RedisServer {
    RedisServer::start_with(ServerOptions {
        password: Some(ADMIN_PASS.into()),
        ..Default::default()
    })
}

/// NOAUTH (no password sent to a server that requires one) says a password is required; it
/// does not suggest a wrong one.
#[test]
fn no_password_for_a_server_that_requires_one_says_so() {
    let server = requirepass_server();
    let port = server.port.to_string();
    for args in [vec!["check"], vec!["--once"]] {
        let r = run(
            &format!("{args:?}"),
            &args,
            &[("REDIS_HOST", "127.0.0.1"), ("REDIS_PORT", &port)],
        );
        assert!(!r.status.success(), "{}", r.printed);
        assert!(
            r.printed.contains("requires a password and none was given"),
            "{}",
            r.printed
        );
        assert!(!r.printed.contains("wrong"), "{}", r.printed);
        assert_no_secret(&r);
    }
}

#[tokio::test]
async fn no_password_is_a_missing_password_error_in_the_library() {
    let server = requirepass_server();
    let mut settings = server.redis_settings();
    settings.password = None;
    let err = artemis::connection::Redis::connect(&settings)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            artemis::Error::Auth {
                missing_password: true,
                ..
            }
        ),
        "{err:?}"
    );
}

/// WRONGPASS (a password sent and refused) says the credentials were refused.
#[test]
fn a_refused_password_says_the_credentials_were_refused() {
    let server = requirepass_server();
    let port = server.port.to_string();
    let r = run(
        "wrong",
        &["check"],
        &[
            ("REDIS_HOST", "127.0.0.1"),
            ("REDIS_PORT", &port),
            ("REDIS_PASSWORD", WRONG_PASS),
        ],
    );
    assert!(!r.status.success(), "{}", r.printed);
    assert!(
        r.printed.contains("refused the credentials"),
        "{}",
        r.printed
    );
    assert!(
        r.printed.contains("wrong user name or password"),
        "{}",
        r.printed
    );
    assert!(!r.printed.contains("requires a password"), "{}", r.printed);
    assert_no_secret(&r);
}
