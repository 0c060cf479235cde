//! The health probe: the dashboard barely writes, so it would never see an `OOM` or a
//! `READONLY` reply of its own. Every [`PROBE_INTERVAL`] the poll asks the server's `INFO`
//! (one round trip beside the snapshot's) whether it would refuse writes, and publishes the
//! answer as the [`Health`](super::Health). A least-privilege ACL user may not run `INFO`: the
//! probe then stops asking and the health is what refused replies tell.
//!
//! On Cluster the probe asks every master (`CLUSTER NODES`, then `INFO` on each, at once): a
//! master that would refuse writes refuses those of its slots, so its refusal is the health.

use std::time::{Duration, Instant};

use super::Redis;
use super::state::{HealthEvent, publish_health};
use crate::error::Error;

/// How often the probe asks the server at most.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(3);

impl Redis {
    /// Runs the probe unless it ran less than [`PROBE_INTERVAL`] ago.
    pub async fn probe_health_if_due(&self) {
        {
            let mut last = self
                .inner
                .last_probe
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < PROBE_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        self.probe_health().await;
    }

    /// Asks the server (on Cluster every master) now whether it would refuse writes, and
    /// publishes the answer. Does nothing while disconnected, or once the ACL user was found
    /// not to be allowed `INFO`.
    pub async fn probe_health(&self) {
        if self.inner.health.borrow().probe_denied || !self.has_conn() {
            return;
        }
        let refusal = if self.is_cluster() {
            self.probe_masters().await
        } else {
            self.run(|mut c| async move { redis::cmd("INFO").query_async::<String>(&mut c).await })
                .await
                .map(|text| refusal_from_info(&text))
        };
        match refusal {
            Ok(code) => publish_health(&self.inner.health, HealthEvent::Probed(code)),
            Err(Error::Permission { .. }) => {
                publish_health(&self.inner.health, HealthEvent::ProbeDenied)
            }
            // An outage is the connection state's news; a refusal was published by classify.
            Err(e) => tracing::debug!(error = %e, "health probe failed"),
        }
    }

    /// The refusal of the first master (in `CLUSTER NODES` order) that would refuse writes.
    /// A master that did not answer fails the probe unless another one refuses: its state is
    /// unknown, and an unreachable master is the connection state's news.
    async fn probe_masters(&self) -> Result<Option<&'static str>, Error> {
        let masters = self.cluster_masters().await?;
        let infos = futures::future::join_all(
            masters
                .iter()
                .map(|(host, port)| self.query_node(redis::cmd("INFO"), host, *port)),
        )
        .await;
        let mut failure = None;
        for info in infos {
            match info.and_then(|v| {
                redis::from_redis_value::<String>(v)
                    .map_err(|e| Error::UnexpectedReply(e.to_string()))
            }) {
                Ok(text) => {
                    if let Some(code) = refusal_from_info(&text) {
                        return Ok(Some(code));
                    }
                }
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        failure.map_or(Ok(None), Err)
    }

    fn has_conn(&self) -> bool {
        self.inner.conn.read().is_ok_and(|g| g.is_some())
    }
}

/// The code a server in the state `INFO` describes refuses writes with, if it does: `LOADING`
/// while it loads, `READONLY` as a read-only replica, `OOM` above `maxmemory` under
/// `noeviction` (other policies evict instead, so only a refused reply can tell).
pub(crate) fn refusal_from_info(info: &str) -> Option<&'static str> {
    let field = |name: &str| {
        info.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|r| r.strip_prefix(':'))
                .map(str::trim)
        })
    };
    let number = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok());
    if field("loading") == Some("1") {
        return Some("LOADING");
    }
    if field("role") == Some("slave") && field("slave_read_only") != Some("0") {
        return Some("READONLY");
    }
    let max = number("maxmemory").unwrap_or(0);
    if max > 0 && field("maxmemory_policy") == Some("noeviction") {
        let used = number("used_memory").unwrap_or(0);
        // What Redis leaves out when it compares with maxmemory (replication and AOF buffers).
        let uncounted = number("mem_not_counted_for_evict").unwrap_or(0);
        if used.saturating_sub(uncounted) > max {
            return Some("OOM");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_name_the_refusal() {
        let base = "# Memory\r\nused_memory:5000\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\nmem_not_counted_for_evict:0\r\n# Persistence\r\nloading:0\r\n# Replication\r\nrole:master\r\n";
        assert_eq!(refusal_from_info(base), None);
        let oom = base.replace("maxmemory:0", "maxmemory:1000");
        assert_eq!(refusal_from_info(&oom), Some("OOM"));
        let lru = oom.replace("noeviction", "allkeys-lru");
        assert_eq!(refusal_from_info(&lru), None);
        let replica = base.replace("role:master", "role:slave\r\nslave_read_only:1");
        assert_eq!(refusal_from_info(&replica), Some("READONLY"));
        let writable = base.replace("role:master", "role:slave\r\nslave_read_only:0");
        assert_eq!(refusal_from_info(&writable), None);
        let loading = base.replace("loading:0", "loading:1");
        assert_eq!(refusal_from_info(&loading), Some("LOADING"));
        // `used_memory_rss` and friends do not pass for `used_memory`.
        let rss = "used_memory_rss:99999\r\nmaxmemory:10\r\nmaxmemory_policy:noeviction\r\n";
        assert_eq!(refusal_from_info(rss), None);
    }
}
