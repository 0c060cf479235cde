//! `artemis-top check`: the first thing to run when pointing the tool at a new Redis. It
//! connects with the configured settings and reports what it found, or one clear reason why
//! it could not; and, because the dashboard is meant to run as a least-privilege ACL user, what
//! this user may do: read the `artemis:*` keys, and receive live events (PSUBSCRIBE), which
//! Redis ACLs grant only when the events pattern is listed literally.

use std::time::Instant;

use crate::config::Settings;
use crate::connection::Redis;
use crate::error::Error;
use crate::keys::KeySpace;

/// What `check` found, ready to print.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub endpoint: String,
    pub cluster: bool,
    pub server_version: String,
    pub round_trip_ms: f64,
    pub cluster_state: Option<String>,
    /// Whether this user may read the tracker's keys (`EXISTS` on the card index).
    pub can_read: Access,
    /// Whether this user may PSUBSCRIBE to every card's events channel.
    pub can_subscribe: Access,
}

/// The outcome of one permission probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    Yes,
    /// Refused, with the server's reason.
    Denied(String),
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Yes => write!(f, "yes"),
            Self::Denied(why) => write!(f, "NO ({why})"),
        }
    }
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
        writeln!(f, "read keys:     {}", self.can_read)?;
        writeln!(f, "live events:   {}", self.can_subscribe)?;
        Ok(())
    }
}

/// Connects (bounded by the connect timeout) and measures one PING round trip.
pub async fn check(settings: &Settings) -> crate::Result<CheckReport> {
    let redis = Redis::connect(&settings.redis).await?;
    let started = Instant::now();
    let _: String = redis.query(&redis::cmd("PING")).await?;
    let round_trip_ms = started.elapsed().as_secs_f64() * 1e3;
    // INFO and CLUSTER INFO may be refused to a least-privilege user: that is no reason to
    // fail the check, only to say less.
    let refused = |e: &Error| matches!(e, Error::Permission { .. });
    // On Cluster the reply maps each node to its text; any node will do.
    let server_version = match redis.query(redis::cmd("INFO").arg("server")).await {
        Ok(redis::Value::Map(nodes)) => nodes
            .into_iter()
            .next()
            .and_then(|(_, text)| redis::from_redis_value::<String>(text).ok())
            .map(|info| version_of(&info)),
        Ok(other) => redis::from_redis_value::<String>(other)
            .ok()
            .map(|info| version_of(&info)),
        Err(e) if refused(&e) => Some("unknown (INFO not permitted for this user)".into()),
        Err(e) => return Err(e),
    }
    .unwrap_or_else(|| "unknown".into());
    let cluster_state = if redis.is_cluster() {
        match redis
            .query::<String>(redis::cmd("CLUSTER").arg("INFO"))
            .await
        {
            Ok(info) => info
                .lines()
                .find_map(|l| l.strip_prefix("cluster_state:"))
                .map(|s| s.trim().to_owned()),
            Err(e) if refused(&e) => Some("unknown (CLUSTER INFO not permitted)".into()),
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let keys = KeySpace::new(settings.prefixes.clone());
    let can_read = match redis
        .query::<i64>(redis::cmd("EXISTS").arg(keys.pipeline_index()))
        .await
    {
        Ok(_) => Access::Yes,
        Err(Error::Permission { detail, .. }) => Access::Denied(detail),
        Err(e) => return Err(e),
    };
    let can_subscribe = match redis.psubscribe(&keys.events_channel_pattern()).await {
        Ok(_) => Access::Yes,
        Err(Error::Permission { detail, .. }) => Access::Denied(format!(
            "{detail}; the ACL must list &{} literally",
            keys.events_channel_pattern()
        )),
        Err(other) => return Err(other),
    };
    Ok(CheckReport {
        endpoint: redis.endpoint().to_owned(),
        cluster: redis.is_cluster(),
        server_version,
        round_trip_ms,
        cluster_state,
        can_read,
        can_subscribe,
    })
}

fn version_of(info: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim()
        .to_owned()
}
