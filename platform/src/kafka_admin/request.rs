//! One admin request through librdkafka's C API: a client made from the
//! [`KafkaSettings`] (so SASL and TLS apply), a queue of the request's own,
//! options carrying the timeout, and the result event, each freed by `Drop`.
//! Blocking: callers run it on `spawn_blocking`.

use std::ffi::{CStr, CString, c_char};
use std::ptr;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;

use crate::kafka::KafkaSettings;

/// A client able to send admin requests; owns its `rd_kafka_t`.
pub(crate) struct AdminHandle {
    // Kept alive for as long as the raw handle is used.
    client: AdminClient<DefaultClientContext>,
    timeout: Duration,
}

impl AdminHandle {
    pub(crate) fn connect(kafka: &KafkaSettings, timeout: Duration) -> Result<AdminHandle, String> {
        let client = kafka
            .client_config()
            .create()
            .map_err(|e| format!("creating a Kafka admin client for {}: {e}", kafka.brokers))?;
        Ok(AdminHandle { client, timeout })
    }

    /// Sends one request (`send` gets the client, the options and the
    /// queue to answer on) and waits for its result event.
    pub(crate) fn request(
        &self,
        op: rd::rd_kafka_admin_op_t,
        include_authorized_operations: bool,
        what: &str,
        send: impl FnOnce(
            *mut rd::rd_kafka_t,
            *const rd::rd_kafka_AdminOptions_t,
            *mut rd::rd_kafka_queue_t,
        ),
    ) -> Result<ResultEvent, String> {
        let rk = self.client.inner().native_ptr();
        let options = Options::new(rk, op, self.timeout, include_authorized_operations)?;
        let queue = Queue::new(rk)?;
        send(rk, options.0, queue.0);
        let wait = self.timeout + Duration::from_secs(1);
        // SAFETY: the queue is live (freed by `Queue`'s Drop after this call);
        // the event returned, if any, is ours to destroy (`ResultEvent`'s Drop).
        let event = unsafe { rd::rd_kafka_queue_poll(queue.0, millis(wait)) };
        if event.is_null() {
            return Err(format!("{what}: no answer from Kafka within {wait:?}"));
        }
        let event = ResultEvent(event);
        // SAFETY: the event is live; the error string lives as long as it.
        let code = unsafe { rd::rd_kafka_event_error(event.0) };
        if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let text = unsafe { text(rd::rd_kafka_event_error_string(event.0)) };
            return Err(format!("{what}: {text}"));
        }
        Ok(event)
    }
}

/// A result event, destroyed on drop (which frees every result object
/// borrowed from it: read them before dropping).
pub(crate) struct ResultEvent(pub(crate) *mut rd::rd_kafka_event_t);

impl Drop for ResultEvent {
    fn drop(&mut self) {
        // SAFETY: the event came from rd_kafka_queue_poll and is destroyed once.
        unsafe { rd::rd_kafka_event_destroy(self.0) }
    }
}

struct Options(*mut rd::rd_kafka_AdminOptions_t);

impl Options {
    fn new(
        rk: *mut rd::rd_kafka_t,
        op: rd::rd_kafka_admin_op_t,
        timeout: Duration,
        include_authorized_operations: bool,
    ) -> Result<Options, String> {
        // SAFETY: rk is the live client of the handle; the options are freed by Drop.
        let options = Options(unsafe { rd::rd_kafka_AdminOptions_new(rk, op) });
        if options.0.is_null() {
            return Err("librdkafka refused admin options".to_string());
        }
        let mut errstr = [0 as c_char; 256];
        // SAFETY: options is live; errstr is a writable buffer of the size given.
        let code = unsafe {
            rd::rd_kafka_AdminOptions_set_request_timeout(
                options.0,
                millis(timeout),
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            // SAFETY: librdkafka wrote a NUL-terminated message into errstr.
            return Err(unsafe { text(errstr.as_ptr()) });
        }
        if include_authorized_operations {
            // SAFETY: options is live; the returned error (if any) is ours to free.
            let error = unsafe {
                rd::rd_kafka_AdminOptions_set_include_authorized_operations(options.0, 1)
            };
            if !error.is_null() {
                // SAFETY: error is a live rd_kafka_error_t, destroyed once here.
                let message = unsafe { error_text(error) };
                unsafe { rd::rd_kafka_error_destroy(error) };
                return Err(message);
            }
        }
        Ok(options)
    }
}

impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_AdminOptions_new, destroyed once.
        unsafe { rd::rd_kafka_AdminOptions_destroy(self.0) }
    }
}

struct Queue(*mut rd::rd_kafka_queue_t);

impl Queue {
    fn new(rk: *mut rd::rd_kafka_t) -> Result<Queue, String> {
        // SAFETY: rk is the live client of the handle; the queue is freed by Drop
        // before the client (the handle outlives every request).
        let queue = unsafe { rd::rd_kafka_queue_new(rk) };
        if queue.is_null() {
            return Err("librdkafka refused a queue".to_string());
        }
        Ok(Queue(queue))
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_queue_new, destroyed once.
        unsafe { rd::rd_kafka_queue_destroy(self.0) }
    }
}

/// A C string to own, for arguments (names never hold a NUL: they come from
/// our configuration; one that did is refused, naming it).
pub(crate) fn c_string(value: &str) -> Result<CString, String> {
    CString::new(value).map_err(|_| format!("{value:?} holds a NUL byte"))
}

/// A C string as Rust text; an empty string for NULL.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string that stays valid during the call.
pub(crate) unsafe fn text(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: per the function's contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// The code and message of a librdkafka error object (NULL: none).
///
/// # Safety
/// `error` is NULL or a live `rd_kafka_error_t`.
pub(crate) unsafe fn error_code(
    error: *const rd::rd_kafka_error_t,
) -> Option<rd::rd_kafka_resp_err_t> {
    if error.is_null() {
        return None;
    }
    // SAFETY: per the function's contract.
    let code = unsafe { rd::rd_kafka_error_code(error) };
    (code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR).then_some(code)
}

/// # Safety
/// `error` is a live `rd_kafka_error_t`.
pub(crate) unsafe fn error_text(error: *const rd::rd_kafka_error_t) -> String {
    // SAFETY: per the function's contract; the strings live as long as the error.
    let (name, detail) = unsafe {
        (
            text(rd::rd_kafka_error_name(error)),
            text(rd::rd_kafka_error_string(error)),
        )
    };
    // The broker's message may be empty ("ConsumerGroupDescribe: "): the
    // error's name always says what it was.
    format!("{name} ({})", detail.trim_end_matches([':', ' ']))
}

/// A slice over a librdkafka array (NULL or empty: an empty slice).
///
/// # Safety
/// `ptr` is NULL or points at `len` initialised elements that outlive `'a`.
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: per the function's contract.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

/// For a NULL argument librdkafka reads as "any".
pub(crate) fn or_null(value: Option<&CString>) -> *const c_char {
    value.map_or(ptr::null(), |v| v.as_ptr())
}
