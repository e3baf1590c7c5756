//! The test binary's tracing: the same OpenTelemetry layer the services
//! install, exporting finished spans into memory, so tests can see a
//! request's span (its name, its attributes, its parent) and compare it with
//! the trace context the gateway put on Kafka.

use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Recorder {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

struct Installed {
    _provider: SdkTracerProvider,
    recorder: Recorder,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Installs the subscriber once for the whole test binary.
pub fn init() {
    INSTALLED.get_or_init(|| {
        let recorder = Recorder::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(recorder.clone())
            .build();
        let tracer = provider.tracer("gateway-tests");
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer))
            .try_init()
            .expect("the only subscriber of the test binary");
        Installed {
            _provider: provider,
            recorder,
        }
    });
}

/// Finished spans (of every test in the binary) that `select` picks.
pub fn finished(select: impl Fn(&SpanData) -> bool) -> Vec<SpanData> {
    init();
    let recorded = INSTALLED.get().unwrap().recorder.0.lock().unwrap();
    recorded.iter().filter(|s| select(s)).cloned().collect()
}

/// The string value of a span's attribute.
pub fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}
