//! The `--warehouses` file: the warehouse table the engine allocates with.
//!
//! YAML (`.yaml`, `.yml`) in seed 004's shape or TOML (`.toml`, `[[warehouses]]`
//! tables), chosen by the extension:
//!
//! ```yaml
//! warehouses:
//!   - id: wh-sp-001
//!     name: DC Sao Paulo
//!     region: southeast
//!     priority: 1
//! ```
//!
//! `id` and `priority` are required (a lower priority is tried first); `name`
//! defaults to the id, `region` is optional. Unknown keys, duplicate ids, the id
//! `default` and a priority that is not a whole number 0 to 4294967295 are refused;
//! every error names the file and the field (`warehouses[1].id`).

use serde::Deserialize;
use std::path::Path;
use stockd_engine::location::{validate_warehouses, LocationId, Warehouse};
use stockd_engine::EngineError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WarehousesFile {
    warehouses: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    name: Option<String>,
    region: Option<String>,
    priority: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Yaml,
    Toml,
}

/// Reads and checks the warehouses file at `path`.
pub fn load(path: &Path) -> Result<Vec<Warehouse>, String> {
    let what = format!("warehouses file {}", path.display());
    let format = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("yaml" | "yml") => Format::Yaml,
        Some("toml") => Format::Toml,
        _ => return Err(format!("{what}: unknown format; name it *.yaml, *.yml or *.toml")),
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{what}: cannot read it: {e}"))?;
    parse(&text, format).map_err(|e| format!("{what}: {e}"))
}

/// Parses and checks a warehouses document.
fn parse(text: &str, format: Format) -> Result<Vec<Warehouse>, String> {
    let file: WarehousesFile = match format {
        Format::Yaml => {
            let de = serde_norway::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| describe(e.path().to_string(), e.into_inner()))?
        }
        Format::Toml => {
            let de = toml::Deserializer::parse(text).map_err(|e| format!("malformed TOML: {}", e.message()))?;
            serde_path_to_error::deserialize(de)
                .map_err(|e| describe(e.path().to_string(), e.into_inner().message().to_owned()))?
        }
    };
    let mut out = Vec::with_capacity(file.warehouses.len());
    for (i, e) in file.warehouses.into_iter().enumerate() {
        let id = LocationId::parse(&e.id, &format!("warehouses[{i}].id")).map_err(engine_error)?;
        let name = e.name.unwrap_or_else(|| id.to_string());
        out.push(Warehouse { id, name, region: e.region, priority: e.priority });
    }
    validate_warehouses(&out).map_err(engine_error)?;
    Ok(out)
}

/// `field: reason` for a deserialization error at `path` (see [`crate::config_file`]).
fn describe(path: String, reason: impl ToString) -> String {
    crate::config_file::describe(path, reason, "warehouses")
}

fn engine_error(e: EngineError) -> String {
    match e {
        EngineError::Validation { field, message } => format!("{field}: {message}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_004: &str = "\
# config/warehouses.yaml
warehouses:
  - id: wh-sp-001
    name: DC Sao Paulo
    region: southeast
    priority: 1
  - id: wh-rj-001
    name: DC Rio de Janeiro
    region: southeast
    priority: 2
  - id: wh-pr-001
    name: DC Curitiba
    region: south
    priority: 1
";

    fn yaml_err(text: &str) -> String {
        parse(text, Format::Yaml).unwrap_err()
    }

    #[test]
    fn seed_004_yaml_and_the_same_in_toml() {
        let y = parse(SEED_004, Format::Yaml).unwrap();
        assert_eq!(y.len(), 3);
        assert_eq!((y[1].id.as_str(), y[1].name.as_str(), y[1].priority), ("wh-rj-001", "DC Rio de Janeiro", 2));
        assert_eq!(y[2].region.as_deref(), Some("south"));
        let toml = "[[warehouses]]\nid = \"wh-sp-001\"\nname = \"DC Sao Paulo\"\nregion = \"southeast\"\npriority = 1\n\
                    [[warehouses]]\nid = \"wh-rj-001\"\nname = \"DC Rio de Janeiro\"\nregion = \"southeast\"\npriority = 2\n\
                    [[warehouses]]\nid = \"wh-pr-001\"\nname = \"DC Curitiba\"\nregion = \"south\"\npriority = 1\n";
        assert_eq!(parse(toml, Format::Toml).unwrap(), y);
        let bare = parse("warehouses:\n  - {id: a, priority: 3}\n", Format::Yaml).unwrap();
        assert_eq!((bare[0].name.as_str(), bare[0].region.as_deref()), ("a", None));
    }

    #[test]
    fn errors_name_the_field() {
        let e = yaml_err("warehouses:\n  - {id: a, priority: 1, zone: x}\n");
        assert!(e.starts_with("warehouses[0].zone: unknown field `zone`"), "{e}");
        let e = yaml_err("warehouses:\n  - {id: a, priority: 1}\n  - {name: b, priority: 1}\n");
        assert!(e.starts_with("warehouses[1].id: missing field `id`"), "{e}");
        let e = yaml_err("warehouses:\n  - {id: a, priority: 1}\n  - {id: a, priority: 2}\n");
        assert!(e.starts_with("warehouses[1].id: a appears twice"), "{e}");
        let e = yaml_err("warehouses:\n  - {id: default, priority: 1}\n");
        assert!(e.starts_with("warehouses[0].id: "), "{e}");
        for bad in ["-1", "high", "1.5", "4294967296"] {
            let e = yaml_err(&format!("warehouses:\n  - {{id: a, priority: {bad}}}\n"));
            assert!(e.starts_with("warehouses[0].priority: "), "{bad}: {e}");
        }
        let e = yaml_err("warehouses:\n  - {id: 'a b', priority: 1}\n");
        assert!(e.starts_with("warehouses[0].id: "), "{e}");
        assert!(yaml_err("stores: []\n").starts_with("stores: unknown field"), "{}", yaml_err("stores: []\n"));
        assert!(yaml_err("{}\n").starts_with("warehouses: missing field"), "{}", yaml_err("{}\n"));
        assert!(yaml_err("warehouses: [").contains("warehouses"), "{}", yaml_err("warehouses: ["));
        let e = parse("[[warehouses]]\nid = \"a\"\npriority = \"x\"\n", Format::Toml).unwrap_err();
        assert!(e.starts_with("warehouses[0].priority: "), "{e}");
        let e = parse("[[warehouses]]\nid = \"a\"\npriority = 1\ncolour = 2\n", Format::Toml).unwrap_err();
        assert!(e.starts_with("warehouses[0].colour: "), "{e}");
        assert!(parse("[[warehouses]\n", Format::Toml).unwrap_err().starts_with("malformed TOML"));
    }
}
