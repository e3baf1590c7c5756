//! Stub receivers on 127.0.0.1:0: a webhook endpoint (axum) and a minimal
//! SMTP server, both recording what they received.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One webhook request as received: the headers whole, for a Standard
/// Webhooks library to verify, and the exact body bytes.
#[derive(Debug, Clone)]
pub struct Hook {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// What the receiver's witness saw while the request was open.
    pub seen: Option<String>,
}

impl Hook {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|value| value.to_str().unwrap().to_string())
    }

    /// The `webhook-id` header: the delivery id.
    pub fn delivery(&self) -> Option<String> {
        self.header("webhook-id")
    }
}

type HookScript = dyn Fn(usize) -> u16 + Send + Sync;
/// Looks at something (e.g. the database) while a request is open.
pub type Witness = dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync;

#[derive(Clone)]
struct HookState {
    received: Arc<Mutex<Vec<Hook>>>,
    status_of_call: Arc<HookScript>,
    witness: Option<Arc<Witness>>,
}

async fn receive(State(state): State<HookState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let seen = match &state.witness {
        Some(witness) => Some(witness().await),
        None => None,
    };
    let n = {
        let mut received = state.received.lock().unwrap();
        received.push(Hook {
            headers,
            body: body.to_vec(),
            seen,
        });
        received.len() - 1
    };
    StatusCode::from_u16((state.status_of_call)(n)).unwrap()
}

/// A webhook receiver answering its n-th call (0-based) with `status_of_call(n)`.
pub async fn webhook_receiver(
    status_of_call: impl Fn(usize) -> u16 + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Hook>>>) {
    webhook_receiver_watching(status_of_call, None).await
}

/// A webhook receiver answering whatever `status` holds at the time: a
/// receiver that is broken, then fixed.
pub async fn switchable_webhook_receiver(
    status: u16,
) -> (String, Arc<Mutex<Vec<Hook>>>, Arc<AtomicU16>) {
    let switch = Arc::new(AtomicU16::new(status));
    let answer = switch.clone();
    let (url, received) = webhook_receiver(move |_| answer.load(Ordering::SeqCst)).await;
    (url, received, switch)
}

/// As [`webhook_receiver`], recording in each [`Hook`] what `witness` saw
/// while the request was open.
pub async fn webhook_receiver_watching(
    status_of_call: impl Fn(usize) -> u16 + Send + Sync + 'static,
    witness: Option<Arc<Witness>>,
) -> (String, Arc<Mutex<Vec<Hook>>>) {
    let state = HookState {
        received: Arc::default(),
        status_of_call: Arc::new(status_of_call),
        witness,
    };
    let received = state.received.clone();
    let app = Router::new()
        .route("/hooks/orders", post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/orders", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// One mail as received.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// An SMTP server that accepts every mail, except that its first
/// `busy_sessions` sessions answer `MAIL FROM` with a transient 451.
pub async fn smtp_server(busy_sessions: usize) -> (String, Arc<Mutex<Vec<Mail>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
    let received = mails.clone();
    tokio::spawn(async move {
        for session in 0.. {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(smtp_session(socket, session < busy_sessions, mails.clone()));
        }
    });
    (url, received)
}

async fn smtp_session(socket: tokio::net::TcpStream, busy: bool, mails: Arc<Mutex<Vec<Mail>>>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut mail = Mail::default();
    write.write_all(b"220 stub ESMTP\r\n").await.unwrap();
    while let Ok(Some(line)) = lines.next_line().await {
        let command = line.to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250 stub\r\n"
        } else if command.starts_with("MAIL FROM:") && busy {
            b"451 4.3.0 try again later\r\n"
        } else if command.starts_with("MAIL FROM:") {
            mail.from = line[10..].trim().to_string();
            b"250 ok\r\n"
        } else if command.starts_with("RCPT TO:") {
            mail.to.push(line[8..].trim().to_string());
            b"250 ok\r\n"
        } else if command == "DATA" {
            write.write_all(b"354 end with .\r\n").await.unwrap();
            while let Ok(Some(data)) = lines.next_line().await {
                if data == "." {
                    break;
                }
                mail.data.push_str(&data);
                mail.data.push('\n');
            }
            mails.lock().unwrap().push(std::mem::take(&mut mail));
            b"250 queued\r\n"
        } else if command == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 ok\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
