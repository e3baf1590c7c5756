//! `chorus schemas register|check`: the registry holds one subject per event
//! type and topic (`<topic>-io.chorus.events.<Type>`), evolving BACKWARD.

use std::path::Path;

use anyhow::{Context, bail};
use chorus_avro::{
    Compatibility, EventType, RegistryClient, backward_incompatibilities, subject_name,
};

use crate::args::{Global, SchemaSourceArgs};

pub async fn register(global: &Global, args: &SchemaSourceArgs) -> anyhow::Result<()> {
    let schemas = load(args.dir.as_deref())?;
    let registry = RegistryClient::new(&global.registry_settings()?, global.timeout())?;
    registry.set_compatibility("BACKWARD").await?;
    println!("compatibility BACKWARD at {}", registry.base_url());
    let catalogue = global.catalogue();
    for (event_type, text) in schemas {
        let subject = subject_name(&catalogue.topic_of(event_type), event_type);
        let id = registry
            .register(&subject, &text)
            .await
            .with_context(|| format!("registering {subject}"))?;
        println!("registered {subject} (id {id})");
    }
    Ok(())
}

pub async fn check(global: &Global, args: &SchemaSourceArgs) -> anyhow::Result<()> {
    let schemas = load(args.dir.as_deref())?;
    let registry = RegistryClient::new(&global.registry_settings()?, global.timeout())?;
    let catalogue = global.catalogue();
    let mut incompatible = 0;
    for (event_type, text) in schemas {
        let subject = subject_name(&catalogue.topic_of(event_type), event_type);
        match registry.check(&subject, &text).await? {
            Compatibility::NewSubject => println!("new          {subject}"),
            Compatibility::Compatible => println!("compatible   {subject}"),
            Compatibility::Incompatible { messages } => {
                incompatible += 1;
                println!("INCOMPATIBLE {subject}");
                // The registry's words may not name the field; our own diff does.
                if let Some(latest) = registry.latest(&subject).await? {
                    for diff in backward_incompatibilities(&text, &latest.schema)
                        .map_err(anyhow::Error::msg)?
                    {
                        println!("  {diff}");
                    }
                }
                for message in messages {
                    println!("  registry: {message}");
                }
            }
        }
    }
    if incompatible > 0 {
        bail!("{incompatible} schema(s) are not BACKWARD compatible with the registry");
    }
    Ok(())
}

/// The schemas to work with: built in, or every `.avsc` in `dir` matched to
/// its event type by record name.
fn load(dir: Option<&Path>) -> anyhow::Result<Vec<(EventType, String)>> {
    let Some(dir) = dir else {
        return Ok(EventType::ALL
            .iter()
            .map(|&t| (t, t.schema_text().to_string()))
            .collect());
    };
    let mut schemas = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "avsc") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        let full_name = match (json["namespace"].as_str(), json["name"].as_str()) {
            (Some(ns), Some(name)) => format!("{ns}.{name}"),
            (None, Some(name)) => name.to_string(),
            _ => bail!("{} has no record name", path.display()),
        };
        let event_type = EventType::from_full_name(&full_name).with_context(|| {
            format!(
                "{}: `{full_name}` is not a chorus event type",
                path.display()
            )
        })?;
        apache_avro::Schema::parse_str(&text)
            .with_context(|| format!("{} is not a valid Avro schema", path.display()))?;
        schemas.push((event_type, text));
    }
    if schemas.is_empty() {
        bail!("no .avsc files in {}", dir.display());
    }
    schemas.sort_by_key(|(t, _)| *t);
    Ok(schemas)
}
