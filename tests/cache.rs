//! The LLM response cache against a real Redis (standalone and Cluster) and the memory backend.
//! The LLM provider is a counting test double (it is the external system); Redis is real.
//!
//! What is shown: Python-identical keys in Redis and Python-written entries served; extra
//! parameters never share an answer; corrupt or foreign entries are misses, counted and
//! overwritten; the TTL is set and not refreshed by reads; one upstream call for 100
//! concurrent requests in one process and for 4 processes; the lease hands over after an
//! upstream error or a timeout; per-request controls; Redis killed mid-run; administration;
//! statistics and metrics.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use artemis::Backend;
use artemis::cache::{
    CacheControl, CacheKey, CacheScope, CachedClient, EntryTtl, LlmClient, LlmError, LlmRequest,
    LlmResponse, Lookup, Message, Source, Usage,
};
use artemis::config::Settings;
use artemis::metrics::Metrics;
use artemis::store::Store;
use redis::Commands;
use support::{RedisCluster, RedisServer};

// ---- the provider double ----

struct FakeLlm {
    calls: AtomicUsize,
    delay: Duration,
    failing: AtomicBool,
    tag: String,
}

impl FakeLlm {
    fn new(delay_ms: u64, tag: &str) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            delay: Duration::from_millis(delay_ms),
            failing: AtomicBool::new(false),
            tag: tag.into(),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl LlmClient for FakeLlm {
    fn provider(&self) -> &str {
        "openai"
    }

    async fn complete(&self, r: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.delay).await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(LlmError::Upstream {
                provider: "openai".into(),
                message: "overloaded".into(),
                status: Some(529),
                retryable: true,
            });
        }
        let last = r.messages.last().map(|m| m.content.as_str()).unwrap_or("");
        Ok(LlmResponse {
            content: format!("{} answer #{n} to {last}", self.tag),
            model: r.model.clone(),
            provider: "openai".into(),
            usage: Usage {
                prompt_tokens: 1000,
                completion_tokens: 500,
                total_tokens: 1500,
            },
            raw_response: serde_json::json!({"id": format!("{}-{n}", self.tag)}),
        })
    }
}

/// What 1000 prompt + 500 completion tokens of gpt-4o cost at the shipped list price.
const GPT4O_COST: f64 = 1000.0 * 2.5 / 1e6 + 500.0 * 10.0 / 1e6;

fn ask(text: &str) -> LlmRequest {
    LlmRequest::new("gpt-4o", vec![Message::user(text)])
}

fn plain() -> CacheControl {
    CacheControl::default()
}

async fn open(settings: Settings) -> Backend {
    Backend::redis(settings)
        .await
        .expect("connect to the test server")
}

fn client(
    storage: &Backend,
    fake: &Arc<FakeLlm>,
    tweak: impl FnOnce(&mut artemis::config::CacheSettings),
) -> CachedClient<Arc<FakeLlm>> {
    let mut settings = storage.settings().cache.clone();
    tweak(&mut settings);
    CachedClient::with_settings(
        fake.clone(),
        storage.cache().clone(),
        Metrics::new(storage.metrics().clone()),
        settings,
    )
    .unwrap()
}

fn decoded(lookup: Lookup) -> LlmResponse {
    match lookup {
        Lookup::Found(bytes) => artemis::cache::entry::decode(&bytes).expect("a valid entry"),
        other => panic!("expected an entry, found {other:?}"),
    }
}

// ---- behaviour shared by every backend ----

async fn store_behaviour(store: Backend) {
    let k = |ns: Option<&str>| CacheKey::new("0f".repeat(32), ns).unwrap();
    let plain_key = k(None);
    assert_eq!(
        store.cache().cache_get(&plain_key).await.unwrap(),
        Lookup::Missing
    );
    store
        .cache()
        .cache_put(&plain_key, b"v1", Duration::from_secs(60), None)
        .await
        .unwrap();
    assert_eq!(
        store.cache().cache_get(&plain_key).await.unwrap(),
        Lookup::Found(b"v1".to_vec())
    );
    match store.cache().cache_ttl(&plain_key).await.unwrap() {
        EntryTtl::Expires(d) => {
            assert!(d <= Duration::from_secs(60) && d > Duration::from_secs(55))
        }
        other => panic!("{other:?}"),
    }

    // The lease: one holder at a time, released only by its holder, atomically with the write.
    let lease_ttl = Duration::from_secs(10);
    assert!(
        store
            .cache()
            .cache_try_lease(&plain_key, "t1", lease_ttl)
            .await
            .unwrap()
    );
    assert!(
        !store
            .cache()
            .cache_try_lease(&plain_key, "t2", lease_ttl)
            .await
            .unwrap()
    );
    store
        .cache()
        .cache_release_lease(&plain_key, "t2")
        .await
        .unwrap();
    assert!(store.cache().cache_poll(&plain_key).await.unwrap().leased);
    store
        .cache()
        .cache_put(&plain_key, b"v2", Duration::from_secs(60), Some("t1"))
        .await
        .unwrap();
    let poll = store.cache().cache_poll(&plain_key).await.unwrap();
    assert!(!poll.leased);
    assert_eq!(poll.entry, Lookup::Found(b"v2".to_vec()));
    assert!(
        store
            .cache()
            .cache_try_lease(&plain_key, "t3", Duration::from_millis(100))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        store
            .cache()
            .cache_try_lease(&plain_key, "t4", lease_ttl)
            .await
            .unwrap(),
        "an expired lease passes on"
    );
    store
        .cache()
        .cache_release_lease(&plain_key, "t4")
        .await
        .unwrap();

    // Namespaces are separate entries, counted and invalidated exactly.
    for ns in ["a", "a:b", "t*"] {
        store
            .cache()
            .cache_put(&k(Some(ns)), ns.as_bytes(), Duration::from_secs(60), None)
            .await
            .unwrap();
    }
    assert_eq!(
        store.cache().cache_get(&k(Some("a"))).await.unwrap(),
        Lookup::Found(b"a".to_vec())
    );
    let count = |scope: CacheScope| {
        let store = store.clone();
        async move { store.cache().cache_count(&scope).await.unwrap().entries }
    };
    assert_eq!(count(CacheScope::All).await, 4);
    assert_eq!(count(CacheScope::Plain).await, 1);
    assert_eq!(count(CacheScope::Namespace("a".into())).await, 1);
    assert_eq!(count(CacheScope::Namespace("t".into())).await, 0);
    assert_eq!(
        store
            .cache()
            .cache_invalidate(&CacheScope::Namespace("a".into()))
            .await
            .unwrap(),
        1
    );
    assert_eq!(count(CacheScope::Namespace("a:b".into())).await, 1);
    assert_eq!(
        store
            .cache()
            .cache_invalidate(&CacheScope::Plain)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .cache()
            .cache_invalidate(&CacheScope::All)
            .await
            .unwrap(),
        2
    );
    assert_eq!(count(CacheScope::All).await, 0);
    assert!(
        store
            .cache()
            .cache_count(&CacheScope::Namespace("x{y}".into()))
            .await
            .is_err()
    );

    // Entries expire.
    store
        .cache()
        .cache_put(&plain_key, b"short", Duration::from_secs(1), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        store.cache().cache_get(&plain_key).await.unwrap(),
        Lookup::Missing
    );
}

async fn miss_then_hit_with_stats_and_metrics(storage: Backend) {
    let fake = FakeLlm::new(20, "p1");
    let c = client(&storage, &fake, |_| {});
    let first = c.complete_with(&ask("Hello"), &plain()).await.unwrap();
    assert_eq!(first.source, Source::Upstream);
    assert!(first.looked_up && first.priced);
    assert!((first.cost_usd - GPT4O_COST).abs() < 1e-12);
    let second = c.complete_with(&ask("Hello"), &plain()).await.unwrap();
    assert_eq!(second.source, Source::Store);
    assert_eq!(second.response, first.response);
    assert_eq!(second.cost_usd, 0.0);
    assert!((second.saved_usd - GPT4O_COST).abs() < 1e-12);
    assert_eq!(fake.calls(), 1);

    let s = c.stats();
    assert_eq!((s.cache_hits, s.cache_misses, s.total_requests), (1, 1, 2));
    assert_eq!(s.hit_rate_percent, 50.0);
    assert_eq!(s.errors, 0);
    assert!((s.cost_saved_usd - GPT4O_COST).abs() < 1e-12);
    assert!(
        s.time_saved_ms > 0.0,
        "a hit is faster than a 20 ms upstream call"
    );

    // An unknown model is priced at zero and reported.
    let local = LlmRequest::new("my-local-llama", vec![Message::user("x")]);
    let done = c.complete_with(&local, &plain()).await.unwrap();
    assert!(!done.priced);
    assert_eq!(done.cost_usd, 0.0);
    assert_eq!(
        c.stats().unpriced_models,
        vec!["my-local-llama".to_string()]
    );

    // Every request reached the metrics, hits as saved money.
    c.flush_metrics().await;
    let m = storage.metrics().read_metrics(1, 0).await.unwrap().metrics;
    assert_eq!(m.llm.total_requests, 3);
    assert_eq!((m.llm.cache_hits, m.llm.cache_misses), (1, 2));
    assert!((m.llm.total_cost - GPT4O_COST).abs() < 1e-9);
    assert!((m.llm.saved_cost - GPT4O_COST).abs() < 1e-9);
    assert_eq!(m.llm.prompt_tokens, 2000, "hits spend no tokens");
    assert_eq!(c.stats().metrics_failed, 0);
}

async fn hundred_concurrent_requests_one_upstream_call(storage: Backend) {
    let fake = FakeLlm::new(300, "burst");
    let c = Arc::new(client(&storage, &fake, |_| {}));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.complete_with(&ask("burst"), &plain()).await })
        })
        .collect();
    let mut sources = Vec::new();
    let mut contents = std::collections::BTreeSet::new();
    for t in tasks {
        let done = t.await.unwrap().unwrap();
        sources.push(done.source);
        contents.insert(done.response.content);
    }
    assert_eq!(fake.calls(), 1, "one upstream call for the burst");
    assert_eq!(contents.len(), 1, "everyone got the same answer");
    assert_eq!(
        sources.iter().filter(|s| **s == Source::Upstream).count(),
        1
    );
    let s = c.stats();
    assert_eq!((s.cache_hits, s.cache_misses), (99, 1));
    assert!(s.hits_by_source.flight >= 90, "{s:?}");
}

async fn upstream_errors_are_shared_not_stored(storage: Backend) {
    let fake = FakeLlm::new(200, "flaky");
    fake.failing.store(true, Ordering::SeqCst);
    let c = Arc::new(client(&storage, &fake, |_| {}));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.complete_with(&ask("flaky"), &plain()).await })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                LlmError::Upstream {
                    retryable: true,
                    ..
                }
            ),
            "{err}"
        );
    }
    assert_eq!(fake.calls(), 1, "waiters share the failed call");
    let key = c.key_for(&ask("flaky"), None).unwrap();
    let poll = storage.cache().cache_poll(&key).await.unwrap();
    assert_eq!(poll.entry, Lookup::Missing, "errors are not cached");
    assert!(!poll.leased, "the lease is released after an error");
    assert_eq!(c.stats().failed_requests, 10);

    fake.failing.store(false, Ordering::SeqCst);
    let done = c.complete_with(&ask("flaky"), &plain()).await.unwrap();
    assert_eq!(
        done.source,
        Source::Upstream,
        "the next request tries again"
    );
    assert_eq!(
        c.complete_with(&ask("flaky"), &plain())
            .await
            .unwrap()
            .source,
        Source::Store
    );
    assert_eq!(fake.calls(), 2);
}

async fn per_request_controls(storage: Backend) {
    let fake = FakeLlm::new(5, "ctl");
    let c = client(&storage, &fake, |_| {});
    let q = ask("controls");
    let key = c.key_for(&q, None).unwrap();
    c.complete_with(&q, &plain()).await.unwrap();

    // skip_read: always upstream, and the fresh answer replaces the stored one.
    let fresh = c.complete_with(&q, &plain().skip_read()).await.unwrap();
    assert_eq!(fresh.source, Source::Upstream);
    assert!(!fresh.looked_up);
    assert_eq!(fake.calls(), 2);
    assert_eq!(
        decoded(storage.cache().cache_get(&key).await.unwrap()),
        fresh.response
    );
    let hit = c.complete_with(&q, &plain()).await.unwrap();
    assert_eq!((hit.source, hit.response), (Source::Store, fresh.response));

    // skip_write: nothing stored.
    let other = ask("not stored");
    for _ in 0..2 {
        let done = c
            .complete_with(&other, &plain().skip_write())
            .await
            .unwrap();
        assert_eq!(done.source, Source::Upstream);
    }
    assert_eq!(fake.calls(), 4);
    let other_key = c.key_for(&other, None).unwrap();
    assert_eq!(
        storage.cache().cache_get(&other_key).await.unwrap(),
        Lookup::Missing
    );

    // TTL override.
    let short = ask("short-lived");
    c.complete_with(&short, &plain().ttl(Duration::from_secs(120)))
        .await
        .unwrap();
    match storage
        .cache()
        .cache_ttl(&c.key_for(&short, None).unwrap())
        .await
        .unwrap()
    {
        EntryTtl::Expires(d) => {
            assert!(d <= Duration::from_secs(120) && d > Duration::from_secs(110))
        }
        other => panic!("{other:?}"),
    }

    // Namespaces: never shared with the plain entry nor with each other.
    let in_a = plain().namespace("tenant-a");
    assert_eq!(
        c.complete_with(&q, &in_a).await.unwrap().source,
        Source::Upstream
    );
    assert_eq!(
        c.complete_with(&q, &in_a).await.unwrap().source,
        Source::Store
    );
    let in_b = plain().namespace("tenant-b");
    assert_eq!(
        c.complete_with(&q, &in_b).await.unwrap().source,
        Source::Upstream
    );
    assert_eq!(fake.calls(), 7);
    assert_eq!(
        c.invalidate(&CacheScope::Namespace("tenant-a".into()))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        c.complete_with(&q, &in_a).await.unwrap().source,
        Source::Upstream
    );
    assert_eq!(
        c.complete_with(&q, &in_b).await.unwrap().source,
        Source::Store
    );
    assert_eq!(
        c.complete_with(&q, &plain()).await.unwrap().source,
        Source::Store
    );

    // Bad controls are the caller's mistake, reported before anything is sent.
    let calls = fake.calls();
    let bad = c.complete_with(&q, &plain().namespace("x{y}")).await;
    assert!(matches!(bad, Err(LlmError::InvalidRequest(_))));
    let bad = c.complete_with(&q, &plain().ttl(Duration::ZERO)).await;
    assert!(matches!(bad, Err(LlmError::InvalidRequest(_))));
    assert_eq!(fake.calls(), calls);

    // The temperature setting: requests above zero are not cached when it is off.
    let strict = client(&storage, &fake, |s| s.cache_nonzero_temperature = false);
    let warm = ask("warm").temperature(0.7);
    for _ in 0..2 {
        let done = strict.complete_with(&warm, &plain()).await.unwrap();
        assert_eq!(done.source, Source::Upstream);
        assert!(!done.looked_up);
    }
    let cold = ask("cold").temperature(0);
    strict.complete_with(&cold, &plain()).await.unwrap();
    assert_eq!(
        strict.complete_with(&cold, &plain()).await.unwrap().source,
        Source::Store
    );
    assert_eq!(strict.stats().bypassed, 2);

    // The whole cache switched off.
    let off = client(&storage, &fake, |s| s.enabled = false);
    let calls = fake.calls();
    off.complete_with(&q, &plain()).await.unwrap();
    assert_eq!(fake.calls(), calls + 1);
}

async fn corrupt_entries_are_misses(storage: Backend) {
    let good = r#"{"content":"a","model":"m","provider":"p","usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"raw_response":{}}"#;
    let bad: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        good.as_bytes()[..good.len() / 2].to_vec(),
        good.replace(r#","raw_response":{}"#, "").into_bytes(),
        good.replace(r#""raw_response":{}"#, r#""raw_response":{},"extra":1"#)
            .into_bytes(),
        good.replace(r#""content":"a""#, r#""content":7"#)
            .into_bytes(),
        good.replace(r#""prompt_tokens":1"#, r#""prompt_tokens":"1""#)
            .into_bytes(),
        b"{\"content\":\"\xff\xfe\",\"model\":\"m\"}".to_vec(),
        b"\xff\xfe\xfd".to_vec(),
        Vec::new(),
    ];
    let fake = FakeLlm::new(5, "fix");
    let c = client(&storage, &fake, |_| {});
    for (i, value) in bad.iter().enumerate() {
        let q = ask(&format!("corrupt {i}"));
        let key = c.key_for(&q, None).unwrap();
        storage
            .cache()
            .cache_put(&key, value, Duration::from_secs(60), None)
            .await
            .unwrap();
        let done = c.complete_with(&q, &plain()).await.unwrap();
        assert_eq!(done.source, Source::Upstream, "value #{i} must be a miss");
        assert!(done.response.content.starts_with("fix answer"));
        assert_eq!(c.stats().errors, i as u64 + 1, "value #{i} is counted");
        assert_eq!(
            decoded(storage.cache().cache_get(&key).await.unwrap()),
            done.response,
            "value #{i} is overwritten by the fresh answer"
        );
        match storage.cache().cache_ttl(&key).await.unwrap() {
            EntryTtl::Expires(d) => assert!(d > Duration::from_secs(604_000)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(fake.calls(), bad.len());
}

async fn lease_hands_over(storage_a: Backend, storage_b: Backend) {
    // Two clients with their own flights stand for two processes sharing the store.
    let fake_a = FakeLlm::new(400, "A");
    let fake_b = FakeLlm::new(20, "B");
    let a = Arc::new(client(&storage_a, &fake_a, |_| {}));
    let b = client(&storage_b, &fake_b, |_| {});

    // The holder answers: the waiter gets its answer without calling upstream.
    let q = ask("shared");
    let first = {
        let a = a.clone();
        let q = q.clone();
        tokio::spawn(async move { a.complete_with(&q, &plain()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waited = b.complete_with(&q, &plain()).await.unwrap();
    assert_eq!(waited.source, Source::Peer);
    assert_eq!(first.await.unwrap().unwrap().response, waited.response);
    assert_eq!(fake_b.calls(), 0);

    // The holder fails: the lease is released and the waiter calls upstream itself.
    fake_a.failing.store(true, Ordering::SeqCst);
    let q = ask("shared, failing");
    let first = {
        let a = a.clone();
        let q = q.clone();
        tokio::spawn(async move { a.complete_with(&q, &plain()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let took_over = b.complete_with(&q, &plain()).await.unwrap();
    assert!(first.await.unwrap().is_err());
    assert_eq!(took_over.source, Source::Upstream);
    assert!(took_over.response.content.starts_with("B answer"));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it waited first"
    );
    assert_eq!(fake_b.calls(), 1);

    // A lease nobody releases: the waiter gives up after lease_wait_ms.
    let impatient = client(&storage_b, &fake_b, |s| s.lease_wait_ms = 300);
    let q = ask("stuck lease");
    let key = impatient.key_for(&q, None).unwrap();
    assert!(
        storage_a
            .cache()
            .cache_try_lease(&key, "someone-else", Duration::from_secs(60))
            .await
            .unwrap()
    );
    let started = Instant::now();
    let done = impatient.complete_with(&q, &plain()).await.unwrap();
    assert_eq!(done.source, Source::Upstream);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        decoded(storage_a.cache().cache_get(&key).await.unwrap()),
        done.response
    );
}

async fn a_cancelled_caller_leaves_nobody_waiting(storage: Backend) {
    let fake = FakeLlm::new(800, "slow");
    let c = Arc::new(client(&storage, &fake, |_| {}));
    let q = ask("given up");
    let key = c.key_for(&q, None).unwrap();
    let (leader, follower) = {
        let (c1, c2, q1, q2) = (c.clone(), c.clone(), q.clone(), q.clone());
        (
            tokio::spawn(async move { c1.complete_with(&q1, &plain()).await }),
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                c2.complete_with(&q2, &plain()).await
            }),
        )
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(storage.cache().cache_poll(&key).await.unwrap().leased);
    leader.abort();
    // The follower takes over at once (not after lease_wait_ms) and calls upstream itself.
    let started = Instant::now();
    let done = follower.await.unwrap().unwrap();
    assert_eq!(done.source, Source::Upstream);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.calls(), 2);
}

// ---- Redis ----

/// Runs one behaviour against a fresh Redis server and a fresh memory backend.
async fn on_redis_and_memory<F, Fut>(behaviour: F)
where
    F: Fn(Backend) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let server = RedisServer::start();
    behaviour(open(server.settings()).await).await;
    behaviour(Backend::memory(Settings::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_callers_on_redis_and_memory() {
    on_redis_and_memory(a_cancelled_caller_leaves_nobody_waiting).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_behaves_the_same_on_redis_and_memory() {
    on_redis_and_memory(store_behaviour).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miss_then_hit_on_redis_and_memory() {
    on_redis_and_memory(miss_then_hit_with_stats_and_metrics).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_in_one_process_on_redis_and_memory() {
    on_redis_and_memory(hundred_concurrent_requests_one_upstream_call).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_errors_on_redis_and_memory() {
    on_redis_and_memory(upstream_errors_are_shared_not_stored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_request_controls_on_redis_and_memory() {
    on_redis_and_memory(per_request_controls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_entries_on_redis_and_memory() {
    on_redis_and_memory(corrupt_entries_are_misses).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_hands_over_on_redis_and_memory() {
    let server = RedisServer::start();
    lease_hands_over(open(server.settings()).await, open(server.settings()).await).await;
    let memory = Backend::memory(Settings::default());
    lease_hands_over(memory.clone(), memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_values_are_pythons() {
    let server = RedisServer::start();
    let storage = open(server.settings()).await;
    let fake = FakeLlm::new(5, "rs");
    let c = client(&storage, &fake, |_| {});
    let mut raw = server.raw();

    // An entry a Python process wrote (json.dumps spelling) under the PROTOCOL vector key.
    let python_value = r#"{"content": "Hello from Python", "model": "gpt-4o-2024-08-06", "provider": "openai", "usage": {"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12}, "raw_response": {"id": "chatcmpl-1"}}"#;
    let _: () = raw
        .set_ex(
            "artemis:llm:cache:cf24cce1931be48661fdf416f62a75a0cdda069d535f1cd5f560ff12afa4480f",
            python_value,
            604_800,
        )
        .unwrap();
    let hit = c.complete_with(&ask("Hello"), &plain()).await.unwrap();
    assert_eq!(hit.source, Source::Store);
    assert_eq!(hit.response.content, "Hello from Python");
    // The second vector: temperature 1.0.
    let _: () = raw
        .set_ex(
            "artemis:llm:cache:aa5f7b544c39ccef4c6896f5127cf10b95350c21e03fce909a74c7797cdbc9d7",
            python_value.replace("Hello from Python", "Hot hello from Python"),
            604_800,
        )
        .unwrap();
    let hit = c
        .complete_with(&ask("Hello").temperature(1.0), &plain())
        .await
        .unwrap();
    assert_eq!(hit.response.content, "Hot hello from Python");
    assert_eq!(fake.calls(), 0);

    // What this project writes sits under the Python key, with the Python TTL, in the
    // five-key shape.
    let gpt5 = LlmRequest::new(
        "gpt-5",
        vec![
            Message::system("You are a helpful assistant"),
            Message::user("Say 'Hello World' and nothing else"),
        ],
    )
    .max_tokens(50);
    c.complete_with(&gpt5, &plain()).await.unwrap();
    let key = "artemis:llm:cache:a8ff65bada3f16123fa72be1f4eb598a7187646668b144d0865551d045957f5b";
    let ttl: i64 = raw.ttl(key).unwrap();
    assert!((604_790..=604_800).contains(&ttl), "TTL {ttl}");
    let stored: String = raw.get(key).unwrap();
    let v: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let mut fields: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        ["content", "model", "provider", "raw_response", "usage"]
    );

    // Reads do not refresh the TTL.
    let _: () = raw.expire(key, 100).unwrap();
    assert_eq!(
        c.complete_with(&gpt5, &plain()).await.unwrap().source,
        Source::Store
    );
    let ttl: i64 = raw.ttl(key).unwrap();
    assert!(ttl <= 100, "TTL {ttl} after a read");

    // A key of another type, and a value without TTL that is otherwise valid.
    let q = ask("wrong type");
    let wrong = c.key_for(&q, None).unwrap().entry_key(&Default::default());
    let _: () = raw.hset(&wrong, "f", "v").unwrap();
    let errors = c.stats().errors;
    let done = c.complete_with(&q, &plain()).await.unwrap();
    assert_eq!(done.source, Source::Upstream);
    assert_eq!(c.stats().errors, errors + 1);
    let t: String = redis::cmd("TYPE").arg(&wrong).query(&mut raw).unwrap();
    assert_eq!(t, "string", "overwritten by the fresh answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_parameters_change_the_key() {
    let server = RedisServer::start();
    let storage = open(server.settings()).await;
    let fake = FakeLlm::new(5, "x");
    let c = client(&storage, &fake, |_| {});
    let base = ask("Hello");
    let variants = [
        base.clone(),
        base.clone().param(
            "response_format",
            serde_json::json!({"type": "json_object"}),
        ),
        base.clone().param(
            "response_format",
            serde_json::json!({"type": "json_schema", "json_schema": {"name": "a"}}),
        ),
        base.clone().param("seed", serde_json::json!(1)),
        base.clone().param("top_p", serde_json::json!(0.9)),
        base.clone().param("stop", serde_json::json!(["\n"])),
        base.clone().param(
            "tools",
            serde_json::json!([{"type": "function", "function": {"name": "f"}}]),
        ),
        base.clone().temperature(0),
        base.clone().temperature(0.0),
        {
            let mut m = Message::user("Hello");
            m.extra.insert("name".into(), serde_json::json!("alice"));
            LlmRequest::new("gpt-4o", vec![m])
        },
    ];
    let keys: std::collections::BTreeSet<String> = variants
        .iter()
        .map(|r| c.key_for(r, None).unwrap().hash().to_owned())
        .collect();
    assert_eq!(keys.len(), variants.len(), "every variant has its own key");
    assert!(keys.contains("cf24cce1931be48661fdf416f62a75a0cdda069d535f1cd5f560ff12afa4480f"));

    let mut answers = Vec::new();
    for r in &variants {
        let done = c.complete_with(r, &plain()).await.unwrap();
        assert_eq!(done.source, Source::Upstream, "no variant shares an answer");
        answers.push(done.response);
    }
    for (r, answer) in variants.iter().zip(&answers) {
        let done = c.complete_with(r, &plain()).await.unwrap();
        assert_eq!((done.source, &done.response), (Source::Store, answer));
    }
    assert_eq!(fake.calls(), variants.len());
}

/// Calls of the metrics guard script the server has run so far.
fn guard_calls(server: &RedisServer) -> u64 {
    server
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_within_one_flush_interval_cost_one_metrics_write() {
    let server = RedisServer::start();
    let storage = open(server.settings()).await;
    let fake = FakeLlm::new(0, "c");
    // An interval no test run outlasts, so the only writes are the full batches and the flush.
    let c = client(&storage, &fake, |s| {
        s.metrics_flush_ms = 60_000;
        s.metrics_flush_records = 100;
    });
    let q = ask("coalesce");
    c.complete_with(&q, &plain()).await.unwrap();
    c.flush_metrics().await;
    let before = guard_calls(&server);
    for _ in 0..250 {
        assert_eq!(
            c.complete_with(&q, &plain()).await.unwrap().source,
            Source::Store
        );
    }
    c.flush_metrics().await;
    // 250 records: two full batches of 100, then the flush writes the last 50 (one more if
    // the warm-up's flush left its wake-up behind, which ends the next wait early).
    let writes = guard_calls(&server) - before;
    assert!(
        (3..=4).contains(&writes),
        "{writes} metrics writes for 250 hits"
    );
    let m = storage.metrics().read_metrics(1, 0).await.unwrap().metrics;
    assert_eq!(m.llm.total_requests, 251);
    assert_eq!((m.llm.cache_hits, m.llm.cache_misses), (250, 1));
    assert_eq!(
        (c.stats().metrics_dropped, c.stats().metrics_failed),
        (0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_waiting_for_their_batch_are_written_by_the_timer() {
    let server = RedisServer::start();
    let storage = open(server.settings()).await;
    let fake = FakeLlm::new(0, "t");
    let c = client(&storage, &fake, |s| s.metrics_flush_ms = 100);
    let q = ask("timer");
    c.complete_with(&q, &plain()).await.unwrap();
    c.complete_with(&q, &plain()).await.unwrap();
    // No flush asked for: the batch goes when its 100 ms are up.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = storage.metrics().read_metrics(1, 0).await.unwrap().metrics;
        if m.llm.total_requests == 2 {
            assert_eq!((m.llm.cache_hits, m.llm.cache_misses), (1, 1));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "records never written: {:?}",
            m.llm
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_client_writes_its_pending_records() {
    let server = RedisServer::start();
    let storage = open(server.settings()).await;
    let fake = FakeLlm::new(0, "d");
    let c = client(&storage, &fake, |s| s.metrics_flush_ms = 60_000);
    let q = ask("drop");
    for _ in 0..3 {
        c.complete_with(&q, &plain()).await.unwrap();
    }
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = storage.metrics().read_metrics(1, 0).await.unwrap().metrics;
        if m.llm.total_requests == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pending records lost: {:?}",
            m.llm
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_is_invisible_to_callers() {
    let mut server = RedisServer::start();
    let storage = open(server.settings()).await;
    let fake = FakeLlm::new(10, "k");
    let c = client(&storage, &fake, |_| {});
    let q = ask("survive");
    assert_eq!(
        c.complete_with(&q, &plain()).await.unwrap().source,
        Source::Upstream
    );
    assert_eq!(
        c.complete_with(&q, &plain()).await.unwrap().source,
        Source::Store
    );

    // The two records so far land on the server that is about to die.
    c.flush_metrics().await;
    server.kill();
    for _ in 0..5 {
        let started = Instant::now();
        let done = c.complete_with(&q, &plain()).await.unwrap();
        assert_eq!(done.source, Source::Upstream);
        assert!(started.elapsed() < Duration::from_secs(3), "no long stall");
    }
    assert_eq!(fake.calls(), 6);
    assert!(c.stats().errors >= 5);
    c.flush_metrics().await;
    assert_eq!(
        c.stats().metrics_failed,
        0,
        "outage records are kept, not failed"
    );
    // Coalesced: the five records wait as one or more batches (each one guarded write); the
    // exact count after the replay is asserted below.
    assert!(
        c.metrics().buffer().stats().pending >= 1,
        "the outage's request records wait in the buffer: {:?}",
        c.metrics().buffer().stats()
    );

    server.start_again();
    let mut state = storage.connection();
    tokio::time::timeout(Duration::from_secs(15), state.wait_for(|s| s.is_up()))
        .await
        .expect("reconnects by itself")
        .unwrap();
    assert!(
        c.metrics()
            .buffer()
            .wait_drained(Duration::from_secs(15))
            .await,
        "buffered records replay once Redis is back"
    );
    // The restarted server is empty, so what it holds is exactly what the outage recorded.
    let read = storage.metrics().read_metrics(1, 0).await.unwrap();
    assert_eq!(read.metrics.llm.total_requests, 5, "{:?}", read.metrics.llm);
    assert_eq!(read.metrics.llm.cache_misses, 5);
    // The restarted server is empty: one miss refills it, then hits again.
    assert_eq!(
        c.complete_with(&q, &plain()).await.unwrap().source,
        Source::Upstream
    );
    assert_eq!(
        c.complete_with(&q, &plain()).await.unwrap().source,
        Source::Store
    );
    assert_eq!(fake.calls(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_scans_in_batches_and_spares_foreign_keys() {
    let server = RedisServer::start();
    let storage = open(server.settings()).await;
    let mut raw = server.raw();
    let mut p = redis::pipe();
    for i in 0..1200u32 {
        let hash = artemis::cache::key::sha256_hex(&i.to_be_bytes());
        p.set_ex(format!("artemis:llm:cache:{hash}"), "x", 600)
            .ignore();
        if i < 300 {
            p.set_ex(format!("artemis:llm:cache#ns:batch:{hash}"), "x", 600)
                .ignore();
        }
    }
    p.set("artemis:llm:cache:notes", "not an entry").ignore();
    p.set("artemis:llm:cache#ns:batch:short", "not an entry")
        .ignore();
    p.set("other:key", "x").ignore();
    let _: () = p.query(&mut raw).unwrap();

    let count = |scope| {
        let storage = storage.clone();
        async move { storage.cache().cache_count(&scope).await.unwrap() }
    };
    assert_eq!(count(CacheScope::Plain).await.entries, 1200);
    assert_eq!(
        count(CacheScope::Namespace("batch".into())).await.entries,
        300
    );
    assert_eq!(count(CacheScope::All).await.entries, 1500);
    assert_eq!(
        storage
            .cache()
            .cache_invalidate(&CacheScope::Namespace("batch".into()))
            .await
            .unwrap(),
        300
    );
    assert_eq!(
        storage
            .cache()
            .cache_invalidate(&CacheScope::All)
            .await
            .unwrap(),
        1200
    );
    let left: usize = redis::cmd("DBSIZE").query(&mut raw).unwrap();
    assert_eq!(
        left, 3,
        "foreign keys under and outside the prefix are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_tier_serves_hot_prompts() {
    let server = RedisServer::start();
    let storage = open(server.settings()).await;
    let fake = FakeLlm::new(5, "hot");
    let c = client(&storage, &fake, |s| s.memory_tier_bytes = 1 << 20);
    let q = ask("hot");
    assert_eq!(
        c.complete_with(&q, &plain()).await.unwrap().source,
        Source::Upstream
    );
    let key = c.key_for(&q, None).unwrap().entry_key(&Default::default());
    let _: () = server.raw().del(&key).unwrap();
    assert_eq!(
        c.complete_with(&q, &plain()).await.unwrap().source,
        Source::MemoryTier
    );
    let s = c.stats();
    assert_eq!(s.memory_tier_entries, 1);
    assert!(s.memory_tier_bytes > 0);
    // skip_read passes the tier too; invalidation clears it.
    assert_eq!(
        c.complete_with(&q, &plain().skip_read())
            .await
            .unwrap()
            .source,
        Source::Upstream
    );
    c.invalidate(&CacheScope::All).await.unwrap();
    assert_eq!(c.stats().memory_tier_entries, 0);
    assert_eq!(
        c.complete_with(&q, &plain()).await.unwrap().source,
        Source::Upstream
    );
    assert_eq!(fake.calls(), 3);
}

// ---- Cluster ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_on_redis_cluster() {
    let cluster = RedisCluster::start();
    let storage = open(cluster.settings()).await;
    store_behaviour(storage.clone()).await;
    corrupt_entries_are_misses(storage.clone()).await;
    lease_hands_over(storage.clone(), open(cluster.settings()).await).await;
    // Invalidation across every master and slot.
    let fake = FakeLlm::new(1, "c");
    let c = client(&storage, &fake, |_| {});
    for i in 0..50 {
        c.complete_with(&ask(&format!("q{i}")), &plain().namespace("n"))
            .await
            .unwrap();
    }
    assert_eq!(
        c.count(&CacheScope::Namespace("n".into()))
            .await
            .unwrap()
            .entries,
        50
    );
    assert_eq!(
        c.invalidate(&CacheScope::Namespace("n".into()))
            .await
            .unwrap(),
        50
    );
    assert_eq!(
        c.count(&CacheScope::Namespace("n".into()))
            .await
            .unwrap()
            .entries,
        0
    );
    assert!(c.count(&CacheScope::Plain).await.unwrap().entries > 0);
    assert!(c.invalidate(&CacheScope::All).await.unwrap() > 0);
    assert_eq!(c.count(&CacheScope::All).await.unwrap().entries, 0);
}

// ---- across processes ----

const WORKER_URL: &str = "ARTEMIS_CACHE_TEST_WORKER_URL";
const WORKER_START_MS: &str = "ARTEMIS_CACHE_TEST_WORKER_START_MS";

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Runs inside each child process of `single_flight_across_four_processes` (a no-op when the
/// test binary runs normally): 25 concurrent identical requests from the same start instant,
/// then one result line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_process_worker() {
    let Ok(url) = std::env::var(WORKER_URL) else {
        return;
    };
    let start: u64 = std::env::var(WORKER_START_MS).unwrap().parse().unwrap();
    let mut settings = Settings::default();
    settings.redis.url = Some(url);
    let storage = open(settings).await;
    let fake = FakeLlm::new(1500, &format!("pid{}", std::process::id()));
    let c = Arc::new(client(&storage, &fake, |_| {}));
    tokio::time::sleep(Duration::from_millis(start.saturating_sub(epoch_ms()))).await;
    let tasks: Vec<_> = (0..25)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.complete_with(&ask("across processes"), &plain()).await })
        })
        .collect();
    let mut contents = std::collections::BTreeSet::new();
    for t in tasks {
        contents.insert(t.await.unwrap().unwrap().response.content);
    }
    let s = c.stats();
    println!(
        "WORKER {}",
        serde_json::json!({
            "calls": fake.calls(),
            "contents": contents,
            "peer": s.hits_by_source.peer,
            "store": s.hits_by_source.store,
            "flight": s.hits_by_source.flight,
        })
    );
}

#[test]
fn single_flight_across_four_processes() {
    let server = RedisServer::start();
    let exe = std::env::current_exe().unwrap();
    let start = epoch_ms() + 3000;
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["cross_process_worker", "--exact", "--nocapture"])
                .env(WORKER_URL, server.url())
                .env(WORKER_START_MS, start.to_string())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut calls = 0;
    let mut peer = 0;
    let mut contents = std::collections::BTreeSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("WORKER "))
            .unwrap_or_else(|| panic!("no result from a worker:\n{text}"));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        calls += v["calls"].as_u64().unwrap();
        peer += v["peer"].as_u64().unwrap();
        for c in v["contents"].as_array().unwrap() {
            contents.insert(c.as_str().unwrap().to_owned());
        }
    }
    assert_eq!(calls, 1, "one upstream call across 4 processes x 25 tasks");
    assert_eq!(contents.len(), 1, "everyone got that call's answer");
    assert!(peer >= 1, "at least one process waited on the lease");
}

// ---- prices ----

#[tokio::test]
async fn the_price_file_setting_replaces_the_shipped_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prices.toml");
    std::fs::write(
        &path,
        "effective_date = 2026-01-01\n[[model]]\npattern = \"gpt-4o*\"\ninput_per_million = 1.0\noutput_per_million = 2.0\n",
    )
    .unwrap();
    let mut settings = Settings::default();
    settings.cache.price_file = Some(path.clone());
    let storage = Backend::memory(settings);
    let fake = FakeLlm::new(0, "priced");
    let c = CachedClient::new(
        fake.clone(),
        storage.cache().clone(),
        Metrics::new(storage.metrics().clone()),
    )
    .unwrap();
    assert_eq!(c.prices().effective_date.to_string(), "2026-01-01");
    let done = c.complete_with(&ask("price me"), &plain()).await.unwrap();
    assert!((done.cost_usd - (1000.0 * 1.0 + 500.0 * 2.0) / 1e6).abs() < 1e-12);
    // gpt-5 was in the shipped table but is not in this one.
    let other = LlmRequest::new("gpt-5", vec![Message::user("x")]);
    assert!(!c.complete_with(&other, &plain()).await.unwrap().priced);

    // A broken file is a configuration error naming the setting, not a silent fallback.
    std::fs::write(&path, "effective_date = \"soon\"\n").unwrap();
    let err = CachedClient::new(
        fake.clone(),
        storage.cache().clone(),
        Metrics::new(storage.metrics().clone()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cache.price_file"), "{err}");
    let mut settings = Settings::default();
    settings.cache.price_file = Some(dir.path().join("missing.toml"));
    let memory = Backend::memory(settings);
    let err = CachedClient::new(
        fake,
        memory.cache().clone(),
        Metrics::new(memory.metrics().clone()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}
