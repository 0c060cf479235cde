//! Fixed dashboard data for the render, key and headless tests and the benchmark: a handful
//! of cards covering every status, hostile text (escape sequences, wide characters, emoji), a
//! malformed document, rate limits at every headroom level, and 30 days of costs; plus a
//! generator for thousands of cards. All times are fixed so rendered frames never change.
#![allow(dead_code)]

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value, json};

use artemis::connection::ConnState;
use artemis::limiter::{LimitActivity, LimitOrigin, LimitUsage};
use artemis::metrics::{
    Breakdown, DailyFigures, HistoryWindow, LimitFigures, LlmFigures, LlmTotals, PipelineTotals,
    RecentPipeline, Series, Summary,
};
use artemis::model::{
    Malformed, PipelineDoc, PipelineEvent, PipelineStatus, StageDoc, StageStatus,
};
use artemis::snapshot::{Snapshot, SourceInfo};
use artemis::tracker::Card;
use artemis::tui::app::{App, Row};
use artemis::tui::keymap::KeyMap;
use artemis::tui::message::Message;
use artemis::tui::theme::Theme;

pub const ENDPOINT: &str = "redis://127.0.0.1:6379/0";

/// The injected clock: every fixture is relative to it.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 10, 22, 20, 30, 45).unwrap()
}

fn ts(secs_before_now: i64) -> String {
    artemis::model::format_naive((now() - Duration::seconds(secs_before_now)).naive_utc())
}

fn meta(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn stage(
    name: &str,
    status: StageStatus,
    pct: Option<i64>,
    msg: Option<&str>,
    ago: i64,
) -> StageDoc {
    StageDoc {
        stage_name: name.into(),
        status,
        progress_percent: pct,
        message: msg.map(Into::into),
        timestamp: ts(ago).into(),
        metadata: Map::new().into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn card(
    id: &str,
    title: Option<&str>,
    status: PipelineStatus,
    total: i64,
    done: i64,
    current: Option<&str>,
    started_ago: i64,
    ended_ago: Option<i64>,
    stages: Vec<StageDoc>,
    cost: Option<f64>,
) -> Card {
    let mut m = Map::new();
    if let Some(t) = title {
        m.insert("title".into(), json!(t));
    }
    m.insert("priority".into(), json!("high"));
    Card {
        pipeline: PipelineDoc {
            card_id: id.into(),
            status,
            total_stages: total,
            completed_stages: done,
            current_stage: current.map(Into::into),
            start_time: ts(started_ago).into(),
            end_time: ended_ago.map(|e| ts(e).into()),
            metadata: m.into(),
            duration_seconds: ended_ago.map(|e| (started_ago - e) as f64 + 0.5),
        },
        stages,
        cost_usd: cost,
    }
}

pub fn cards() -> Vec<Card> {
    use StageStatus::*;
    vec![
        card(
            "card-101",
            Some("Add OAuth login"),
            PipelineStatus::Running,
            8,
            3,
            Some("development"),
            252,
            None,
            vec![
                stage("planning", Completed, Some(100), Some("plan ready"), 240),
                stage("design", Completed, Some(100), None, 200),
                stage("review", Completed, Some(100), Some("approved"), 150),
                stage("development", Running, Some(45), Some("writing tests"), 5),
            ],
            Some(0.42),
        ),
        card(
            "card-102",
            Some("日本語のタイトル 🚀 with a long emoji title 🎉🎉🎉"),
            PipelineStatus::Completed,
            3,
            3,
            Some("deploy"),
            4000,
            Some(3700),
            vec![
                stage("build", Completed, Some(100), None, 3900),
                stage("test", Completed, Some(100), None, 3800),
                stage("deploy", Completed, Some(100), Some("shipped"), 3700),
            ],
            Some(1.23),
        ),
        card(
            "card-103\u{1b}[2J",
            Some("\u{1b}[31mEVIL\u{1b}[0m title\u{7} with\nnewline"),
            PipelineStatus::Failed,
            4,
            1,
            Some("testing"),
            900,
            Some(600),
            vec![
                stage("build", Completed, Some(100), None, 800),
                stage(
                    "testing",
                    Failed,
                    Some(60),
                    Some("\u{1b}]0;pwned\u{7}3 tests failed"),
                    600,
                ),
            ],
            None,
        ),
        card(
            "card-104",
            None,
            PipelineStatus::Queued,
            5,
            0,
            None,
            30,
            None,
            vec![],
            None,
        ),
        card(
            "card-105",
            Some("Cancelled experiment"),
            PipelineStatus::Cancelled,
            6,
            2,
            Some("research"),
            7200,
            Some(7000),
            vec![],
            Some(0.05),
        ),
    ]
}

pub fn metrics() -> Summary {
    let start = NaiveDate::from_ymd_opt(2025, 9, 23).unwrap();
    let daily = (0..30)
        .map(|i| DailyFigures {
            date: start + Duration::days(i),
            completions: i % 5,
            cost: ((i * 37) % 11) as f64 * 0.45,
            duration: 100.0,
        })
        .collect();
    Summary {
        pipelines: PipelineTotals {
            completed: 45,
            total_cost: 20.5,
            total_duration: 9000.0,
            avg_duration: Some(200.0),
            avg_cost: Some(0.4556),
            by_status: [("completed".to_string(), 40), ("failed".to_string(), 5)]
                .into_iter()
                .collect(),
        },
        llm: LlmTotals {
            total_requests: 166,
            prompt_tokens: 120_000,
            completion_tokens: 45_000,
            cache_hits: 120,
            cache_misses: 46,
            total_cost: 12.34,
            hit_rate: Some(120.0 / 166.0),
            saved_cost: 3.21,
            latency_ms_total: 50_000.0,
        },
        providers: vec![
            Breakdown {
                name: "openai".into(),
                requests: 120,
                cost: 9.5,
            },
            Breakdown {
                name: "anthropic".into(),
                requests: 46,
                cost: 2.84,
            },
        ],
        models: vec![
            Breakdown {
                name: "gpt-4o".into(),
                requests: 100,
                cost: 8.9,
            },
            Breakdown {
                name: "claude-sonnet-4-5".into(),
                requests: 46,
                cost: 2.84,
            },
            Breakdown {
                name: "gpt-4o-mini".into(),
                requests: 20,
                cost: 0.6,
            },
        ],
        daily,
        recent: vec![RecentPipeline {
            card_id: "card-102".into(),
            duration_seconds: 300.5,
            status: "completed".into(),
            cost: 1.23,
            timestamp: "2025-10-22T21:28:45".into(),
        }],
        code_review: Default::default(),
    }
}

pub fn limits() -> Vec<LimitUsage> {
    vec![
        LimitUsage {
            key: "artemis:ratelimit:openai:openai:gpt-4o:default".into(),
            resource: "openai:gpt-4o".into(),
            identifier: "default".into(),
            window_seconds: 60.0,
            requests_used: 45,
            requests_limit: Some(100),
            tokens_used: Some(12_000),
            tokens_limit: Some(40_000),
            limit_origin: LimitOrigin::Registry,
            activity: Some(LimitActivity {
                admitted: 22,
                refused: 3,
                waited: 1,
                over_seconds: 60,
            }),
        },
        LimitUsage {
            key: "artemis:ratelimit:anthropic:anthropic:claude-sonnet-4-5:default".into(),
            resource: "anthropic:claude-sonnet-4-5".into(),
            identifier: "default".into(),
            window_seconds: 60.0,
            requests_used: 46,
            requests_limit: Some(50),
            tokens_used: None,
            tokens_limit: None,
            limit_origin: LimitOrigin::Registry,
            activity: None,
        },
        LimitUsage {
            key: "artemis:ratelimit:openai:openai:gpt-4o-mini:default".into(),
            resource: "openai:gpt-4o-mini".into(),
            identifier: "default".into(),
            window_seconds: 60.0,
            requests_used: 10,
            requests_limit: Some(300),
            tokens_used: None,
            tokens_limit: None,
            limit_origin: LimitOrigin::Registry,
            activity: None,
        },
    ]
}

/// The last hour of time buckets: two providers with a spend that rises and falls, a hit rate
/// that swings between 40 % and 95 %, and one rate-limit key refused now and then.
pub fn history() -> Series {
    history_for(HistoryWindow::Hour1)
}

/// [`history`] for another window (same shape, the window's buckets).
pub fn history_for(window: HistoryWindow) -> Series {
    let mut series = Series::empty(window, now());
    let n = series.buckets.len();
    for (i, b) in series.buckets.iter_mut().enumerate() {
        let phase = i as f64 / n.max(1) as f64 * std::f64::consts::TAU;
        let hits = (12.0 + 8.0 * phase.sin()).round() as i64;
        let misses = (3.0 + 2.0 * phase.cos()).round().max(1.0) as i64;
        b.providers.insert(
            "openai".into(),
            LlmFigures {
                requests: hits + misses,
                hits,
                misses,
                cost: 0.02 + 0.015 * (phase * 2.0).sin().abs(),
                prompt_tokens: 1_000,
                completion_tokens: 400,
            },
        );
        b.providers.insert(
            "anthropic".into(),
            LlmFigures {
                requests: 2,
                hits: 0,
                misses: 2,
                cost: 0.01 + 0.01 * (i % 7) as f64 / 7.0,
                prompt_tokens: 500,
                completion_tokens: 200,
            },
        );
        b.limits.insert(
            "artemis:ratelimit:openai:openai:gpt-4o:default".into(),
            LimitFigures {
                admitted: 20 + (i % 5) as i64,
                refused: (i % 4 == 0) as i64 * 3,
                waited: (i % 4 == 0) as i64,
                wait_ms: (i % 4 == 0) as i64 * 800,
            },
        );
    }
    series.found = true;
    series
}

pub fn connected() -> ConnState {
    ConnState::Connected {
        since: now() - Duration::seconds(3600),
    }
}

/// The standard snapshot, taken `age_ms` before [`now`], with LLM counters shifted by `step`
/// (successive polls).
pub fn snapshot_at(age_ms: i64, step: i64) -> Snapshot {
    let mut m = metrics();
    m.llm.cache_hits += step * 3 + step % 3;
    m.llm.cache_misses += step;
    m.llm.total_cost += step as f64 * 0.05;
    Snapshot {
        taken_at: now() - Duration::milliseconds(age_ms),
        source: SourceInfo {
            backend: "redis".into(),
            endpoint: ENDPOINT.into(),
        },
        connection: connected(),
        health: Default::default(),
        cards: cards(),
        metrics: m,
        limits: limits(),
        history: history(),
        malformed: vec![Malformed {
            key: "artemis:pipeline:card-bad".into(),
            reason: "invalid JSON: expected value at line 1 column 1".into(),
        }],
    }
}

pub fn snapshot() -> Snapshot {
    snapshot_at(400, 0)
}

/// `n` generated cards (for the benchmark and scrolling tests).
pub fn many_cards(n: usize) -> Snapshot {
    let mut s = snapshot();
    s.cards = (0..n)
        .map(|i| {
            let mut c = cards()[i % 2].clone();
            c.pipeline.card_id = format!("card-{i:06}");
            c.pipeline
                .metadata
                .insert("title".into(), json!(format!("Generated card number {i}")));
            c.pipeline.start_time = ts((i as i64) * 7).into();
            c
        })
        .collect();
    s
}

/// Live events of card-101 as the tracker publishes them.
pub fn events_101() -> Vec<PipelineEvent> {
    let e =
        |name: &str, status: StageStatus, pct: Option<i64>, ago: i64| PipelineEvent::StageUpdated {
            card_id: "card-101".into(),
            stage_name: name.into(),
            status,
            progress_percent: pct,
            message: None,
            timestamp: ts(ago),
        };
    vec![
        PipelineEvent::PipelineStarted {
            card_id: "card-101".into(),
            total_stages: 8,
            timestamp: ts(252),
            metadata: Default::default(),
        },
        e("planning", StageStatus::Running, Some(0), 250),
        e("planning", StageStatus::Completed, Some(100), 240),
        e("design", StageStatus::Running, None, 239),
        e("design", StageStatus::Completed, Some(100), 200),
        e("review", StageStatus::Running, None, 199),
        e("review", StageStatus::Completed, Some(100), 150),
        e("development", StageStatus::Running, Some(10), 149),
        PipelineEvent::StageUpdated {
            card_id: "card-101".into(),
            stage_name: "development".into(),
            status: StageStatus::Running,
            progress_percent: Some(45),
            message: Some("writing tests".into()),
            timestamp: ts(5),
        },
    ]
}

/// An app in the state a user sees after a few polls: connected, subscribed, with history.
pub fn app() -> App {
    app_with(Theme::dark(), false)
}

pub fn app_with(theme: Theme, no_color: bool) -> App {
    let mut app = App::new(KeyMap::default(), theme, no_color, ENDPOINT.into());
    app.now = now();
    app.apply(Message::Connection(connected()));
    app.apply(Message::Subscribed(true));
    for step in 0..12 {
        // One poll a second, the last one 400 ms ago.
        app.apply(Message::Snapshot(Box::new(snapshot_at(
            400 + (11 - step) * 1000,
            step,
        ))));
    }
    app
}

/// Code reviews of three developers and their statuses (the metrics view's table).
pub fn code_reviews() -> artemis::metrics::CodeReviewTotals {
    use artemis::metrics::{CodeReviewTotals, DeveloperReviews};
    let dev = |name: &str, reviews, score, critical, high| DeveloperReviews {
        developer: name.into(),
        total_reviews: reviews,
        total_score: score,
        critical_issues: critical,
        high_issues: high,
    };
    CodeReviewTotals {
        developers: vec![
            dev("alice", 12, 102, 0, 3),
            dev("bob", 7, 49, 2, 5),
            dev("dev-with-a-rather-long-name", 1, 9, 0, 0),
        ],
        by_status: [
            ("approved".to_string(), 14),
            ("changes_requested".to_string(), 5),
            ("rejected".to_string(), 1),
        ]
        .into_iter()
        .collect(),
    }
}

/// An app whose metrics also hold code reviews and several recent pipelines: everything the
/// metrics view has a section for.
pub fn app_with_all_metrics(theme: Theme, no_color: bool) -> App {
    let mut app = app_with(theme, no_color);
    let snap = app.live.as_mut().expect("the fixture app has a snapshot");
    snap.metrics.code_review = code_reviews();
    let statuses = ["failed", "completed", "cancelled", "COMPLETED"];
    for (i, status) in statuses.iter().enumerate() {
        snap.metrics.recent.push(RecentPipeline {
            card_id: format!("card-0{}", 90 + i),
            duration_seconds: 60.0 * (i as f64 + 1.5),
            status: status.to_string(),
            cost: 0.0042 * (i as f64 + 1.0),
            timestamp: format!("2025-10-22T20:{:02}:00.123456", 50 - 10 * i),
        });
    }
    app
}

/// The card ids of the table's rows, top to bottom (malformed rows left out).
pub fn ids(app: &mut App) -> Vec<String> {
    let rows = app.rows().to_vec();
    let snap = app.shown().unwrap();
    rows.iter()
        .filter_map(|r| match r {
            Row::Card(i) => Some(snap.cards[*i].pipeline.card_id.clone()),
            Row::Malformed(_) => None,
        })
        .collect()
}

/// The id of the selected card.
pub fn selected_id(app: &mut App) -> Option<String> {
    app.selected_card().map(|c| c.pipeline.card_id.clone())
}
