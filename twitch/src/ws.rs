//! The EventSub WebSocket transport, for a machine without a public HTTPS callback.
//!
//! [`EventSubSocket::connect`] reads the `session_welcome`; create subscriptions with
//! `Transport::WebSocket { session_id }` and a user token within the keepalive window, then call
//! [`EventSubSocket::next`] in a loop. Keepalives are consumed inside; silence longer than the
//! keepalive timeout plus a grace is [`TwitchError::KeepaliveTimeout`] (connect again and
//! resubscribe). On [`Frame::Reconnect`] call [`EventSubSocket::reconnect`]: it moves to the new
//! URL without losing what the old connection still delivers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::oauth::TwitchError;

type Stream = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// How patient the socket is. `Default` suits Twitch; tests shorten the waits.
#[derive(Debug, Clone)]
pub struct SocketOptions {
    /// Added to the session's keepalive timeout before silence counts as a dead connection.
    pub keepalive_grace: Duration,
    /// How long to wait for the TCP/TLS/WebSocket handshake plus the `session_welcome`.
    pub welcome_timeout: Duration,
    /// After the new connection's welcome, how long to keep reading the old one for messages
    /// still in flight before closing it (Twitch closes it itself right after the switch).
    pub drain_timeout: Duration,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            keepalive_grace: Duration::from_secs(3),
            welcome_timeout: Duration::from_secs(15),
            drain_timeout: Duration::from_secs(2),
        }
    }
}

/// An event delivered on the socket.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// `metadata.message_id`: the dedupe key (Twitch may deliver a message twice).
    pub message_id: String,
    /// `metadata.message_timestamp` as sent (RFC 3339, nanoseconds).
    pub message_timestamp: String,
    /// The same, parsed. This is the message time for events without their own timestamp
    /// (`channel.chat.message`).
    pub timestamp: DateTime<Utc>,
    pub subscription_type: String,
    pub subscription_version: String,
    /// `{"subscription": {...}, "event": {...}}`.
    pub payload: serde_json::Value,
}

/// What [`EventSubSocket::next`] hands out.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Notification(Notification),
    /// Twitch revoked a subscription; `subscription.status` says why (`authorization_revoked`,
    /// `user_removed`, `version_removed`, ...). No more events come for it.
    Revocation {
        message_id: String,
        subscription: serde_json::Value,
    },
    /// `session_reconnect`: call [`EventSubSocket::reconnect`] with this URL soon (Twitch closes
    /// the old connection after 30 s).
    Reconnect {
        url: String,
    },
}

#[derive(Deserialize)]
struct Envelope {
    metadata: Metadata,
    #[serde(default)]
    payload: serde_json::Value,
}

#[derive(Deserialize)]
struct Metadata {
    message_id: String,
    message_type: String,
    message_timestamp: String,
    #[serde(default)]
    subscription_type: Option<String>,
    #[serde(default)]
    subscription_version: Option<String>,
}

#[derive(Deserialize)]
struct SessionPayload {
    session: Session,
}

#[derive(Deserialize)]
struct Session {
    id: String,
    #[serde(default)]
    keepalive_timeout_seconds: Option<u64>,
    #[serde(default)]
    reconnect_url: Option<String>,
}

/// What one text message from the server means.
enum Incoming {
    Welcome {
        session_id: String,
        keepalive: Duration,
    },
    Keepalive,
    Frame(Frame),
}

fn parse(text: &str) -> Result<Incoming, TwitchError> {
    let envelope: Envelope = serde_json::from_str(text)
        .map_err(|e| TwitchError::Protocol(format!("EventSub message: {e}")))?;
    let session = |payload: serde_json::Value| {
        serde_json::from_value::<SessionPayload>(payload)
            .map(|p| p.session)
            .map_err(|e| TwitchError::Protocol(format!("EventSub session payload: {e}")))
    };
    let metadata = envelope.metadata;
    Ok(match metadata.message_type.as_str() {
        "session_welcome" => {
            let s = session(envelope.payload)?;
            Incoming::Welcome {
                session_id: s.id,
                keepalive: Duration::from_secs(s.keepalive_timeout_seconds.unwrap_or(10)),
            }
        }
        "session_keepalive" => Incoming::Keepalive,
        "session_reconnect" => {
            let url = session(envelope.payload)?.reconnect_url.ok_or_else(|| {
                TwitchError::Protocol("session_reconnect without reconnect_url".into())
            })?;
            Incoming::Frame(Frame::Reconnect { url })
        }
        "notification" => {
            let timestamp = DateTime::parse_from_rfc3339(&metadata.message_timestamp)
                .map_err(|e| {
                    TwitchError::Protocol(format!(
                        "message_timestamp {:?}: {e}",
                        metadata.message_timestamp
                    ))
                })?
                .with_timezone(&Utc);
            Incoming::Frame(Frame::Notification(Notification {
                message_id: metadata.message_id,
                message_timestamp: metadata.message_timestamp,
                timestamp,
                subscription_type: metadata.subscription_type.unwrap_or_default(),
                subscription_version: metadata.subscription_version.unwrap_or_default(),
                payload: envelope.payload,
            }))
        }
        "revocation" => Incoming::Frame(Frame::Revocation {
            message_id: metadata.message_id,
            subscription: envelope.payload["subscription"].clone(),
        }),
        other => {
            return Err(TwitchError::Protocol(format!(
                "unknown EventSub message type {other:?}"
            )));
        }
    })
}

/// What reading one WebSocket message gave.
enum Read {
    Text(String),
    /// Ping/pong/binary: not an EventSub message (does not count as liveness).
    Other,
    Closed {
        code: Option<u16>,
        reason: String,
    },
}

async fn read(stream: &mut Stream) -> Read {
    match stream.next().await {
        Some(Ok(Message::Text(text))) => Read::Text(text.to_string()),
        Some(Ok(Message::Close(frame))) => Read::Closed {
            code: frame.as_ref().map(|f| u16::from(f.code)),
            reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
        },
        Some(Ok(_)) => Read::Other,
        Some(Err(e)) => Read::Closed {
            code: None,
            reason: e.to_string(),
        },
        None => Read::Closed {
            code: None,
            reason: "connection ended".into(),
        },
    }
}

fn tls_connector() -> Connector {
    // An explicit provider: the workspace links both ring and aws-lc-rs, so rustls cannot pick a
    // process default by itself.
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Connector::Rustls(Arc::new(config))
}

/// Opens a connection and reads up to its `session_welcome`.
async fn open(
    url: &str,
    options: &SocketOptions,
) -> Result<(Stream, String, Duration), TwitchError> {
    let handshake = async {
        let (mut stream, _) = tokio_tungstenite::connect_async_tls_with_config(
            url,
            None,
            false,
            Some(tls_connector()),
        )
        .await
        .map_err(|e| TwitchError::Transient(format!("EventSub WebSocket connect {url}: {e}")))?;
        loop {
            match read(&mut stream).await {
                Read::Text(text) => match parse(&text)? {
                    Incoming::Welcome {
                        session_id,
                        keepalive,
                    } => return Ok((stream, session_id, keepalive)),
                    _ => {
                        return Err(TwitchError::Protocol(
                            "the first EventSub message was not session_welcome".into(),
                        ));
                    }
                },
                Read::Other => {}
                Read::Closed { code, reason } => {
                    return Err(TwitchError::SocketClosed { code, reason });
                }
            }
        }
    };
    tokio::time::timeout(options.welcome_timeout, handshake)
        .await
        .map_err(|_| {
            TwitchError::Transient(format!(
                "no session_welcome from {url} within {:?}",
                options.welcome_timeout
            ))
        })?
}

/// One EventSub WebSocket session.
pub struct EventSubSocket {
    stream: Stream,
    session_id: String,
    keepalive_timeout: Duration,
    options: SocketOptions,
    /// When the last EventSub message arrived (liveness).
    last_message: Instant,
    /// Frames read from the old connection during a reconnect, handed out first.
    pending: VecDeque<Frame>,
}

impl std::fmt::Debug for EventSubSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSubSocket")
            .field("session_id", &self.session_id)
            .field("keepalive_timeout", &self.keepalive_timeout)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl EventSubSocket {
    /// Connects (e.g. `wss://eventsub.wss.twitch.tv/ws?keepalive_timeout_seconds=30`) and reads
    /// the welcome.
    pub async fn connect(url: &str) -> Result<Self, TwitchError> {
        Self::connect_with(url, SocketOptions::default()).await
    }

    pub async fn connect_with(url: &str, options: SocketOptions) -> Result<Self, TwitchError> {
        let (stream, session_id, keepalive_timeout) = open(url, &options).await?;
        Ok(Self {
            stream,
            session_id,
            keepalive_timeout,
            options,
            last_message: Instant::now(),
            pending: VecDeque::new(),
        })
    }

    /// The session id for `Transport::WebSocket`.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The session's `keepalive_timeout_seconds`.
    pub fn keepalive_timeout(&self) -> Duration {
        self.keepalive_timeout
    }

    fn liveness_window(&self) -> Duration {
        self.keepalive_timeout + self.options.keepalive_grace
    }

    /// The next notification, revocation or reconnect request. Keepalives are consumed here.
    /// Errors end the session: [`TwitchError::KeepaliveTimeout`], [`TwitchError::SocketClosed`]
    /// or [`TwitchError::Protocol`].
    pub async fn next(&mut self) -> Result<Frame, TwitchError> {
        if let Some(frame) = self.pending.pop_front() {
            return Ok(frame);
        }
        loop {
            let deadline = self.last_message + self.liveness_window();
            let read = tokio::time::timeout_at(deadline, read(&mut self.stream))
                .await
                .map_err(|_| TwitchError::KeepaliveTimeout(self.liveness_window()))?;
            match read {
                Read::Text(text) => {
                    self.last_message = Instant::now();
                    match parse(&text)? {
                        Incoming::Frame(frame) => return Ok(frame),
                        Incoming::Keepalive => {}
                        Incoming::Welcome { .. } => {
                            return Err(TwitchError::Protocol(
                                "a second session_welcome on an open session".into(),
                            ));
                        }
                    }
                }
                Read::Other => {}
                Read::Closed { code, reason } => {
                    return Err(TwitchError::SocketClosed { code, reason });
                }
            }
        }
    }

    /// Moves the session to `url` (from [`Frame::Reconnect`]): connects there and waits for its
    /// welcome (same session id: the subscriptions carry over) while still reading the old
    /// connection; then reads the old one until the server closes it (or `drain_timeout`), and
    /// closes it. Everything the old connection delivered is handed out by [`Self::next`] before
    /// anything from the new one. On error the old connection stays in use.
    pub async fn reconnect(&mut self, url: &str) -> Result<(), TwitchError> {
        let mut old_open = true;
        let options = self.options.clone();
        let opening = open(url, &options);
        tokio::pin!(opening);
        let (new_stream, session_id, keepalive) = loop {
            tokio::select! {
                opened = &mut opening => break opened?,
                read = read(&mut self.stream), if old_open => {
                    old_open = self.keep_from_old(read)?;
                }
            }
        };
        if session_id != self.session_id {
            return Err(TwitchError::Protocol(format!(
                "the reconnect URL welcomed session {session_id}, not {}",
                self.session_id
            )));
        }
        let drain_until = Instant::now() + self.options.drain_timeout;
        while old_open {
            match tokio::time::timeout_at(drain_until, read(&mut self.stream)).await {
                Ok(read) => old_open = self.keep_from_old(read)?,
                Err(_) => break,
            }
        }
        let mut old = std::mem::replace(&mut self.stream, new_stream);
        if old_open {
            let _ = old
                .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: CloseCode::Normal,
                    reason: "reconnected".into(),
                }))
                .await;
        }
        let _ = old.flush().await;
        self.keepalive_timeout = keepalive;
        self.last_message = Instant::now();
        Ok(())
    }

    /// Keeps a frame the old connection delivered during a reconnect; `false` once it closed.
    fn keep_from_old(&mut self, read: Read) -> Result<bool, TwitchError> {
        match read {
            Read::Text(text) => {
                match parse(&text)? {
                    Incoming::Frame(Frame::Reconnect { .. })
                    | Incoming::Keepalive
                    | Incoming::Welcome { .. } => {}
                    Incoming::Frame(frame) => self.pending.push_back(frame),
                }
                Ok(true)
            }
            Read::Other => Ok(true),
            Read::Closed { .. } => Ok(false),
        }
    }

    /// Closes the connection (Twitch then disables the session's subscriptions).
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_twitchs_reference_messages() {
        // Examples from Twitch's "EventSub WebSocket reference".
        let welcome = r#"{"metadata":{"message_id":"96a3f3b5-5dec-4eed-908e-e11ee657416c","message_type":"session_welcome","message_timestamp":"2023-07-19T14:56:51.634234626Z"},"payload":{"session":{"id":"AQoQILE98gtqShGmLD7AM6yJThAB","status":"connected","connected_at":"2023-07-19T14:56:51.616329898Z","keepalive_timeout_seconds":10,"reconnect_url":null}}}"#;
        assert!(matches!(
            parse(welcome).unwrap(),
            Incoming::Welcome { session_id, keepalive }
                if session_id == "AQoQILE98gtqShGmLD7AM6yJThAB" && keepalive == Duration::from_secs(10)
        ));
        let keepalive = r#"{"metadata":{"message_id":"84c1e79a-2a4b-4c13-ba0b-4312293e9308","message_type":"session_keepalive","message_timestamp":"2023-07-19T10:11:12.634234626Z"},"payload":{}}"#;
        assert!(matches!(parse(keepalive).unwrap(), Incoming::Keepalive));
        let notification = r#"{"metadata":{"message_id":"befa7b53-d79d-478f-86b9-120f112b044e","message_type":"notification","message_timestamp":"2022-11-16T10:11:12.464757833Z","subscription_type":"channel.follow","subscription_version":"1"},"payload":{"subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"enabled","type":"channel.follow","version":"1","cost":1,"condition":{"broadcaster_user_id":"12826"},"transport":{"method":"websocket","session_id":"AQoQexAWVYKSTIu4ec_2VAxyuhAB"},"created_at":"2022-11-16T10:11:12.464757833Z"},"event":{"user_id":"1337","user_login":"awesome_user"}}}"#;
        let Incoming::Frame(Frame::Notification(n)) = parse(notification).unwrap() else {
            panic!("a notification");
        };
        assert_eq!(n.message_id, "befa7b53-d79d-478f-86b9-120f112b044e");
        assert_eq!(n.subscription_type, "channel.follow");
        assert_eq!(n.message_timestamp, "2022-11-16T10:11:12.464757833Z");
        assert_eq!(n.timestamp.timestamp_subsec_nanos(), 464_757_833);
        assert_eq!(n.payload["event"]["user_login"], "awesome_user");
        let reconnect = r#"{"metadata":{"message_id":"84c1e79a-2a4b-4c13-ba0b-4312293e9308","message_type":"session_reconnect","message_timestamp":"2022-11-18T09:10:11.634234626Z"},"payload":{"session":{"id":"AQoQexAWVYKSTIu4ec_2VAxyuhAB","status":"reconnecting","keepalive_timeout_seconds":null,"reconnect_url":"wss://eventsub.wss.twitch.tv?...","connected_at":"2022-11-16T10:11:12.634234626Z"}}}"#;
        assert!(matches!(
            parse(reconnect).unwrap(),
            Incoming::Frame(Frame::Reconnect { url }) if url == "wss://eventsub.wss.twitch.tv?..."
        ));
        let revocation = r#"{"metadata":{"message_id":"84c1e79a-2a4b-4c13-ba0b-4312293e9308","message_type":"revocation","message_timestamp":"2022-11-16T10:11:12.464757833Z","subscription_type":"channel.follow","subscription_version":"1"},"payload":{"subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"authorization_revoked","type":"channel.follow","version":"1","cost":1,"condition":{"broadcaster_user_id":"12826"},"transport":{"method":"websocket","session_id":"AQoQexAWVYKSTIu4ec_2VAxyuhAB"},"created_at":"2022-11-16T10:11:12.464757833Z"}}}"#;
        assert!(matches!(
            parse(revocation).unwrap(),
            Incoming::Frame(Frame::Revocation { subscription, .. })
                if subscription["status"] == "authorization_revoked"
        ));
        assert!(parse(r#"{"metadata":{"message_id":"x","message_type":"surprise","message_timestamp":"2022-11-16T10:11:12Z"},"payload":{}}"#).is_err());
        assert!(parse("not json").is_err());
    }
}
