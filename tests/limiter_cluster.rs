//! The rate limiter on a 3-master Redis Cluster: every script touches keys of one hash slot,
//! scripts are (re)loaded on whichever node owns a key, and the registry read spans nodes.

mod support;

use std::time::Duration;

use artemis::Backend;
use artemis::keys::KeySpace;
use artemis::limiter::{Decision, Limits, RateLimiter, Source};
use support::RedisCluster;

fn slot(cluster: &RedisCluster, key: &str) -> String {
    cluster.nodes[0].cli(&["CLUSTER", "KEYSLOT", key])
}

#[tokio::test]
async fn limiter_runs_on_cluster() {
    let cluster = RedisCluster::start();
    let storage = Backend::redis(cluster.settings())
        .await
        .expect("connect to the cluster");
    let limiter = RateLimiter::new(storage.limiter().clone());
    let keys = KeySpace::default();

    // Keys spread over the three masters.
    let limits = Limits::requests(3, Duration::from_secs(60)).with_tokens(100);
    let targets: Vec<_> = (0..12)
        .map(|i| limiter.limit("svc", &format!("user-{i}"), limits).unwrap())
        .collect();
    let slots: std::collections::HashSet<String> =
        targets.iter().map(|t| slot(&cluster, t.key())).collect();
    assert!(slots.len() > 3, "keys should land in several slots");
    for t in &targets {
        let s = slot(&cluster, t.key());
        assert_eq!(slot(&cluster, &keys.ratelimit_tokens(t.key())), s);
        assert_eq!(slot(&cluster, &keys.ratelimit_token_sum(t.key())), s);
    }

    for t in &targets {
        let a = match limiter.check(t, 40).await.unwrap() {
            Decision::Admitted(r) => r,
            Decision::Refused(r) => panic!("refused: {r}"),
        };
        assert_eq!(a.source(), Source::Store);
        limiter
            .check(t, 40)
            .await
            .unwrap()
            .into_reservation()
            .unwrap()
            .keep();
        let refusal = limiter.check(t, 40).await.unwrap();
        assert!(refusal.refusal().is_some(), "80 + 40 > 100 tokens");
        a.reconcile(10).await.unwrap();
        limiter
            .check(t, 40)
            .await
            .unwrap()
            .into_reservation()
            .unwrap()
            .keep();
        let h = limiter.headroom(t).await.unwrap();
        assert_eq!((h.requests_used, h.tokens_used), (3, Some(90)));
    }

    // The registry (one slot) and the windows (many) in two pipelined round trips.
    let all = limiter.headroom_all().await.unwrap();
    assert_eq!(all.len(), targets.len());
    assert!(
        all.iter()
            .all(|s| s.requests_used == 3 && s.tokens_used == Some(90))
    );

    // Scripts are reloaded on every node that lost them.
    for node in &cluster.nodes {
        assert_eq!(node.cli(&["SCRIPT", "FLUSH"]), "OK");
    }
    for t in &targets {
        limiter.reset(t).await.unwrap();
        let r = limiter
            .check(t, 5)
            .await
            .unwrap()
            .into_reservation()
            .unwrap();
        assert_eq!((r.requests_used(), r.tokens_used()), (1, 5));
        r.release().await.unwrap();
    }
    let preset = limiter.preset("openai", "gpt-4o-mini", "default").unwrap();
    let r = limiter
        .check(&preset, 0)
        .await
        .unwrap()
        .into_reservation()
        .unwrap();
    assert_eq!(r.requests_used(), 1);
}
