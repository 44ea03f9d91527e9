//! JSON output: one document per command on one line (JSON Lines for several). Addresses are hex
//! strings, sizes and counts integers; field names are a contract documented in docs/json.md.

use serde::Serializer;
use std::path::PathBuf;

/// Serializes an optional path as a string (lossy for non-UTF-8 bytes) or null.
pub fn lossy_opt_path<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.collect_str(&p.display()),
        None => s.serialize_none(),
    }
}

/// The error document: `{"error": "...", "command": "..."}`.
pub fn error_document(command: &str, message: &str) -> String {
    serde_json::json!({ "error": message, "command": command }).to_string()
}
