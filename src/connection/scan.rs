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
