//! One pipeline stage written against the library: report progress, wait for rate-limit
//! headroom, ask the model through the response cache, record what it cost.
//!
//! ```sh
//! cargo run --example pipeline_stage              # against REDIS_HOST/REDIS_PORT (localhost:6379)
//! cargo run --example pipeline_stage -- --memory  # everything in this process, no Redis
//! ```
//!
//! The model here is a stand-in that echoes the prompt; a real pipeline passes its own
//! [`LlmClient`].

use artemis::Artemis;
use artemis::cache::{CacheControl, LlmClient, LlmError, LlmRequest, LlmResponse, Message, Usage};
use artemis::model::{PipelineStatus, StageStatus};
use artemis::tracker::StageUpdate;

/// A model that answers with the prompt it was given.
struct Echo;

#[async_trait::async_trait]
impl LlmClient for Echo {
    fn provider(&self) -> &str {
        "echo"
    }

    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let prompt: String = request
            .messages
            .iter()
            .map(|m| m.content.as_str())
            .collect();
        Ok(LlmResponse {
            content: format!("echo: {prompt}"),
            model: request.model.clone(),
            provider: "echo".into(),
            usage: Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
                total_tokens: 15,
            },
            raw_response: serde_json::Value::Null,
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let artemis = if std::env::args().any(|a| a == "--memory") {
        Artemis::builder().in_memory().build().await?
    } else {
        // Starts even while Redis is down: writes wait in the outage buffer.
        Artemis::from_env().await?
    };
    let card = "example-card-1";
    let tracker = artemis.tracker();
    tracker
        .start_pipeline(card, 1, serde_json::Map::new())
        .await?;
    tracker
        .update_stage(
            card,
            "analysis",
            StageUpdate::new(StageStatus::Running).progress(10),
        )
        .await?;

    let limiter = artemis.limiter();
    let limit = limiter.preset("openai", "gpt-4o", "example-team")?;
    let slot = limiter.acquire(&limit, 1_000).await?;
    let llm = artemis.cached(Echo)?;
    let request = LlmRequest::new("gpt-4o", vec![Message::user(format!("Analyse {card}"))]);
    let done = llm
        .complete_with(&request, &CacheControl::default())
        .await?;
    slot.reconcile(done.response.usage.total_tokens).await?;

    tracker
        .update_stage(
            card,
            "analysis",
            StageUpdate::new(StageStatus::Completed).progress(100),
        )
        .await?;
    tracker
        .complete_pipeline(card, PipelineStatus::Completed, None)
        .await?;
    llm.flush_metrics().await;
    println!("{}", done.response.content);
    Ok(())
}
