//! Redis Cluster routing, in one place: the slot of a key (the driver's own function, see
//! [`crate::keys::hash_slot`]) and of a command, grouping by slot, per-node pipelines, a
//! multi-key get that takes one round-trip time on a server or a Cluster, and the discovery of
//! the masters (`CLUSTER SLOTS`, `CLUSTER NODES`).
//!
//! Why the core routes at all instead of leaving it to the driver: the driver accepts only
//! single-slot pipelines, and splitting a read of a thousand keys into one request per slot
//! would cost a thousand requests where one pipeline per master does.

use std::collections::HashMap;

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::{Cmd, Pipeline, Value};

use super::{Conn, Redis};
use crate::error::{Error, ServerCode};
use crate::keys::hash_slot;

/// Keys per MGET on a single server: large enough for few round trips, small enough not to
/// hold the server for long.
pub const MGET_CHUNK: usize = 1000;

/// The positions of `slots` grouped by equal slot, in the order the groups first appear.
pub(crate) fn group_by_slot<S: PartialEq>(
    slots: impl IntoIterator<Item = S>,
) -> Vec<(S, Vec<usize>)> {
    let mut groups: Vec<(S, Vec<usize>)> = Vec::new();
    for (i, slot) in slots.into_iter().enumerate() {
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, indices)) => indices.push(i),
            None => groups.push((slot, vec![i])),
        }
    }
    groups
}

/// The Cluster hash slot of a command's first key, `None` for keyless commands (PUBLISH,
/// EVALSHA with no keys, …), which may go to any node.
pub(crate) fn cmd_slot(cmd: &Cmd) -> Option<Slot> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .map(|a| match a {
            redis::Arg::Simple(b) => b,
            _ => &b"0"[..],
        })
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    let key = match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let numkeys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            if numkeys == 0 {
                return None;
            }
            args.get(3)?
        }
        b"PUBLISH" | b"SPUBLISH" | b"PING" | b"TIME" | b"SCRIPT" | b"INFO" | b"CLUSTER" => {
            return None;
        }
        _ => args.get(1)?,
    };
    Some(Slot::for_key(key))
}

/// Which master serves which slots, from `CLUSTER SLOTS`.
#[derive(Debug, Default)]
pub struct SlotMap {
    ranges: Vec<(u16, u16, (String, u16))>,
}

impl SlotMap {
    /// Reads a `CLUSTER SLOTS` reply; entries that do not parse, or name no addressable host,
    /// are left out (their keys are then routed by the driver).
    pub fn parse(reply: Value) -> Self {
        let mut ranges = Vec::new();
        let Value::Array(entries) = reply else {
            return Self { ranges };
        };
        for entry in entries {
            let Value::Array(parts) = entry else { continue };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(master))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            let host = match master.first() {
                Some(Value::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
                Some(Value::SimpleString(h)) => h.clone(),
                _ => continue,
            };
            let Some(Value::Int(port)) = master.get(1) else {
                continue;
            };
            // An empty or unknown host cannot be addressed: those keys go through the driver.
            if host.is_empty() || host == "?" {
                continue;
            }
            if let (Ok(start), Ok(end), Ok(port)) = (
                u16::try_from(*start),
                u16::try_from(*end),
                u16::try_from(*port),
            ) {
                ranges.push((start, end, (host, port)));
            }
        }
        Self { ranges }
    }

    /// The master serving `slot`, as (host, port).
    pub fn node_of(&self, slot: u16) -> Option<&(String, u16)> {
        self.ranges
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&slot))
            .map(|(_, _, n)| n)
    }
}

/// Masters that are not failed, from `CLUSTER NODES` output
/// (`<id> <ip:port@cport[,host]> <flags> …`).
pub(crate) fn parse_cluster_masters(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let _id = parts.next()?;
            let addr = parts.next()?;
            let flags = parts.next()?;
            if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                return None;
            }
            let hostport = addr.split('@').next()?;
            let (host, port) = hostport.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

impl Redis {
    /// A pipeline spanning Cluster slots, as one sub-pipeline per slot sent at once, with the
    /// replies put back in command order; `None` when the pipeline needs no split (one slot,
    /// or not a Cluster). See [`Redis::query_pipe`] for what a split changes.
    pub(super) async fn split_pipe(&self, pipe: &Pipeline) -> Result<Option<Value>, Error> {
        if !self.is_cluster() {
            return Ok(None);
        }
        let cmds: Vec<&Cmd> = pipe.cmd_iter().collect();
        let groups = group_by_slot(cmds.iter().map(|c| cmd_slot(c)));
        if groups.len() <= 1 {
            return Ok(None);
        }
        if pipe.is_transaction() {
            return Err(Error::InvalidInput(
                "a MULTI pipeline must stay in one Cluster hash slot".into(),
            ));
        }
        let sends = groups.iter().map(|(_, indices)| {
            let mut sub = Pipeline::with_capacity(indices.len());
            sub.ignore_errors();
            for &i in indices {
                sub.add_command(cmds[i].clone());
            }
            async move {
                let values: Vec<Value> = self
                    .run(|mut c| async move { sub.query_async(&mut c).await })
                    .await?;
                Ok::<_, Error>((indices, values))
            }
        });
        let mut out = vec![Value::Nil; cmds.len()];
        for (indices, values) in futures::future::try_join_all(sends).await? {
            for (&i, v) in indices.iter().zip(values) {
                out[i] = v;
            }
        }
        Ok(Some(Value::Array(out)))
    }

    /// Runs one command on the node at `host:port` (on a single server: on the server).
    pub(super) async fn query_node(&self, cmd: Cmd, host: &str, port: u16) -> Result<Value, Error> {
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: host.to_owned(),
            port,
        });
        self.run(|c| async move {
            match c {
                Conn::Cluster(mut c) => c.route_command(cmd, routing).await,
                Conn::Single(mut c) => cmd.query_async(&mut c).await,
            }
        })
        .await
    }

    /// Runs `pipe` in order on the master that serves `key` (on a standalone server: on the
    /// server), for reads that must see one node's clock and data together: e.g. `TIME`, then
    /// a read of `key`. Not a transaction: other clients' commands may run in between.
    pub async fn query_pipe_on_node_of(
        &self,
        pipe: &Pipeline,
        key: &str,
    ) -> Result<Vec<Value>, Error> {
        if !self.is_cluster() {
            return self.query_pipe(pipe).await;
        }
        let n = pipe.cmd_iter().count();
        let route = redis::cluster_routing::Route::with_key(
            key.as_bytes(),
            redis::cluster_routing::SlotAddr::Master,
        );
        let routing = SingleNodeRoutingInfo::SpecificNode(route);
        self.run(|c| async move {
            match c {
                Conn::Cluster(mut c) => c.route_pipeline(pipe.clone(), 0, n, routing).await,
                Conn::Single(mut c) => pipe.query_async(&mut c).await,
            }
        })
        .await
    }

    /// The reachable masters of the cluster, as (host, port).
    pub(super) async fn cluster_masters(&self) -> Result<Vec<(String, u16)>, Error> {
        let nodes: String = self
            .query(&redis::cmd("CLUSTER").arg("NODES").clone())
            .await?;
        Ok(parse_cluster_masters(&nodes))
    }

    /// The Cluster's slot map (one `CLUSTER SLOTS`), `None` on a standalone server.
    pub async fn slot_map(&self) -> Result<Option<SlotMap>, Error> {
        if !self.is_cluster() {
            return Ok(None);
        }
        let reply: Value = self.query(redis::cmd("CLUSTER").arg("SLOTS")).await?;
        Ok(Some(SlotMap::parse(reply)))
    }

    /// The values of any number of string keys in one round-trip time (`None`: missing or
    /// not a string). Standalone: MGETs of at most [`MGET_CHUNK`] keys in one pipeline.
    /// Cluster, given the slot map: one pipeline of GETs per master, all sent at once
    /// (MGET cannot span slots, and letting the driver split it sends one request per slot);
    /// keys the map does not place, or whose node answered with a redirect, are single GETs
    /// the driver routes.
    pub async fn get_many(
        &self,
        keys: &[String],
        slots: Option<&SlotMap>,
    ) -> Result<Vec<Option<Vec<u8>>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if self.is_cluster() {
            return self.cluster_get_many(keys, slots).await;
        }
        let mut p = Pipeline::new();
        for chunk in keys.chunks(MGET_CHUNK) {
            p.cmd("MGET").arg(chunk);
        }
        let parts: Vec<Vec<Option<Vec<u8>>>> = self.query_pipe(&p).await?;
        Ok(parts.into_iter().flatten().collect())
    }

    async fn cluster_get_many(
        &self,
        keys: &[String],
        slots: Option<&SlotMap>,
    ) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let mut by_node: HashMap<(String, u16), Vec<usize>> = HashMap::new();
        let mut unrouted = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            match slots.and_then(|m| m.node_of(hash_slot(key))) {
                Some(node) => by_node.entry(node.clone()).or_default().push(i),
                None => unrouted.push(i),
            }
        }
        let sends = by_node.into_iter().map(|((host, port), indices)| {
            let mut p = Pipeline::with_capacity(indices.len());
            for &i in &indices {
                p.cmd("GET").arg(&keys[i]);
            }
            let routing = SingleNodeRoutingInfo::ByAddress { host, port };
            async move {
                let n = indices.len();
                let values = self
                    .run(|c| async move {
                        match c {
                            Conn::Cluster(mut c) => c.route_pipeline(p, 0, n, routing).await,
                            Conn::Single(mut c) => p.query_async(&mut c).await,
                        }
                    })
                    .await?;
                Ok::<_, Error>((indices, values))
            }
        });
        let mut out: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
        for (indices, values) in futures::future::try_join_all(sends).await? {
            if values.len() != indices.len() {
                unrouted.extend(indices);
                continue;
            }
            for (i, v) in indices.into_iter().zip(values) {
                match v {
                    Value::BulkString(b) => out[i] = Some(b),
                    Value::Nil => {}
                    // Not a string: MGET would say nil.
                    Value::ServerError(e)
                        if ServerCode::parse(e.code()) == ServerCode::WrongType => {}
                    // MOVED, ASK, TRYAGAIN…: the map is stale; let the driver route it.
                    _ => unrouted.push(i),
                }
            }
        }
        // Keys the map did not place: single GETs the driver routes (and redirects), at once.
        let gets: Vec<Cmd> = unrouted
            .iter()
            .map(|&i| {
                let mut c = redis::cmd("GET");
                c.arg(&keys[i]);
                c
            })
            .collect();
        let values = futures::future::join_all(gets.iter().map(|c| self.query::<Value>(c))).await;
        for (&i, v) in unrouted.iter().zip(values) {
            match v {
                Ok(Value::BulkString(b)) => out[i] = Some(b),
                Ok(_) => {}
                Err(e) if e.is_wrong_type() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_first_appearance_order() {
        let groups = group_by_slot([3, 1, 3, 2, 1]);
        assert_eq!(groups, vec![(3, vec![0, 2]), (1, vec![1, 4]), (2, vec![3])]);
    }

    #[test]
    fn a_commands_slot_is_that_of_its_first_key() {
        let get = redis::cmd("GET").arg("{card}:x").clone();
        assert_eq!(cmd_slot(&get), Some(Slot::for_key("card")));
        let eval = redis::cmd("EVALSHA").arg("sha").arg(1).arg("k").clone();
        assert_eq!(cmd_slot(&eval), Some(Slot::for_key("k")));
        let keyless = redis::cmd("EVALSHA").arg("sha").arg(0).clone();
        assert_eq!(cmd_slot(&keyless), None);
        assert_eq!(cmd_slot(&redis::cmd("PUBLISH").arg("ch").clone()), None);
    }

    #[test]
    fn slot_map_places_slots_and_skips_unaddressable_nodes() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
            ]),
            Value::Array(vec![Value::Int(5461), Value::Int(10922), node("?", 7001)]),
            Value::Int(3),
        ]);
        let map = SlotMap::parse(reply);
        assert_eq!(map.node_of(17), Some(&("10.0.0.1".to_owned(), 7000)));
        assert_eq!(map.node_of(6000), None);
        assert_eq!(map.node_of(16000), None);
    }

    #[test]
    fn failed_and_replica_nodes_are_not_masters() {
        let nodes = "a 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n\
                     b 10.0.0.2:7001@17001 master,fail - 0 0 2 connected\n\
                     c 10.0.0.3:7002@17002 slave a 0 0 3 connected\n\
                     d 10.0.0.4:7003@17003,host.example master - 0 0 4 connected 5461-16383\n";
        assert_eq!(
            parse_cluster_masters(nodes),
            vec![("10.0.0.1".to_owned(), 7000), ("10.0.0.4".to_owned(), 7003)]
        );
    }
}
