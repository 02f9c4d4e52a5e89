//! Pipeline files: YAML with a name, a data directory, named inputs and models, an ordered list of
//! stages and an output directory.
//!
//! Every key is typed and unknown keys are errors; parse errors name the file, line, column and
//! key. Relative paths resolve against the pipeline file's folder (input paths against the data
//! directory). `--set key.path=value` overrides any value; stages are addressed by name or index.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::data::{Format, Tokenizer, YelpOptions};

/// A parsed pipeline file with every path resolved; `S` is a stage (the pipeline's stage registry
/// defines it, so that this module knows nothing of stage kinds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig<S> {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Folder that relative input paths resolve against.
    #[serde(default = "current_folder")]
    pub data_dir: PathBuf,
    pub output_dir: PathBuf,
    /// Where training stages keep trained models by content hash (default `<output_dir>/models`).
    #[serde(default)]
    pub model_cache: Option<PathBuf>,
    #[serde(default)]
    pub inputs: BTreeMap<String, InputConfig>,
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    pub stages: Vec<S>,
    /// Where each value came from, for messages about values that parse but cannot be used.
    #[serde(skip)]
    pub origins: Origins,
    /// The pipeline file's folder (absolute), which relative output paths of stage options
    /// resolve against.
    #[serde(skip)]
    pub folder: PathBuf,
    /// The file as read, after `--set` overrides: for the run manifest and stage keys, which
    /// hash the options a stage was given (not their defaults, so that a new option leaves
    /// existing keys alone).
    #[serde(skip)]
    pub tree: serde_json::Value,
    /// The `--set` overrides applied.
    #[serde(skip)]
    pub overrides: Vec<String>,
}

fn current_folder() -> PathBuf {
    PathBuf::from(".")
}

/// A dataset file and how to read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    pub format: InputFormat,
    pub path: PathBuf,
    /// Split name written to every table (`train`, `dev`, ...); also prefixes sentence ids.
    #[serde(default)]
    pub split: Option<String>,
    /// `yelp_polarity` only.
    #[serde(default)]
    pub tokenizer: Option<Tokenizer>,
    /// `yelp_polarity` only: keep reviews of at most this many whitespace-separated words.
    #[serde(default)]
    pub max_tokens: Option<usize>,
    /// Drop sentences whose tokens also occur in this file (same format, relative to
    /// `data_dir`): keeps overlapping sentences out of both sides of a split.
    #[serde(default)]
    pub exclude_in: Option<PathBuf>,
    /// Keep every `every`-th sentence starting at `offset` (after `exclude_in`), to cut one
    /// file into parts.
    #[serde(default)]
    pub sample: Option<Sample>,
}

/// Every `every`-th sentence from position `offset` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub every: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    SstTrees,
    YelpPolarity,
    TokenJsonl,
}

impl InputConfig {
    /// The reader to use, rejecting options that do not belong to the format.
    pub fn format(&self, key: &str) -> Result<Format, ConfigError> {
        if let Some(sample) = self.sample
            && (sample.every == 0 || sample.offset >= sample.every)
        {
            return Err(ConfigError::Invalid {
                key: format!("{key}.sample"),
                message: "needs every >= 1 and offset < every".into(),
            });
        }
        let yelp_only = |option: &str| ConfigError::Invalid {
            key: format!("{key}.{option}"),
            message: "only for format yelp_polarity".into(),
        };
        match self.format {
            InputFormat::YelpPolarity => Ok(Format::YelpPolarity(YelpOptions {
                tokenizer: self.tokenizer.unwrap_or_default(),
                max_tokens: self.max_tokens,
            })),
            other => {
                if self.tokenizer.is_some() {
                    return Err(yelp_only("tokenizer"));
                }
                if self.max_tokens.is_some() {
                    return Err(yelp_only("max_tokens"));
                }
                Ok(if other == InputFormat::SstTrees {
                    Format::SstTrees
                } else {
                    Format::TokenJsonl
                })
            }
        }
    }
}

/// A trained classifier: PyTorch-layout safetensors weights and their vocabulary.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub weights: PathBuf,
    pub vocab: PathBuf,
}

/// A pipeline file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {key}{message}{snippet}")]
    Yaml {
        path: PathBuf,
        line: u64,
        column: u64,
        /// "`key`: " when the error is about a key, else empty.
        key: String,
        message: String,
        /// The lines around the error, for the terminal.
        snippet: String,
    },
    #[error("{path}: {message}")]
    Document { path: PathBuf, message: String },
    #[error("--set {assignment}: {message}")]
    Override { assignment: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("{origin}: {key}: no such file: {path}")]
    MissingFile {
        /// `file:line:column`, or the `--set` assignment that gave the path.
        origin: String,
        key: String,
        path: PathBuf,
    },
}

/// Where the values of a pipeline file came from: a line of the file or a `--set` override.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    file: PathBuf,
    /// Key path (`inputs.sst_train.path`, stages by name) → line and column of its value.
    locations: HashMap<String, (u64, u64)>,
    /// Each override's key path (stages by name) and its assignment.
    overrides: Vec<(Vec<String>, String)>,
}

impl Origins {
    /// `file:line:column` of the value at `key`, or `--set <assignment>` when an override set it
    /// (or one of the mappings that hold it); the file alone when the key is not written in it.
    pub fn of(&self, key: &str) -> String {
        let segments: Vec<&str> = key.split('.').collect();
        if let Some((_, assignment)) = self.overrides.iter().rev().find(|(path, _)| {
            path.len() <= segments.len() && path.iter().zip(&segments).all(|(a, b)| a == b)
        }) {
            return format!("--set {assignment}");
        }
        match self.locations.get(key) {
            Some((line, column)) => format!("{}:{line}:{column}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }

    /// `stages` are the stages' names, in order, for overrides that address stages by index.
    fn read(file: &Path, text: &str, overrides: &[String], stages: &[&str]) -> Self {
        let mut locations = HashMap::new();
        // The file parsed already as a pipeline, so this parse succeeds; without it, messages
        // only lose their line numbers.
        if let Ok(root) = serde_saphyr::from_str::<Spanned<YamlNode>>(text) {
            root.value.locate("", &mut locations);
        }
        let overrides = overrides
            .iter()
            .map(|assignment| {
                let key = assignment.split_once('=').map_or("", |(key, _)| key);
                let mut path: Vec<String> = key.split('.').map(str::to_string).collect();
                if path.first().is_some_and(|s| s == "stages")
                    && let Some(stage) = path
                        .get(1)
                        .and_then(|s| s.parse::<usize>().ok())
                        .and_then(|index| stages.get(index))
                {
                    path[1] = stage.to_string();
                }
                (path, assignment.clone())
            })
            .collect();
        Self {
            file: file.to_path_buf(),
            locations,
            overrides,
        }
    }
}

/// A YAML document with the location of every value, to find the line of a key path.
enum YamlNode {
    Mapping(Vec<(String, Spanned<YamlNode>)>),
    Sequence(Vec<Spanned<YamlNode>>),
    Text(String),
    OtherScalar,
}

impl YamlNode {
    /// Records the location of every value under `prefix`; list items are named by their `name`
    /// (as stages are addressed) or else by their index.
    fn locate(&self, prefix: &str, out: &mut HashMap<String, (u64, u64)>) {
        let mut visit = |segment: &str, child: &Spanned<YamlNode>| {
            let key = if prefix.is_empty() {
                segment.to_string()
            } else {
                format!("{prefix}.{segment}")
            };
            let at = &child.referenced;
            out.insert(key.clone(), (at.line(), at.column()));
            child.value.locate(&key, out);
        };
        match self {
            YamlNode::Mapping(entries) => {
                for (key, value) in entries {
                    visit(key, value);
                }
            }
            YamlNode::Sequence(items) => {
                for (index, item) in items.iter().enumerate() {
                    let name = match &item.value {
                        YamlNode::Mapping(entries) => {
                            entries
                                .iter()
                                .find_map(|(k, v)| match (k.as_str(), &v.value) {
                                    ("name", YamlNode::Text(name)) => Some(name.clone()),
                                    _ => None,
                                })
                        }
                        _ => None,
                    };
                    visit(&name.unwrap_or_else(|| index.to_string()), item);
                }
            }
            YamlNode::Text(_) | YamlNode::OtherScalar => {}
        }
    }
}

impl<'de> Deserialize<'de> for YamlNode {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = YamlNode;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YamlNode, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(YamlNode::Mapping(entries))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YamlNode, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(YamlNode::Sequence(items))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<YamlNode, E> {
                Ok(YamlNode::Text(text.to_string()))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<YamlNode, E> {
                Ok(YamlNode::OtherScalar)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<YamlNode, E> {
                Ok(YamlNode::OtherScalar)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<YamlNode, E> {
                Ok(YamlNode::OtherScalar)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<YamlNode, E> {
                Ok(YamlNode::OtherScalar)
            }

            fn visit_unit<E: de::Error>(self) -> Result<YamlNode, E> {
                Ok(YamlNode::OtherScalar)
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// A stage as the pipeline file names it.
pub trait NamedStage {
    fn name(&self) -> &str;
}

impl<S: DeserializeOwned + NamedStage> PipelineConfig<S> {
    /// Reads a pipeline file, applies `--set` overrides (`key.path=value`, value in YAML) and
    /// resolves relative paths.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(path, &bytes, overrides)
    }

    /// [`load`](Self::load) from the file's bytes; `path` names it in errors and relative paths
    /// resolve against its folder.
    pub fn from_yaml(path: &Path, bytes: &[u8], overrides: &[String]) -> Result<Self, ConfigError> {
        let bytes = bytes.strip_prefix(crate::data::BOM).unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "invalid UTF-8 on line {}",
                    1 + bytes[..e.valid_up_to()]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count()
                ),
            ),
        })?;
        let mut config: PipelineConfig<S> =
            serde_saphyr::from_str(text).map_err(|e| yaml_error(path, text, &e))?;
        let mut tree: serde_json::Value =
            serde_saphyr::from_str(text).map_err(|e| yaml_error(path, text, &e))?;
        if !overrides.is_empty() {
            for assignment in overrides {
                apply_override(&mut tree, assignment)?;
            }
            config = serde_json::from_value(tree.clone()).map_err(|e| ConfigError::Override {
                assignment: overrides.join(" "),
                message: e.to_string(),
            })?;
        }
        config.tree = tree;
        config.overrides = overrides.to_vec();
        let names: Vec<&str> = config.stages.iter().map(NamedStage::name).collect();
        config.origins = Origins::read(path, text, overrides, &names);
        config.resolve_paths(path.parent().unwrap_or(Path::new("")));
        Ok(config)
    }
}

impl<S> PipelineConfig<S> {
    /// The error for a file named at `key` that does not exist, naming where the path was given.
    pub fn missing_file(&self, key: &str, path: &Path) -> ConfigError {
        ConfigError::MissingFile {
            origin: self.origins.of(key),
            key: key.to_string(),
            path: path.to_path_buf(),
        }
    }

    fn resolve_paths(&mut self, folder: &Path) {
        self.folder = std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf());
        let against = |base: &Path, p: &mut PathBuf| {
            if p.is_relative() {
                *p = lexically_normal(&base.join(&*p));
            }
        };
        against(folder, &mut self.data_dir);
        against(folder, &mut self.output_dir);
        if let Some(cache) = &mut self.model_cache {
            against(folder, cache);
        }
        for input in self.inputs.values_mut() {
            against(&self.data_dir, &mut input.path);
            if let Some(exclude) = &mut input.exclude_in {
                against(&self.data_dir, exclude);
            }
        }
        for model in self.models.values_mut() {
            against(folder, &mut model.weights);
            against(folder, &mut model.vocab);
        }
    }
}

/// Drops `.` and folds `dir/..` without touching the file system, so that paths print the way
/// a reader expects (`pipelines/../data` → `data`); a leading `..` stays.
pub fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Turns a YAML error into one naming the file, line, column and (when found) the key.
fn yaml_error(path: &Path, text: &str, error: &serde_saphyr::Error) -> ConfigError {
    let plain = error.without_snippet().to_string();
    let message = plain
        .strip_prefix("error: ")
        .unwrap_or(&plain)
        .split_once(": ")
        .filter(|(position, _)| position.starts_with("line "))
        .map_or(plain.as_str(), |(_, rest)| rest);
    // The position is in the prefix already.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message, |(text, _)| text)
        .to_string();
    let Some(location) = error.location() else {
        return ConfigError::Document {
            path: path.to_path_buf(),
            message,
        };
    };
    let line = location.line();
    let key = if message.contains("unknown field") {
        String::new()
    } else {
        usize::try_from(line)
            .ok()
            .and_then(|l| text.lines().nth(l.saturating_sub(1)))
            .and_then(key_of_line)
            .map_or_else(String::new, |k| format!("`{k}`: "))
    };
    let source_name = path.display().to_string();
    let rendered = error.render_with_options(serde_saphyr::render_options! {
        source_name: Some(source_name.as_str()),
    });
    let snippet = rendered
        .split_once('\n')
        .map_or_else(String::new, |(_, rest)| format!("\n{rest}"));
    ConfigError::Yaml {
        path: path.to_path_buf(),
        line,
        column: location.column(),
        key,
        message,
        snippet,
    }
}

/// The mapping key a YAML line starts with (`  - kind: x` → `kind`).
fn key_of_line(line: &str) -> Option<&str> {
    let trimmed = line.trim_start().trim_start_matches("- ").trim_start();
    let (key, _) = trimmed.split_once(':')?;
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then_some(key)
}

/// Applies `a.b.c=value` to a parsed document; list items are addressed by index or by `name`.
fn apply_override(tree: &mut serde_json::Value, assignment: &str) -> Result<(), ConfigError> {
    let fail = |message: String| ConfigError::Override {
        assignment: assignment.to_string(),
        message,
    };
    let (key_path, value) = assignment
        .split_once('=')
        .ok_or_else(|| fail("expected key.path=value".into()))?;
    let value: serde_json::Value = if value.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_saphyr::from_str(value).map_err(|e| fail(format!("value: {e}")))?
    };
    let segments: Vec<&str> = key_path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(fail("empty key in the path".into()));
    }
    let mut node = tree;
    for (depth, segment) in segments.iter().enumerate() {
        let last = depth + 1 == segments.len();
        node = match node {
            serde_json::Value::Object(map) => {
                if last {
                    map.insert(segment.to_string(), value);
                    return Ok(());
                }
                map.entry(segment.to_string())
                    .or_insert_with(|| serde_json::Value::Object(Default::default()))
            }
            serde_json::Value::Array(items) => {
                let position = match segment.parse::<usize>() {
                    Ok(index) if index < items.len() => index,
                    _ => items
                        .iter()
                        .position(|item| item.get("name").and_then(|n| n.as_str()) == Some(segment))
                        .ok_or_else(|| {
                            fail(format!(
                                "`{}` has no item named or numbered `{segment}`",
                                segments[..depth].join(".")
                            ))
                        })?,
                };
                if last {
                    items[position] = value;
                    return Ok(());
                }
                &mut items[position]
            }
            _ => {
                return Err(fail(format!(
                    "`{}` is not a mapping or a list",
                    segments[..depth].join(".")
                )));
            }
        };
    }
    unreachable!("the loop returns at the last segment")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_paths_lexically() {
        assert_eq!(
            lexically_normal(Path::new("pipelines/../data/./sst")),
            Path::new("data/sst")
        );
        assert_eq!(
            lexically_normal(Path::new("p/../../shared/x")),
            Path::new("../shared/x")
        );
        assert_eq!(lexically_normal(Path::new("/a/b/../c")), Path::new("/a/c"));
        assert_eq!(lexically_normal(Path::new("a/..")), Path::new("."));
    }

    #[test]
    fn finds_the_key_of_a_line() {
        assert_eq!(key_of_line("  - kind: cd_score"), Some("kind"));
        assert_eq!(key_of_line("    max_len: three"), Some("max_len"));
        assert_eq!(key_of_line("  - [a, b]"), None);
    }

    #[test]
    fn origins_name_the_line_or_the_override() {
        let text = "name: x\ninputs:\n  a: {format: sst_trees, path: sst/train.txt}\n  b:\n    path: b.txt\nstages:\n  - name: s\n    glove: g.txt\n  - {name: t, glove: h.txt}\n";
        let origins = Origins::read(Path::new("p.yaml"), text, &[], &[]);
        assert_eq!(origins.of("inputs.a.path"), "p.yaml:3:32");
        assert_eq!(origins.of("inputs.b.path"), "p.yaml:5:11");
        assert_eq!(origins.of("stages.s.glove"), "p.yaml:8:12");
        assert_eq!(origins.of("stages.t.glove"), "p.yaml:9:22");
        assert_eq!(origins.of("models.m.weights"), "p.yaml");
        let overrides = ["inputs.b={path: c.txt}".to_string()];
        let origins = Origins::read(Path::new("p.yaml"), text, &overrides, &[]);
        assert_eq!(origins.of("inputs.b.path"), "--set inputs.b={path: c.txt}");
        assert_eq!(origins.of("inputs.a.path"), "p.yaml:3:32");
    }

    #[test]
    fn overrides_address_mappings_and_named_list_items() {
        let mut tree = serde_json::json!({
            "models": {"m": {"weights": "a"}},
            "stages": [{"name": "s", "kind": "x", "n": 1}, {"name": "t"}]
        });
        apply_override(&mut tree, "models.m.weights=/b").unwrap();
        apply_override(&mut tree, "stages.s.n=5").unwrap();
        apply_override(&mut tree, "stages.1.words=[not, never]").unwrap();
        assert_eq!(tree["models"]["m"]["weights"], "/b");
        assert_eq!(tree["stages"][0]["n"], 5);
        assert_eq!(
            tree["stages"][1]["words"],
            serde_json::json!(["not", "never"])
        );
        let error = apply_override(&mut tree, "stages.nope.n=1").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("no item named or numbered `nope`")
        );
        let error = apply_override(&mut tree, "models.m.weights.x=1").unwrap_err();
        assert!(error.to_string().contains("is not a mapping"));
        assert!(apply_override(&mut tree, "novalue").is_err());
    }
}
