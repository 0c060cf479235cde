//! `artemis-top check`: the first thing to run when pointing the tool at a new Redis. It
//! connects with the configured settings and reports what it found, or one clear reason why
//! it could not.

use std::time::Instant;

use crate::config::Settings;
use crate::connection::Redis;

/// What `check` found, ready to print.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub endpoint: String,
    pub cluster: bool,
    pub server_version: String,
    pub round_trip_ms: f64,
    pub cluster_state: Option<String>,
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "endpoint:      {}", self.endpoint)?;
        writeln!(
            f,
            "mode:          {}",
            if self.cluster {
                "cluster"
            } else {
                "standalone"
            }
        )?;
        writeln!(f, "server:        redis {}", self.server_version)?;
        writeln!(f, "round trip:    {:.2} ms", self.round_trip_ms)?;
        if let Some(state) = &self.cluster_state {
            writeln!(f, "cluster state: {state}")?;
        }
        Ok(())
    }
}

/// Connects (bounded by the connect timeout) and measures one PING round trip.
pub async fn check(settings: &Settings) -> crate::Result<CheckReport> {
    let redis = Redis::connect(&settings.redis).await?;
    let started = Instant::now();
    let _: String = redis.query(&redis::cmd("PING")).await?;
    let round_trip_ms = started.elapsed().as_secs_f64() * 1e3;
    // On Cluster the reply maps each node to its text; any node will do.
    let info = match redis.query(redis::cmd("INFO").arg("server")).await? {
        redis::Value::Map(nodes) => nodes
            .into_iter()
            .next()
            .and_then(|(_, text)| redis::from_redis_value::<String>(text).ok()),
        other => redis::from_redis_value::<String>(other).ok(),
    }
    .unwrap_or_default();
    let server_version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let cluster_state = if redis.is_cluster() {
        let info: String = redis.query(redis::cmd("CLUSTER").arg("INFO")).await?;
        info.lines()
            .find_map(|l| l.strip_prefix("cluster_state:"))
            .map(|s| s.trim().to_owned())
    } else {
        None
    };
    Ok(CheckReport {
        endpoint: redis.endpoint().to_owned(),
        cluster: redis.is_cluster(),
        server_version,
        round_trip_ms,
        cluster_state,
    })
}
