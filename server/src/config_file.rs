//! What the configuration files (`--warehouses`, `--kafka-config`) share: how a
//! deserialization error becomes `field: reason`.

/// `field: reason` for a deserialization error at `path`: serde_path_to_error's path
/// names the parent object of a missing or unknown key (the key is in the message),
/// and serde_norway puts its own path in front of the message ("warehouses[0]: ...").
/// `top` names the whole file when the error is about no field.
pub fn describe(path: String, reason: impl ToString, top: &str) -> String {
    let reason = reason.to_string();
    let reason = match reason.split_once(": ") {
        Some((head, rest)) if !head.contains(' ') => rest.to_owned(),
        _ => reason,
    };
    let key = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|p| reason.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    let field = match (path.as_str(), key) {
        ("." | "", Some(k)) => k.to_owned(),
        (p, Some(k)) if p == k || p.ends_with(&format!(".{k}")) => p.to_owned(),
        (p, Some(k)) => format!("{p}.{k}"),
        ("." | "", None) => top.to_owned(),
        (p, None) => p.to_owned(),
    };
    format!("{field}: {reason}")
}
