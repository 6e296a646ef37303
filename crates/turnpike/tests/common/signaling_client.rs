//! A signaling WebSocket client (docs/signaling.md) over a blocking socket, for the tests of
//! the binary.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as Frame, WebSocket};

/// A signaling WebSocket client over a blocking socket.
pub struct Client(pub WebSocket<TcpStream>);

impl Client {
    /// Opens `ws://addr/ws`, with an `Origin` header when given.
    pub fn connect(addr: SocketAddr, origin: Option<&str>) -> Result<Client, tungstenite::Error> {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("Origin", origin.parse().unwrap());
        }
        match tungstenite::client(request, tcp) {
            Ok((socket, _)) => Ok(Client(socket)),
            Err(tungstenite::HandshakeError::Failure(error)) => Err(error),
            Err(tungstenite::HandshakeError::Interrupted(_)) => panic!("blocking handshake"),
        }
    }

    pub fn open(addr: SocketAddr) -> Client {
        Client::connect(addr, None).unwrap()
    }

    pub fn send(&mut self, text: &str) {
        self.0.send(Frame::text(text)).unwrap();
    }

    pub fn send_json(&mut self, value: Value) {
        self.send(&value.to_string());
    }

    /// The next text frame, skipping the server's `ping`s.
    pub fn recv_text(&mut self) -> String {
        loop {
            match self.0.read().unwrap() {
                Frame::Text(text) if text.as_str() == r#"{"type":"ping"}"# => {}
                Frame::Text(text) => return text.as_str().to_owned(),
                Frame::Ping(_) | Frame::Pong(_) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    pub fn recv(&mut self) -> Value {
        serde_json::from_str(&self.recv_text()).unwrap()
    }

    /// The close frame's code, after any text frames (which are returned).
    pub fn recv_close(&mut self) -> (Option<CloseCode>, Vec<String>) {
        let mut texts = Vec::new();
        loop {
            match self.0.read() {
                Ok(Frame::Text(text)) => texts.push(text.as_str().to_owned()),
                Ok(Frame::Close(frame)) => return (frame.map(|f| f.code), texts),
                Ok(_) => {}
                Err(error) => panic!("expected a close frame, got {error}"),
            }
        }
    }

    /// Joins `room` (with `token`) and returns `joined`.
    pub fn join(&mut self, room: &str, token: Option<&str>) -> Value {
        let mut join = json!({ "type": "join", "room": room });
        if let Some(token) = token {
            join["token"] = json!(token);
        }
        self.send_json(join);
        self.recv()
    }
}
