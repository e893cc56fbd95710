//! `attachments`: what 20 images in a chat's history cost the prompt load (BEHAVIOUR §19) on
//! PostgreSQL. Rows hold references, so `prompt_messages` of a chat with 20 images must take
//! at most 1.2× the database time of the same chat without them. For contrast, the same
//! images inline in the rows (what a message held before attachments), and the step's load of
//! the 20 files themselves (once per step, when the model is called).

use std::time::Instant;

use base64::Engine as _;
use chatd_core::files::{FileMeta, FileStore, NewFile};
use chatd_core::store::ChatStore;
use chatd_core::store::Limits;
use chatd_core::{ChatId, NewChat, UserId};
use serde_json::{Value, json};

use crate::pg::{BenchResult, Scratch};
use crate::report::{Report, Target, percentile};

/// Images in the history.
const IMAGES: usize = 20;
/// Side of each (noisy, so incompressible) RGB image: about 190 KiB of PNG each.
const SIDE: u32 = 256;

/// A PNG of random pixels: an image whose bytes do not compress, as screenshots barely do.
fn noisy_png(seed: u64) -> BenchResult<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let pixels: Vec<u8> = (0..SIDE * SIDE * 3).map(|_| rng.u8(..)).collect();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, SIDE, SIDE);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}

/// A chat of 20 questions and answers; each question's `extra` part (if any) follows its text.
async fn chat_with(
    scratch: &Scratch,
    owner: UserId,
    extra: &dyn Fn(usize) -> Option<Value>,
) -> BenchResult<ChatId> {
    let chat = scratch.store.create_chat(NewChat::new(owner)).await?;
    for turn in 0..IMAGES {
        let mut question =
            vec![json!({"type": "text", "text": format!("what is in picture {turn}?")})];
        question.extend(extra(turn));
        let answer = json!([{"type": "text", "text": format!("Picture {turn} shows noise, {} words of description.", turn * 3)}]);
        sqlx::query(
            "INSERT INTO chat_messages (chat_id, role, content, visibility) \
             VALUES ($1, 'user', $2, 'both'), ($1, 'assistant', $3, 'both')",
        )
        .bind(chat.id.0)
        .bind(Value::Array(question))
        .bind(answer)
        .execute(&scratch.pool)
        .await?;
    }
    Ok(chat.id)
}

/// Runs the scenario.
pub(crate) async fn run(quick: bool) -> BenchResult<Vec<Report>> {
    let iterations = if quick { 60 } else { 400 };
    let scratch = Scratch::create(4).await?;
    let owner = UserId::new();
    let files: &dyn FileStore = &scratch.store;
    let mut stored: Vec<FileMeta> = Vec::new();
    let mut images = Vec::new();
    for n in 0..IMAGES {
        let bytes = noisy_png(n as u64)?;
        let file =
            NewFile::new(owner, None, &format!("shot-{n}.png"), bytes.clone(), &Limits::default())?;
        stored.push(files.put_file(file).await?);
        images.push(bytes);
    }
    let plain = chat_with(&scratch, owner, &|_| None).await?;
    let referenced =
        chat_with(&scratch, owner, &|n| serde_json::to_value(stored[n].part()).ok()).await?;
    let ids: Vec<_> = stored.iter().map(|f| f.id).collect();
    files.bind_files(owner, referenced, &ids, 200).await?;
    let inline = chat_with(&scratch, owner, &|n| {
        let data = base64::engine::general_purpose::STANDARD.encode(&images[n]);
        Some(json!({"type": "file", "media_type": "image/png", "data": data, "name": format!("shot-{n}.png")}))
    })
    .await?;
    sqlx::query("VACUUM ANALYZE").execute(&scratch.pool).await?;
    let store = &scratch.store;
    let load = |chat: ChatId| async move {
        let started = Instant::now();
        let rows = store.prompt_messages(chat).await?.len();
        BenchResult::Ok((started.elapsed().as_secs_f64() * 1000.0, rows))
    };
    for chat in [plain, referenced, inline] {
        if load(chat).await?.1 != IMAGES * 2 {
            return Err("a history is not 40 rows".into());
        }
    }
    let (mut without, mut with, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iterations {
        without.push(load(plain).await?.0);
        with.push(load(referenced).await?.0);
        bytes.push(load(inline).await?.0);
    }
    // The step's own load of the 20 files (what a model call then needs).
    let history = scratch.store.prompt_messages(referenced).await?;
    let mut messages = chatd_core::testing::internals::prompt_messages(
        &history,
        chatd_core::ProviderKind::Anthropic,
    );
    let started = Instant::now();
    let read = chatd_core::testing::internals::load_attachments(
        Some(files),
        owner,
        chatd_core::ProviderKind::Anthropic,
        &mut messages,
    )
    .await?;
    let step_ms = started.elapsed().as_secs_f64() * 1000.0;
    if read != IMAGES {
        return Err(format!("the step read {read} files, not {IMAGES}").into());
    }
    let image_bytes: usize = images.iter().map(Vec::len).sum();
    scratch.drop_database().await?;
    let (with, without, bytes) =
        (percentile(&mut with, 0.5), percentile(&mut without, 0.5), percentile(&mut bytes, 0.5));
    Ok(vec![
        Report::new(
            "attachments",
            format!("prompt_load_ms_{IMAGES}_images_referenced_vs_none"),
            "ms",
            with,
            without,
            Target::AtMost(1.2),
        ),
        Report::new(
            "attachments",
            format!("prompt_load_ms_{IMAGES}_images_inline_vs_none_{}_kib", image_bytes / 1024),
            "ms",
            bytes,
            without,
            Target::None,
        ),
        Report::new(
            "attachments",
            format!("step_file_load_ms_{IMAGES}_images_vs_prompt_load"),
            "ms",
            step_ms,
            with,
            Target::None,
        ),
    ])
}
