//! The room page's chat messages: one data-channel message (RFC 8831 §6.6, a UTF-8 string
//! message) per line, the JSON object `{"text": "..."}` that web/static/room.js sends and
//! reads; plain text is accepted too, as the page accepts it.

use serde_json::{json, Value};

/// Longest chat message printed; a peer sending more gets it cut (the page's limit is the
/// data channel's message size, far more than a line).
const MAX_TEXT: usize = 16 * 1024;

/// The message for one typed line.
pub fn encode(line: &str) -> String {
    json!({ "text": line }).to_string()
}

/// The text of a received message: `text` of a JSON object, or the message itself.
pub fn decode(message: &[u8]) -> String {
    let raw = String::from_utf8_lossy(message);
    let text = match serde_json::from_str::<Value>(&raw) {
        Ok(Value::Object(object)) => match object.get("text") {
            Some(Value::String(text)) => text.clone(),
            _ => raw.into_owned(),
        },
        _ => raw.into_owned(),
    };
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_in_the_pages_format() {
        let message = encode("hello \"page\"");
        assert_eq!(message, r#"{"text":"hello \"page\""}"#);
        assert_eq!(decode(message.as_bytes()), "hello \"page\"");
    }

    #[test]
    fn plain_text_and_other_json_are_shown_as_they_came() {
        assert_eq!(decode(b"just text"), "just text");
        assert_eq!(decode(br#"{"other": 1}"#), r#"{"other": 1}"#);
        assert_eq!(decode(&[0xff, b'a']), "\u{fffd}a");
        assert_eq!(decode("é".repeat(MAX_TEXT).as_bytes()).len(), MAX_TEXT);
    }
}
