//! Running the Python side of the interop tests: redis-py scripts under `tests/python/` that
//! follow the original Artemis's algorithms as `shared/PROTOCOL.md` states them (the package
//! `tests/python/original/` holds those re-statements, one module per job).
//!
//! Interop is tested with Python itself, so a missing `python3` or redis-py is a test failure
//! with the command that fixes it, never a silent skip (`.ci/run` installs redis-py).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `tests/python/` in this checkout.
pub fn python_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// Panics with the fix when python3 or redis-py is missing.
pub fn require_redis_py() {
    let out = Command::new("python3")
        .args(["-c", "import redis"])
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed for the interop tests: {e}"));
    assert!(
        out.status.success(),
        "redis-py is needed for the interop tests: python3 -m pip install redis\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `tests/python/<script>` with `args` against the server at `redis_url` (passed as
/// `REDIS_URL`, with `tests/python` on `PYTHONPATH` so scripts import `original.*`), and
/// returns its stdout. Panics, showing stderr, when the script fails or runs over 60 s.
pub fn run_python(script: &str, redis_url: &str, args: &[&str]) -> String {
    require_redis_py();
    let child = Command::new("python3")
        .arg("-W")
        .arg("ignore")
        .arg(python_dir().join(script))
        .args(args)
        .env("REDIS_URL", redis_url)
        .env("PYTHONPATH", python_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3");
    let out = super::wait_output(child, Duration::from_secs(60), script);
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python printed UTF-8")
}
