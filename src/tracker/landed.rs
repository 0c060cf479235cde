//! Cluster writes whose script landed while a write beside it failed.
//!
//! On Cluster one tracker write is three commands on up to three masters: the card's script
//! (document, history, event), its stage document and the index. When the script lands and
//! one of the others is refused or lost (a master at `maxmemory`, a master down), the write
//! as a whole fails and the outage buffer replays it. Running the script again would add its
//! event to the history and publish it once more, at every retry for as long as the refusal
//! lasts. The handle remembers instead that the script landed, with its reply, and a replay of
//! the same write sends only the other two (a SET and an index update, which may be repeated).
//! The memory is bounded; a write it has forgotten is replayed whole, as before.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use redis::Value;

/// Writes remembered at most: more than a refusal leaves half-landed (only the writes in
/// flight when it starts and the buffer's retries of its head).
const MAX_REMEMBERED: usize = 4_096;

/// The replies of scripts that landed for writes whose other commands did not, by the write's
/// identity (its op, card and arguments: a replay sends the same ones).
#[derive(Default)]
pub(super) struct LandedScripts(Mutex<Remembered>);

#[derive(Default)]
struct Remembered {
    replies: HashMap<String, Value>,
    order: VecDeque<String>,
}

impl LandedScripts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers that the script of write `id` landed with `reply`.
    pub(super) fn remember(&self, id: String, reply: Value) {
        let mut r = self.lock();
        if r.replies.insert(id.clone(), reply).is_none() {
            r.order.push_back(id);
        }
        while r.order.len() > MAX_REMEMBERED {
            if let Some(old) = r.order.pop_front() {
                r.replies.remove(&old);
            }
        }
    }

    /// The reply of write `id`'s script if it has landed, forgotten as it is taken (a write
    /// that fails again is remembered again).
    pub(super) fn take(&self, id: &str) -> Option<Value> {
        let mut r = self.lock();
        let reply = r.replies.remove(id)?;
        if let Some(at) = r.order.iter().position(|k| k == id) {
            r.order.remove(at);
        }
        Some(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_reply_is_taken_once() {
        let landed = LandedScripts::default();
        landed.remember("w".into(), Value::Int(1));
        assert_eq!(landed.take("w"), Some(Value::Int(1)));
        assert_eq!(landed.take("w"), None);
    }

    #[test]
    fn the_oldest_writes_are_forgotten_beyond_the_bound() {
        let landed = LandedScripts::default();
        for i in 0..=MAX_REMEMBERED {
            landed.remember(i.to_string(), Value::Int(1));
        }
        assert_eq!(landed.take("0"), None);
        assert_eq!(landed.take("1"), Some(Value::Int(1)));
        assert_eq!(
            landed.take(&MAX_REMEMBERED.to_string()),
            Some(Value::Int(1))
        );
    }
}
