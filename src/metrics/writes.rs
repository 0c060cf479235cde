//! A metrics write as data: the commands one `track_*` call sends, on which keys. The same
//! write becomes either a plain pipeline, or (for writes that may be replayed after an outage)
//! one guard script per slot that applies its commands at most once per operation id, so a
//! write the server applied before its reply was lost is not counted twice when replayed.

use redis::{Cmd, Pipeline};

/// One command of a metrics write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    HIncrBy(String, i64),
    HIncrByFloat(String, f64),
    IncrBy(i64),
    SAdd(String),
    ZAdd { member: String, score: f64 },
    ZRemRangeByScore { min: String, max: String },
    Expire(i64),
}

/// The commands of one write, in order, each with its key.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Writes {
    ops: Vec<(String, Op)>,
}

impl Writes {
    pub fn push(&mut self, key: impl Into<String>, op: Op) -> &mut Self {
        self.ops.push((key.into(), op));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The same effect in fewer commands, so that a write coalescing many records costs what
    /// its distinct keys and fields cost, whatever each record adds: increments of one key and
    /// field become one (at the place of the first), a member added twice to one set is added
    /// once, and of several `EXPIRE`s of one key only the last is sent (at its own place, so it
    /// still follows every command that may create the key). Sorted-set commands keep their
    /// order and are not merged (a trim must see the members added before it).
    pub fn merged(&self) -> Writes {
        use std::collections::HashMap;
        let mut out: Vec<Option<(String, Op)>> = Vec::with_capacity(self.ops.len());
        // (key, command, field or member) → index in `out`.
        let mut at: HashMap<(&str, &'static str, &str), usize> = HashMap::new();
        for (key, op) in &self.ops {
            let slot = match op {
                Op::HIncrBy(f, _) => Some(("HINCRBY", f.as_str())),
                Op::HIncrByFloat(f, _) => Some(("HINCRBYFLOAT", f.as_str())),
                Op::IncrBy(_) => Some(("INCRBY", "")),
                Op::SAdd(m) => Some(("SADD", m.as_str())),
                Op::Expire(_) => Some(("EXPIRE", "")),
                Op::ZAdd { .. } | Op::ZRemRangeByScore { .. } => None,
            };
            let Some((name, field)) = slot else {
                out.push(Some((key.clone(), op.clone())));
                continue;
            };
            let id = (key.as_str(), name, field);
            match (at.get(&id).copied(), op) {
                (Some(i), Op::Expire(_)) => {
                    out[i] = None;
                    at.insert(id, out.len());
                    out.push(Some((key.clone(), op.clone())));
                }
                (Some(i), _) => {
                    if let Some((_, earlier)) = &mut out[i] {
                        earlier.absorb(op);
                    }
                }
                (None, _) => {
                    at.insert(id, out.len());
                    out.push(Some((key.clone(), op.clone())));
                }
            }
        }
        Writes {
            ops: out.into_iter().flatten().collect(),
        }
    }

    /// The plain pipeline: the commands as they are.
    pub fn pipeline(&self) -> Pipeline {
        let mut p = Pipeline::new();
        for (key, op) in &self.ops {
            let (name, a, b) = op.parts();
            let cmd = p.cmd(name).arg(key).arg(a);
            if let Some(b) = b {
                cmd.arg(b);
            }
            cmd.ignore();
        }
        p
    }

    /// One guard-script call per group of keys that share a slot (one group on a single
    /// server), each with its marker `marker(first key of the group)` in that slot, in the order
    /// the groups first appear. `script` makes the command head (`EVALSHA <sha>` or `EVAL <source>`)
    /// that the group's keys and arguments are appended to.
    pub fn guarded(
        &self,
        cluster: bool,
        marker_ttl_seconds: u64,
        marker: impl Fn(&str) -> String,
        script: &(impl Fn() -> Cmd + ?Sized),
    ) -> Pipeline {
        let slots = self
            .ops
            .iter()
            .map(|(key, _)| cluster.then(|| crate::keys::hash_slot(key)));
        let mut p = Pipeline::new();
        for (_, indices) in crate::connection::cluster::group_by_slot(slots) {
            let ops: Vec<&(String, Op)> = indices.into_iter().map(|i| &self.ops[i]).collect();
            let mut keys: Vec<&str> = Vec::new();
            let mut args: Vec<String> = vec![marker_ttl_seconds.to_string()];
            for (key, op) in &ops {
                let index = match keys.iter().position(|k| k == key) {
                    Some(i) => i,
                    None => {
                        keys.push(key);
                        keys.len() - 1
                    }
                };
                let (name, a, b) = op.parts();
                // KEYS[1] is the marker, so the first key is KEYS[2].
                args.extend([
                    (index + 2).to_string(),
                    name.to_owned(),
                    a,
                    b.unwrap_or_default(),
                ]);
            }
            let mut cmd = script();
            cmd.arg(keys.len() + 1)
                .arg(marker(keys[0]))
                .arg(&keys)
                .arg(&args);
            p.add_command(cmd).ignore();
        }
        p
    }
}

impl Op {
    /// Adds a later command of the same kind on the same key and field into this one.
    fn absorb(&mut self, later: &Op) {
        match (self, later) {
            (Op::HIncrBy(_, n), Op::HIncrBy(_, m)) | (Op::IncrBy(n), Op::IncrBy(m)) => {
                *n = n.saturating_add(*m);
            }
            (Op::HIncrByFloat(_, x), Op::HIncrByFloat(_, y)) => *x += *y,
            // A member added again, or the same kind on another field: nothing to add.
            _ => {}
        }
    }

    /// Command name and arguments after the key.
    fn parts(&self) -> (&'static str, String, Option<String>) {
        match self {
            Op::HIncrBy(field, n) => ("HINCRBY", field.clone(), Some(n.to_string())),
            Op::HIncrByFloat(field, x) => ("HINCRBYFLOAT", field.clone(), Some(float(*x))),
            Op::IncrBy(n) => ("INCRBY", n.to_string(), None),
            Op::SAdd(member) => ("SADD", member.clone(), None),
            Op::ZAdd { member, score } => ("ZADD", float(*score), Some(member.clone())),
            Op::ZRemRangeByScore { min, max } => {
                ("ZREMRANGEBYSCORE", min.clone(), Some(max.clone()))
            }
            Op::Expire(seconds) => ("EXPIRE", seconds.to_string(), None),
        }
    }
}

/// Decimal text Redis parses back to the same double (Rust's shortest round-trip form).
fn float(x: f64) -> String {
    format!("{x:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Writes {
        let mut w = Writes::default();
        w.push(
            "artemis:metrics:llm",
            Op::HIncrBy("total_requests".into(), 2),
        )
        .push(
            "artemis:metrics:llm",
            Op::HIncrByFloat("total_cost".into(), 0.1),
        )
        .push(
            "artemis:metrics:llm:openai",
            Op::HIncrBy("requests".into(), 2),
        )
        .push(
            "artemis:metrics::index:providers",
            Op::SAdd("openai".into()),
        );
        w
    }

    #[test]
    fn merging_sums_increments_per_key_and_field_and_keeps_the_last_expire() {
        let mut w = Writes::default();
        w.push("a", Op::HIncrBy("n".into(), 1))
            .push("a", Op::Expire(10))
            .push("b", Op::IncrBy(2))
            .push("a", Op::HIncrBy("n".into(), 4))
            .push("a", Op::HIncrBy("m".into(), 1))
            .push("a", Op::HIncrByFloat("x".into(), 0.5))
            .push("s", Op::SAdd("p".into()))
            .push("b", Op::IncrBy(3))
            .push("s", Op::SAdd("p".into()))
            .push("a", Op::HIncrByFloat("x".into(), 0.25))
            .push("a", Op::Expire(20));
        let mut want = Writes::default();
        want.push("a", Op::HIncrBy("n".into(), 5))
            .push("b", Op::IncrBy(5))
            .push("a", Op::HIncrBy("m".into(), 1))
            .push("a", Op::HIncrByFloat("x".into(), 0.75))
            .push("s", Op::SAdd("p".into()))
            .push("a", Op::Expire(20));
        assert_eq!(w.merged(), want);
    }

    #[test]
    fn merging_leaves_sorted_set_commands_in_their_order() {
        let mut w = Writes::default();
        w.push(
            "z",
            Op::ZAdd {
                member: "m".into(),
                score: 1.0,
            },
        )
        .push(
            "z",
            Op::ZRemRangeByScore {
                min: "-inf".into(),
                max: "(0".into(),
            },
        )
        .push(
            "z",
            Op::ZAdd {
                member: "m".into(),
                score: 2.0,
            },
        );
        assert_eq!(w.merged(), w);
    }

    #[test]
    fn floats_keep_their_value() {
        for x in [0.1, 1e-7, 123456.789, 2.5e20, -0.0] {
            assert_eq!(float(x).parse::<f64>().unwrap(), x);
        }
    }

    #[test]
    fn one_script_per_slot_with_its_marker_in_that_slot() {
        let w = sample();
        let marker = |k: &str| format!("artemis:metrics::op:{{{k}}}:id");
        let script = || redis::cmd("EVALSHA").arg("sha").clone();
        let p = w.guarded(true, 3600, marker, &script);
        let slots: std::collections::BTreeSet<u16> = w
            .ops
            .iter()
            .map(|(k, _)| crate::keys::hash_slot(k))
            .collect();
        assert_eq!(p.cmd_iter().count(), slots.len());
        for cmd in p.cmd_iter() {
            let args: Vec<Vec<u8>> = cmd
                .args_iter()
                .map(|a| match a {
                    redis::Arg::Simple(b) => b.to_vec(),
                    _ => Vec::new(),
                })
                .collect();
            let m = String::from_utf8_lossy(&args[3]).into_owned();
            assert!(
                m.starts_with("artemis:metrics::op:{"),
                "the marker is KEYS[1]: {m}"
            );
            // Every key of the call is in the marker's slot.
            let n: usize = String::from_utf8_lossy(&args[2]).parse().unwrap();
            let slot = crate::keys::hash_slot(&m);
            for key in &args[3..3 + n] {
                assert_eq!(crate::keys::hash_slot(&String::from_utf8_lossy(key)), slot);
            }
        }
        // On a single server, one call for everything.
        let p = w.guarded(false, 3600, |k| format!("m:{{{k}}}"), &script);
        assert_eq!(p.cmd_iter().count(), 1);
    }
}
