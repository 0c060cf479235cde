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

/// Key names a reader finds by walking the keyspace a bounded step per read instead of all of
/// it at once: what the original writes without an index (metric names, rate-limit windows).
///
/// The first read (so `--once`, and the dashboard's start) walks the whole keyspace at once,
/// as does the first read after [`Discovery::forget`]; later reads each advance one
/// [`Redis::scan_step`]. A name found joins at once, so a name written during a pass is found
/// by the end of the next (SCAN returns what is there for a whole pass); a name that the last
/// complete pass found and the pass under way has not (yet) stays, so a name leaves after one
/// complete pass without it. A pass an error interrupted starts again with what it had found kept, so a
/// name that vanished then may stay one pass longer.
#[derive(Debug, Default)]
pub struct Discovery {
    cursor: ScanCursor,
    /// What the last complete pass found (`None`: no pass yet, or forgotten).
    complete: Option<std::collections::BTreeSet<String>>,
    /// What the pass under way has found so far.
    partial: std::collections::BTreeSet<String>,
    /// When the last whole walk started (what [`Discovery::forget`]-style resets compare).
    walked_at: Option<std::time::Instant>,
}

/// What one [`Discovery::read`] walks for: the SCAN's `MATCH`, optional `TYPE`, which found
/// keys count, and at most how many names are kept.
#[derive(Debug, Clone, Copy)]
pub struct DiscoveryScan<'a> {
    /// The `MATCH` pattern (already glob-escaped).
    pub pattern: &'a str,
    /// The `TYPE` filter, if any.
    pub key_type: Option<&'a str>,
    /// The `COUNT` of one step between whole walks.
    pub count_per_step: usize,
    /// Most names kept (so a huge keyspace cannot exhaust memory); the rest are left out and
    /// logged.
    pub limit: usize,
}

/// The `COUNT` of a whole walk's steps (as [`Redis::scan_match`]).
const WALK_COUNT: usize = 1_000;

impl Discovery {
    /// Makes the next [`Discovery::read`] walk the whole keyspace again.
    pub fn forget(&mut self) {
        self.complete = None;
    }

    /// When the last whole walk started, if any.
    pub fn walked_at(&self) -> Option<std::time::Instant> {
        self.walked_at
    }

    /// Complete passes so far (whole walks and passes made of steps).
    pub fn passes(&self) -> u64 {
        self.cursor.passes()
    }

    /// The names known now (sorted, each once): a whole walk's when there is no complete pass
    /// yet (or `whole` asks for one), otherwise the last complete pass's and the pass under
    /// way's after one more bounded step. `keep` turns a found key into the name kept (or
    /// leaves it out).
    pub async fn read(
        &mut self,
        redis: &Redis,
        scan: DiscoveryScan<'_>,
        whole: bool,
        keep: impl Fn(&[u8]) -> Option<String>,
    ) -> Result<Vec<String>, Error> {
        if whole || self.complete.is_none() {
            let started = std::time::Instant::now();
            let mut walk = ScanCursor::default();
            let mut found = std::collections::BTreeSet::new();
            while walk.passes() == 0 {
                let keys = redis
                    .scan_step(&mut walk, scan.pattern, scan.key_type, WALK_COUNT)
                    .await?;
                Self::add(&mut found, keys, &keep, scan);
            }
            self.complete = Some(found);
            self.partial.clear();
            // The bounded walk starts over: the whole walk just saw everything it would have.
            self.cursor = ScanCursor {
                passes: self.cursor.passes + 1,
                ..ScanCursor::default()
            };
            self.walked_at = Some(started);
        } else {
            let passes = self.cursor.passes();
            let keys = redis
                .scan_step(
                    &mut self.cursor,
                    scan.pattern,
                    scan.key_type,
                    scan.count_per_step,
                )
                .await?;
            Self::add(&mut self.partial, keys, &keep, scan);
            if self.cursor.passes() > passes {
                self.complete = Some(std::mem::take(&mut self.partial));
            }
        }
        let complete = self.complete.as_ref().into_iter().flatten();
        let mut names: Vec<String> = complete.chain(&self.partial).cloned().collect();
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }

    fn add(
        into: &mut std::collections::BTreeSet<String>,
        keys: Vec<Vec<u8>>,
        keep: &impl Fn(&[u8]) -> Option<String>,
        scan: DiscoveryScan<'_>,
    ) {
        let mut over = 0usize;
        for key in keys {
            if let Some(name) = keep(&key) {
                if into.len() < scan.limit || into.contains(&name) {
                    into.insert(name);
                } else {
                    over += 1;
                }
            }
        }
        if over > 0 {
            tracing::warn!(
                pattern = scan.pattern,
                limit = scan.limit,
                over,
                "SCAN found more names than are kept; some are not shown"
            );
        }
    }
}
