//! Listing keys without blocking the server: SCAN in batches (never KEYS), on every master of
//! a Cluster, with a cap so a huge keyspace cannot exhaust memory.

use super::{Conn, Redis};
use crate::error::Error;

impl Redis {
    /// Every key matching `pattern` (already glob-escaped where needed), optionally only of
    /// one Redis `TYPE`, by SCAN in batches of `COUNT 1000` (never KEYS), on every master of a
    /// Cluster. Stops after `limit` keys so a huge keyspace cannot exhaust memory.
    ///
    /// Key names that are not UTF-8 (no name this project or the Python original writes) are
    /// left out and logged; [`Redis::scan_match_raw`] returns them too.
    pub async fn scan_match(
        &self,
        pattern: &str,
        key_type: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, Error> {
        let raw = self.scan_match_raw(pattern, key_type, limit).await?;
        let mut keys = Vec::with_capacity(raw.len());
        let mut skipped = 0usize;
        for name in raw {
            match String::from_utf8(name) {
                Ok(k) => keys.push(k),
                Err(_) => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(
                pattern,
                skipped,
                "SCAN found key names that are not UTF-8; left out"
            );
        }
        Ok(keys)
    }

    /// Like [`Redis::scan_match`], with key names as bytes.
    pub async fn scan_match_raw(
        &self,
        pattern: &str,
        key_type: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let mut found = Vec::new();
        match self.conn()? {
            Conn::Single(_) => {
                self.scan_node(None, pattern, key_type, limit, &mut found)
                    .await?
            }
            Conn::Cluster(_) => {
                for (host, port) in self.cluster_masters().await? {
                    self.scan_node(Some((host, port)), pattern, key_type, limit, &mut found)
                        .await?;
                    if found.len() >= limit {
                        break;
                    }
                }
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    async fn scan_node(
        &self,
        node: Option<(String, u16)>,
        pattern: &str,
        key_type: Option<&str>,
        limit: usize,
        found: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        let mut cursor: u64 = 0;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000);
            if let Some(t) = key_type {
                cmd.arg("TYPE").arg(t);
            }
            let (next, keys): (u64, Vec<Vec<u8>>) = match &node {
                None => self.query(&cmd).await?,
                Some((host, port)) => {
                    let value = self.query_node(cmd, host, *port).await?;
                    redis::from_redis_value(value).map_err(|e| Error::from_reply(&e.into()))?
                }
            };
            found.extend(keys);
            cursor = next;
            if cursor == 0 || found.len() >= limit {
                return Ok(());
            }
        }
    }
}

/// Where a resumable SCAN stands: one cursor per master (one for a standalone server), so that
/// a reader that polls can walk the keyspace a bounded amount per poll instead of all of it at
/// once. A pass starts with the masters known then; a master that joins later is walked from
/// the next pass on.
#[derive(Debug, Clone, Default)]
pub struct ScanCursor {
    /// The masters still to walk in this pass with their SCAN cursors (`None`: the server);
    /// empty between passes.
    nodes: Vec<(Option<(String, u16)>, u64)>,
    /// Passes walked to the end.
    passes: u64,
}

impl ScanCursor {
    /// How many passes over the whole keyspace have ended.
    pub fn passes(&self) -> u64 {
        self.passes
    }
}

impl Redis {
    /// Advances `cursor` by one `SCAN … COUNT count` on every master of the pass at once (one
    /// round-trip time whatever the keyspace's size) and returns the keys found. A step that
    /// fails leaves the cursor to start a new pass, since a failure often means the masters
    /// changed.
    pub async fn scan_step(
        &self,
        cursor: &mut ScanCursor,
        pattern: &str,
        key_type: Option<&str>,
        count: usize,
    ) -> Result<Vec<Vec<u8>>, Error> {
        if cursor.nodes.is_empty() {
            cursor.nodes = match self.conn()? {
                Conn::Single(_) => vec![(None, 0)],
                Conn::Cluster(_) => match self.cluster_masters().await {
                    Ok(masters) => masters.into_iter().map(|m| (Some(m), 0)).collect(),
                    Err(e) => return Err(e),
                },
            };
        }
        let steps = cursor.nodes.iter().map(|(node, at)| {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(*at)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(count.max(1));
            if let Some(t) = key_type {
                cmd.arg("TYPE").arg(t);
            }
            async move {
                match node {
                    None => self.query::<(u64, Vec<Vec<u8>>)>(&cmd).await,
                    Some((host, port)) => {
                        let value = self.query_node(cmd, host, *port).await?;
                        redis::from_redis_value(value).map_err(|e| Error::from_reply(&e.into()))
                    }
                }
            }
        });
        let replies = match futures::future::try_join_all(steps).await {
            Ok(r) => r,
            Err(e) => {
                cursor.nodes.clear();
                return Err(e);
            }
        };
        let mut found = Vec::new();
        for ((_, at), (next, keys)) in cursor.nodes.iter_mut().zip(replies) {
            *at = next;
            found.extend(keys);
        }
        cursor.nodes.retain(|(_, at)| *at != 0);
        if cursor.nodes.is_empty() {
            cursor.passes += 1;
        }
        Ok(found)
    }
}
