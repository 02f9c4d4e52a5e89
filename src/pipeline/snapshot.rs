//! Artefacts kept on disk with a completed stage, so that a rerun (or the reduce of a sharded run)
//! can hand them to later stages without recomputing the stage: exact values (f64 scores, f32 β),
//! sentences by id rather than by position, so that the artefacts of several shards merge into
//! one over the whole input.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    Float32Builder, Float64Builder, ListBuilder, StringBuilder, UInt32Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, UInt32Type};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Artefact, ArtefactKind, BetaIndex, Coefficients, LoadedModel, MethodRef, ScoreIndex};
use crate::attribution::Span;
use crate::data::Corpus;
use crate::io::{OutputError, write_table};

/// Why a kept artefact cannot be read back; the stage is then recomputed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct SnapshotError {
    pub path: PathBuf,
    pub message: String,
}

fn file_of(folder: &Path, kind: ArtefactKind) -> PathBuf {
    let stem = match kind {
        ArtefactKind::Table => unreachable!("a table artefact is the stage's own table"),
        ArtefactKind::Model => return folder.join("artefact-model.json"),
        ArtefactKind::Scores => "scores",
        ArtefactKind::Phrases => "phrases",
        ArtefactKind::Coefficients => "coefficients",
        ArtefactKind::Betas => "betas",
    };
    folder.join(format!("artefact-{stem}.parquet"))
}

fn span_fields() -> Vec<Field> {
    vec![
        Field::new("sentence_id", DataType::Utf8, false),
        Field::new("span_start", DataType::UInt32, false),
        Field::new("span_end", DataType::UInt32, false),
    ]
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

/// Rows keyed by sentence id and span, sorted, with one further column.
struct SpanRows {
    ids: StringBuilder,
    starts: UInt32Builder,
    ends: UInt32Builder,
}

impl SpanRows {
    fn new() -> Self {
        Self {
            ids: StringBuilder::new(),
            starts: UInt32Builder::new(),
            ends: UInt32Builder::new(),
        }
    }

    fn push(&mut self, id: &str, span: Span) {
        self.ids.append_value(id);
        self.starts
            .append_value(u32::try_from(span.start).expect("spans fit u32"));
        self.ends
            .append_value(u32::try_from(span.end).expect("spans fit u32"));
    }

    fn finish(mut self, value: (Field, ArrayRef)) -> Result<RecordBatch, OutputError> {
        let mut fields = span_fields();
        fields.push(value.0);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.ids.finish()),
            Arc::new(self.starts.finish()),
            Arc::new(self.ends.finish()),
            value.1,
        ];
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|source| {
            OutputError::Arrow {
                table: "artefact".into(),
                source,
            }
        })
    }
}

fn sorted_keys<V>(map: &HashMap<(usize, Span), V>) -> Vec<(usize, Span)> {
    let mut keys: Vec<(usize, Span)> = map.keys().copied().collect();
    keys.sort_unstable();
    keys
}

/// Writes what a stage provides of `artefact` into `folder`; `corpus` is the input the artefact
/// is about, for those keyed by sentence.
pub fn save(
    artefact: &Artefact,
    folder: &Path,
    corpus: Option<&Corpus>,
) -> Result<(), OutputError> {
    let id =
        |k: usize| -> &str { &corpus.expect("planned: artefact has an input").sentences[k].id };
    let (batch, metadata): (RecordBatch, Vec<(&str, String)>) = match artefact {
        Artefact::Table(_) => return Ok(()),
        Artefact::Model(loaded) => {
            // Absolute, so that a run from another working directory finds them.
            let absolute =
                |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            let record = serde_json::json!({
                "weights": absolute(&loaded.weights),
                "vocab": absolute(loaded.vocab.path()),
            });
            let path = file_of(folder, ArtefactKind::Model);
            let pending = crate::io::PendingFile::write(&path, record.to_string().as_bytes())?;
            crate::io::publish_all(vec![pending])?;
            return Ok(());
        }
        Artefact::Scores(index) => {
            let mut rows = SpanRows::new();
            let mut values = ListBuilder::new(Float64Builder::new());
            for key @ (k, span) in sorted_keys(&index.scores) {
                rows.push(id(k), span);
                values.append_value(index.scores[&key].iter().map(|&v| Some(v)));
            }
            let methods = serde_json::to_string(&index.methods).expect("methods serialise");
            let field = Field::new("scores", list_of(DataType::Float64), false);
            (
                rows.finish((field, Arc::new(values.finish())))?,
                vec![("methods", methods)],
            )
        }
        Artefact::Betas(betas) => {
            let mut rows = SpanRows::new();
            let mut values = ListBuilder::new(Float32Builder::new());
            for key @ (k, span) in sorted_keys(&betas.betas) {
                rows.push(id(k), span);
                values.append_value(betas.betas[&key].iter().map(|&v| Some(v)));
            }
            let field = Field::new("beta", list_of(DataType::Float32), false);
            (
                rows.finish((field, Arc::new(values.finish())))?,
                vec![("variant", betas.variant.clone())],
            )
        }
        Artefact::Phrases(phrases) => {
            let mut rows = SpanRows::new();
            let mut sentence = UInt32Builder::new();
            for (k, spans) in phrases.iter().enumerate() {
                for &span in spans {
                    rows.push(id(k), span);
                    sentence.append_value(u32::try_from(k).expect("positions fit u32"));
                }
            }
            // The position only orders the rows; sentences are matched by id when read back.
            let field = Field::new("position", DataType::UInt32, false);
            (
                rows.finish((field, Arc::new(sentence.finish())))?,
                Vec::new(),
            )
        }
        Artefact::Coefficients(coefficients) => {
            let mut terms: Vec<(&String, &f64)> = coefficients.terms.iter().collect();
            terms.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let mut names = StringBuilder::new();
            let mut values = Float64Builder::new();
            for (term, value) in terms {
                names.append_value(term);
                values.append_value(*value);
            }
            let schema = Schema::new(vec![
                Field::new("term", DataType::Utf8, false),
                Field::new("coefficient", DataType::Float64, false),
            ]);
            let batch = RecordBatch::try_new(
                Arc::new(schema),
                vec![Arc::new(names.finish()), Arc::new(values.finish())],
            )
            .map_err(|source| OutputError::Arrow {
                table: "coefficients artefact".into(),
                source,
            })?;
            (
                batch,
                vec![
                    ("max_n", coefficients.max_n.to_string()),
                    ("counts", coefficients.counts.to_string()),
                ],
            )
        }
    };
    let path = file_of(folder, artefact.kind());
    let pending = write_table(&path, batch.schema(), &[batch], &metadata)?;
    crate::io::publish_all(vec![pending])?;
    Ok(())
}

/// Every batch of a Parquet file and its key-value metadata.
pub fn read_batches(
    path: &Path,
) -> Result<(Vec<RecordBatch>, HashMap<String, String>), SnapshotError> {
    let error = |message: String| SnapshotError {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|e| error(e.to_string()))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| error(e.to_string()))?;
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
                .collect()
        })
        .unwrap_or_default();
    let batches = builder
        .build()
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    Ok((batches, metadata))
}

/// Reads back an artefact `save` wrote (a table artefact from the stage's table `table`);
/// sentences are matched by id against `corpus`.
pub fn load(
    kind: ArtefactKind,
    folder: &Path,
    table: &Path,
    corpus: Option<&Corpus>,
) -> Result<Artefact, SnapshotError> {
    if kind == ArtefactKind::Table {
        return Ok(Artefact::Table(read_batches(table)?.0));
    }
    let path = file_of(folder, kind);
    let error = |message: String| SnapshotError {
        path: path.clone(),
        message,
    };
    if kind == ArtefactKind::Model {
        let text = std::fs::read_to_string(&path).map_err(|e| error(e.to_string()))?;
        let record: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| error(e.to_string()))?;
        let file = |key: &str| -> Result<PathBuf, SnapshotError> {
            record[key]
                .as_str()
                .map(PathBuf::from)
                .ok_or_else(|| error(format!("no `{key}`")))
        };
        let loaded = LoadedModel::load(&file("weights")?, &file("vocab")?)
            .map_err(|e| error(e.to_string()))?;
        return Ok(Artefact::Model(Box::new(loaded)));
    }
    let (batches, metadata) = read_batches(&path)?;
    let positions: HashMap<&str, usize> = corpus
        .map(|c| {
            c.sentences
                .iter()
                .enumerate()
                .map(|(k, s)| (s.id.as_str(), k))
                .collect()
        })
        .unwrap_or_default();
    let mut keyed: Vec<((usize, Span), ArrayRef)> = Vec::new();
    let mut terms = HashMap::new();
    for batch in &batches {
        if kind == ArtefactKind::Coefficients {
            let names = batch.column(0).as_string::<i32>();
            let values = batch.column(1).as_primitive::<Float64Type>();
            for row in 0..batch.num_rows() {
                terms.insert(names.value(row).to_string(), values.value(row));
            }
            continue;
        }
        let ids = batch.column(0).as_string::<i32>();
        let starts = batch.column(1).as_primitive::<UInt32Type>();
        let ends = batch.column(2).as_primitive::<UInt32Type>();
        for row in 0..batch.num_rows() {
            let id = ids.value(row);
            let k = *positions
                .get(id)
                .ok_or_else(|| error(format!("sentence `{id}` is not in the input")))?;
            let span = Span::new(starts.value(row) as usize, ends.value(row) as usize);
            keyed.push(((k, span), batch.column(3).slice(row, 1)));
        }
    }
    let meta = |key: &str| {
        metadata
            .get(key)
            .cloned()
            .ok_or_else(|| error(format!("no `{key}` metadata")))
    };
    Ok(match kind {
        ArtefactKind::Scores => {
            let methods: Vec<MethodRef> =
                serde_json::from_str(&meta("methods")?).map_err(|e| error(e.to_string()))?;
            let scores = keyed
                .into_iter()
                .map(|(key, value)| {
                    let list = value.as_list::<i32>().value(0);
                    (key, list.as_primitive::<Float64Type>().values().to_vec())
                })
                .collect();
            Artefact::Scores(ScoreIndex { methods, scores })
        }
        ArtefactKind::Betas => {
            let betas = keyed
                .into_iter()
                .map(|(key, value)| {
                    let list = value.as_list::<i32>().value(0);
                    (key, list.as_primitive::<Float32Type>().values().to_vec())
                })
                .collect();
            Artefact::Betas(BetaIndex {
                variant: meta("variant")?,
                betas,
            })
        }
        ArtefactKind::Phrases => {
            let mut phrases = vec![Vec::new(); corpus.map_or(0, |c| c.sentences.len())];
            for ((k, span), _) in keyed {
                phrases[k].push(span);
            }
            Artefact::Phrases(phrases)
        }
        ArtefactKind::Coefficients => Artefact::Coefficients(Coefficients {
            max_n: meta("max_n")?
                .parse()
                .map_err(|_| error("bad `max_n`".into()))?,
            counts: meta("counts")? == "true",
            terms,
        }),
        ArtefactKind::Table | ArtefactKind::Model => unreachable!("read above"),
    })
}

/// One artefact over the whole input from those of several shards (each already keyed by
/// positions in the whole input).
pub fn merge(kind: ArtefactKind, parts: Vec<Artefact>) -> Result<Artefact, String> {
    let mut parts = parts.into_iter();
    let mut merged = parts.next().ok_or("no shard")?;
    for part in parts {
        match (&mut merged, part) {
            (Artefact::Table(all), Artefact::Table(more)) => all.extend(more),
            (Artefact::Scores(all), Artefact::Scores(more)) => {
                if all.methods != more.methods {
                    return Err("the shards scored different methods".into());
                }
                all.scores.extend(more.scores);
            }
            (Artefact::Betas(all), Artefact::Betas(more)) => all.betas.extend(more.betas),
            (Artefact::Phrases(all), Artefact::Phrases(more)) => {
                for (spans, extra) in all.iter_mut().zip(more) {
                    spans.extend(extra);
                }
            }
            _ => return Err(format!("{kind} of several shards cannot be merged")),
        }
    }
    Ok(merged)
}
