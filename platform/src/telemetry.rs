//! Logs and traces through `tracing`: JSON lines in containers, readable lines in a terminal,
//! and — when `OTEL_EXPORTER_OTLP_ENDPOINT` is set — spans exported over OTLP/HTTP.
//!
//! `RUST_LOG` filters (default `info`); `LOG_FORMAT=json|pretty` overrides the format, which
//! otherwise follows whether the logs' [`LogOutput`] is a terminal. W3C `traceparent` headers
//! make a request's span a child of the caller's trace, and a projector batch links to the traces
//! of its events.

use std::io::IsTerminal;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the span exporter alive; dropping it flushes the spans not yet exported.
#[derive(Debug)]
pub struct Telemetry(Option<SdkTracerProvider>);

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("could not flush spans: {error}");
        }
    }
}

/// Where log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    /// A server's: stdout is the stream its container's logs are collected from.
    Stdout,
    /// A one-shot command's: stdout is kept for what the command prints, such as the single JSON
    /// object of `verify --json`.
    Stderr,
}

/// Installs the global subscriber, logging to `output` and exporting spans to
/// `OTEL_EXPORTER_OTLP_ENDPOINT` when it is set. Call once, first thing in `main`, and keep the
/// result.
pub fn init(service: &'static str, version: &'static str, output: LogOutput) -> Telemetry {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty());
    init_with(service, version, output, endpoint)
}

/// [`init`] with the OTLP endpoint (base URL, e.g. `http://collector:4318`) given.
pub fn init_with(
    service: &'static str,
    version: &'static str,
    output: LogOutput,
    endpoint: Option<String>,
) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, terminal) = match output {
        LogOutput::Stdout => (
            BoxMakeWriter::new(std::io::stdout),
            std::io::stdout().is_terminal(),
        ),
        LogOutput::Stderr => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
        ),
    };
    let json = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("pretty") => false,
        _ => !terminal,
    };
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().with_writer(writer).boxed()
    };
    let (provider, traces) = match endpoint
        .as_deref()
        .map(|endpoint| tracer_provider(service, version, endpoint))
    {
        Some(Ok(provider)) => {
            let tracer = provider.tracer(service);
            (
                Some(provider),
                Some(tracing_opentelemetry::layer().with_tracer(tracer)),
            )
        }
        Some(Err(error)) => {
            eprintln!("{service}: OTLP export disabled: {error}");
            (None, None)
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .init();
    tracing::info!(
        service,
        version,
        otlp_endpoint = endpoint.as_deref().unwrap_or("none"),
        "starting"
    );
    Telemetry(provider)
}

/// An OTLP/HTTP (protobuf) exporter to `{endpoint}/v1/traces`, batching spans on a thread of
/// its own.
fn tracer_provider(
    service: &'static str,
    version: &'static str,
    endpoint: &str,
) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .with_attribute(opentelemetry::KeyValue::new("service.version", version))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

fn context_of(traceparent: &str) -> opentelemetry::Context {
    let carrier =
        std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    TraceContextPropagator::new().extract(&carrier)
}

/// Makes `span` a child of the trace in `traceparent` (a no-op without OTLP export or with a
/// malformed value).
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    if traceparent.is_empty() {
        return;
    }
    let context = context_of(traceparent);
    if context.span().span_context().is_valid() {
        let _ = span.set_parent(context);
    }
}

/// Links `span` to the traces in `traceparents` (a batch serves several requests' events).
pub fn link_traces<'a>(span: &tracing::Span, traceparents: impl IntoIterator<Item = &'a str>) {
    for traceparent in traceparents {
        let context = context_of(traceparent);
        let span_context = context.span().span_context().clone();
        if span_context.is_valid() {
            span.add_link(span_context);
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Accepts one OTLP/HTTP request and returns its body.
    async fn receive_one(listener: tokio::net::TcpListener) -> Vec<u8> {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let read = socket.read(&mut buffer).await.unwrap();
            request.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length || read == 0 {
                    socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .unwrap();
                    return request[end + 4..].to_vec();
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spans_reach_the_otlp_endpoint_in_the_callers_trace() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let received = tokio::spawn(receive_one(listener));
        let telemetry =
            super::init_with("otlp-test", "0", super::LogOutput::Stdout, Some(endpoint));

        let span = tracing::info_span!("request");
        super::continue_trace(
            &span,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        span.in_scope(|| tracing::info!("handled"));
        drop(span);
        // Flushing blocks on the exporter's thread, which needs the sink to answer.
        tokio::task::spawn_blocking(move || drop(telemetry))
            .await
            .unwrap();

        let body = received.await.unwrap();
        let trace_id = [
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36,
        ];
        assert!(
            body.windows(16).any(|w| w == trace_id),
            "the exported span is in the caller's trace"
        );
        assert!(
            String::from_utf8_lossy(&body).contains("otlp-test"),
            "the resource names the service"
        );
    }
}
