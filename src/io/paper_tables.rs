//! The tables of the paper's analyses beyond negation (each documented in `schemas/<table>.yaml`):
//! word-score correlations and their points, compositionality, dissenting subphrases, all
//! interactions, phrase embeddings, similar phrases, hierarchies, and the reproduction table.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::columns::{
    boolean, float32_item, float32_lists, float64, float64_or_null, int8_or_null, int32, int64,
    utf8, utf8_or_null,
};
use super::{OutputError, arrow_error};
use crate::attribution::Span;
use crate::data::Corpus;

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

fn text(name: &str) -> Field {
    field(name, DataType::Utf8, false)
}

fn text_or_null(name: &str) -> Field {
    field(name, DataType::Utf8, true)
}

fn position(name: &str) -> Field {
    field(name, DataType::Int32, false)
}

fn number(name: &str) -> Field {
    field(name, DataType::Float64, false)
}

fn number_or_null(name: &str) -> Field {
    field(name, DataType::Float64, true)
}

fn count(name: &str) -> Field {
    field(name, DataType::Int64, false)
}

/// Where a row's sentence comes from: the input, the sentence and its split.
#[derive(Debug, Clone)]
pub struct SentenceRef {
    pub dataset: String,
    pub sentence_id: String,
    pub split: Option<String>,
}

impl SentenceRef {
    /// One reference per sentence of `corpus`, in its order, for rows that index sentences by
    /// position.
    pub fn every_sentence_of(corpus: &Corpus) -> Vec<SentenceRef> {
        corpus
            .sentences
            .iter()
            .map(|s| SentenceRef {
                dataset: corpus.name.clone(),
                sentence_id: s.id.clone(),
                split: corpus.split.clone(),
            })
            .collect()
    }
}

fn sentence_fields() -> Vec<Field> {
    vec![text("dataset"), text("sentence_id"), text_or_null("split")]
}

fn sentence_columns<T>(rows: &[T], f: impl Fn(&T) -> &SentenceRef) -> Vec<ArrayRef> {
    vec![
        utf8(rows, |r| &f(r).dataset),
        utf8(rows, |r| &f(r).sentence_id),
        utf8_or_null(rows, |r| f(r).split.as_deref()),
    ]
}

/// An attribution method as rows name it: name, variant, target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MethodRef {
    pub method: String,
    pub variant: Option<String>,
    pub target: String,
    /// Whether its phrase scores carry interactions (not only sums of word scores).
    pub interactions: bool,
}

impl std::fmt::Display for MethodRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.method)?;
        if let Some(variant) = &self.variant {
            write!(f, " ({variant})")?;
        }
        write!(f, " of {}", self.target)
    }
}

fn method_fields() -> Vec<Field> {
    vec![text("method"), text_or_null("variant"), text("target")]
}

fn method_columns<T>(rows: &[T], f: impl Fn(&T) -> &MethodRef) -> Vec<ArrayRef> {
    vec![
        utf8(rows, |r| &f(r).method),
        utf8_or_null(rows, |r| f(r).variant.as_deref()),
        utf8(rows, |r| &f(r).target),
    ]
}

fn batch(
    table: &str,
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
) -> Result<RecordBatch, OutputError> {
    RecordBatch::try_new(schema, columns).map_err(arrow_error(table))
}

/// `unigram_correlations`: Pearson's r of word scores and logistic-regression coefficients.
pub fn unigram_correlations_schema() -> SchemaRef {
    let mut fields = vec![text("dataset"), text_or_null("split"), text("coefficients")];
    fields.extend(method_fields());
    fields.extend([
        text("unit"),
        count("points"),
        count("missing"),
        number_or_null("pearson_r"),
        number_or_null("ci_low"),
        number_or_null("ci_high"),
        count("resamples"),
    ]);
    Arc::new(Schema::new(fields))
}

#[derive(Debug, Clone)]
pub struct CorrelationRecord {
    pub dataset: String,
    pub split: Option<String>,
    pub coefficients: String,
    pub method: MethodRef,
    /// `token` (one point per occurrence) or `type` (one per word, its scores averaged).
    pub unit: &'static str,
    pub points: usize,
    /// Tokens (or word types) without a coefficient, left out.
    pub missing: usize,
    pub pearson_r: Option<f64>,
    pub interval: Option<(f64, f64)>,
    pub resamples: usize,
}

pub fn unigram_correlations_batch(rows: &[CorrelationRecord]) -> Result<RecordBatch, OutputError> {
    let mut columns = vec![
        utf8(rows, |r| &r.dataset),
        utf8_or_null(rows, |r| r.split.as_deref()),
        utf8(rows, |r| &r.coefficients),
    ];
    columns.extend(method_columns(rows, |r| &r.method));
    columns.extend([
        utf8(rows, |r| r.unit),
        int64(rows, |r| r.points),
        int64(rows, |r| r.missing),
        float64_or_null(rows, |r| r.pearson_r),
        float64_or_null(rows, |r| r.interval.map(|i| i.0)),
        float64_or_null(rows, |r| r.interval.map(|i| i.1)),
        int64(rows, |r| r.resamples),
    ]);
    batch(
        "unigram_correlations",
        unigram_correlations_schema(),
        columns,
    )
}

/// `word_points`: the points behind `unigram_correlations`, one per token occurrence and method.
pub fn word_points_schema() -> SchemaRef {
    let mut fields = sentence_fields();
    fields.extend([
        position("position"),
        text("token"),
        text("term"),
        number("coefficient"),
    ]);
    fields.extend(method_fields());
    fields.push(number("score"));
    Arc::new(Schema::new(fields))
}

#[derive(Debug, Clone)]
pub struct WordPointRecord<'a> {
    pub sentence: &'a SentenceRef,
    pub position: usize,
    pub token: &'a str,
    pub term: &'a str,
    pub coefficient: f64,
    pub method: &'a MethodRef,
    pub score: f64,
}

pub fn word_points_batch(rows: &[WordPointRecord<'_>]) -> Result<RecordBatch, OutputError> {
    let mut columns = sentence_columns(rows, |r| r.sentence);
    columns.extend([
        int32(rows, |r| r.position),
        utf8(rows, |r| r.token),
        utf8(rows, |r| r.term),
        float64(rows, |r| r.coefficient),
    ]);
    columns.extend(method_columns(rows, |r| r.method));
    columns.push(float64(rows, |r| r.score));
    batch("word_points", word_points_schema(), columns)
}

/// A scored span of a sentence by one method, the rows of `compositionality`.
#[derive(Debug, Clone)]
pub struct PhraseScoreRecord<'a> {
    pub sentence: &'a SentenceRef,
    pub span: Span,
    pub phrase: String,
    pub fine_label: u8,
    /// The phrase's polarity.
    pub kind: &'static str,
    pub sentence_label: Option<i64>,
    pub method: &'a MethodRef,
    pub score: f64,
}

/// `compositionality`: phrases of the opposite polarity to their sentence's, scored.
pub fn compositionality_schema() -> SchemaRef {
    let mut fields = sentence_fields();
    fields.extend([
        position("span_start"),
        position("span_end"),
        text("phrase"),
        field("fine_label", DataType::Int8, false),
        text("kind"),
        field("sentence_label", DataType::Int8, true),
    ]);
    fields.extend(method_fields());
    fields.push(number("score"));
    Arc::new(Schema::new(fields))
}

pub fn compositionality_batch(rows: &[PhraseScoreRecord<'_>]) -> Result<RecordBatch, OutputError> {
    let mut columns = sentence_columns(rows, |r| r.sentence);
    columns.extend([
        int32(rows, |r| r.span.start),
        int32(rows, |r| r.span.end),
        utf8(rows, |r| &r.phrase),
        int8_or_null(rows, |r| Some(i64::from(r.fine_label))),
        utf8(rows, |r| r.kind),
        int8_or_null(rows, |r| r.sentence_label),
    ]);
    columns.extend(method_columns(rows, |r| r.method));
    columns.push(float64(rows, |r| r.score));
    batch("compositionality", compositionality_schema(), columns)
}

/// `dissenting_subphrases`: a strongly scored phrase, a subphrase of the opposite sign, and the
/// subphrase's score by one method in its full sentence.
pub fn dissenting_subphrases_schema() -> SchemaRef {
    let mut fields = sentence_fields();
    fields.extend([
        position("phrase_start"),
        position("phrase_end"),
        text("phrase"),
        number("phrase_lr"),
        position("subphrase_start"),
        position("subphrase_end"),
        text("subphrase"),
        number("subphrase_lr"),
        text("kind"),
    ]);
    fields.extend(method_fields());
    fields.extend([
        number("subphrase_score"),
        number("phrase_score"),
        field("sentence_label", DataType::Int8, true),
    ]);
    Arc::new(Schema::new(fields))
}

#[derive(Debug, Clone)]
pub struct DissentRecord<'a> {
    pub sentence: &'a SentenceRef,
    pub phrase: Span,
    pub phrase_text: String,
    pub phrase_lr: f64,
    pub subphrase: Span,
    pub subphrase_text: String,
    pub subphrase_lr: f64,
    /// The subphrase's polarity by the linear model.
    pub kind: &'static str,
    pub method: &'a MethodRef,
    pub subphrase_score: f64,
    pub phrase_score: f64,
    pub sentence_label: Option<i64>,
}

pub fn dissenting_subphrases_batch(rows: &[DissentRecord<'_>]) -> Result<RecordBatch, OutputError> {
    let mut columns = sentence_columns(rows, |r| r.sentence);
    columns.extend([
        int32(rows, |r| r.phrase.start),
        int32(rows, |r| r.phrase.end),
        utf8(rows, |r| &r.phrase_text),
        float64(rows, |r| r.phrase_lr),
        int32(rows, |r| r.subphrase.start),
        int32(rows, |r| r.subphrase.end),
        utf8(rows, |r| &r.subphrase_text),
        float64(rows, |r| r.subphrase_lr),
        utf8(rows, |r| r.kind),
    ]);
    columns.extend(method_columns(rows, |r| r.method));
    columns.extend([
        float64(rows, |r| r.subphrase_score),
        float64(rows, |r| r.phrase_score),
        int8_or_null(rows, |r| r.sentence_label),
    ]);
    batch(
        "dissenting_subphrases",
        dissenting_subphrases_schema(),
        columns,
    )
}

/// `interactions`: score(phrase) − score(left child) − score(right child) of SST constituents, the
/// paper's reference distribution for negations.
pub fn interactions_schema() -> SchemaRef {
    let mut fields = sentence_fields();
    fields.extend([
        position("phrase_start"),
        position("split_at"),
        position("phrase_end"),
        text("phrase"),
        field("fine_label", DataType::Int8, false),
        text("kind"),
    ]);
    fields.extend(method_fields());
    fields.extend([
        number("phrase_score"),
        number("left_score"),
        number("right_score"),
        number("interaction"),
    ]);
    Arc::new(Schema::new(fields))
}

#[derive(Debug, Clone)]
pub struct InteractionsRecord<'a> {
    pub sentence: &'a SentenceRef,
    pub phrase: Span,
    /// Where the left child ends and the right begins.
    pub split_at: usize,
    pub phrase_text: String,
    pub fine_label: u8,
    pub method: &'a MethodRef,
    pub phrase_score: f64,
    pub left_score: f64,
    pub right_score: f64,
}

pub fn interactions_batch(rows: &[InteractionsRecord<'_>]) -> Result<RecordBatch, OutputError> {
    let mut columns = sentence_columns(rows, |r| r.sentence);
    columns.extend([
        int32(rows, |r| r.phrase.start),
        int32(rows, |r| r.split_at),
        int32(rows, |r| r.phrase.end),
        utf8(rows, |r| &r.phrase_text),
        int8_or_null(rows, |r| Some(i64::from(r.fine_label))),
        utf8(rows, |_| "all"),
    ]);
    columns.extend(method_columns(rows, |r| r.method));
    columns.extend([
        float64(rows, |r| r.phrase_score),
        float64(rows, |r| r.left_score),
        float64(rows, |r| r.right_score),
        float64(rows, |r| r.phrase_score - r.left_score - r.right_score),
    ]);
    batch("interactions", interactions_schema(), columns)
}

/// `phrase_embeddings`: CD's β_T of spans, by a scoring stage with `beta`.
pub fn phrase_embeddings_schema() -> SchemaRef {
    let mut fields = sentence_fields();
    fields.extend([
        position("span_start"),
        position("span_end"),
        text("phrase"),
        text("variant"),
        field("beta", DataType::List(Arc::new(float32_item())), false),
    ]);
    Arc::new(Schema::new(fields))
}

#[derive(Debug, Clone)]
pub struct EmbeddingRecord<'a> {
    pub sentence: &'a SentenceRef,
    pub span: Span,
    pub phrase: String,
    pub variant: &'a str,
    pub beta: &'a [f32],
}

pub fn phrase_embeddings_batch(rows: &[EmbeddingRecord<'_>]) -> Result<RecordBatch, OutputError> {
    let mut columns = sentence_columns(rows, |r| r.sentence);
    columns.extend([
        int32(rows, |r| r.span.start),
        int32(rows, |r| r.span.end),
        utf8(rows, |r| &r.phrase),
        utf8(rows, |r| r.variant),
        float32_lists(rows, |r| r.beta),
    ]);
    batch("phrase_embeddings", phrase_embeddings_schema(), columns)
}

/// `similar_phrases`: each query's nearest phrases by the cosine of averaged β.
pub fn similar_phrases_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text("dataset"),
        text("variant"),
        text("category"),
        text("query"),
        count("query_occurrences"),
        position("rank"),
        text("neighbour"),
        count("neighbour_occurrences"),
        number("similarity"),
    ]))
}

#[derive(Debug, Clone)]
pub struct SimilarRecord {
    pub dataset: String,
    pub variant: String,
    pub category: String,
    pub query: String,
    pub query_occurrences: usize,
    pub rank: usize,
    pub neighbour: String,
    pub neighbour_occurrences: usize,
    pub similarity: f64,
}

pub fn similar_phrases_batch(rows: &[SimilarRecord]) -> Result<RecordBatch, OutputError> {
    let columns = vec![
        utf8(rows, |r| &r.dataset),
        utf8(rows, |r| &r.variant),
        utf8(rows, |r| &r.category),
        utf8(rows, |r| &r.query),
        int64(rows, |r| r.query_occurrences),
        int32(rows, |r| r.rank),
        utf8(rows, |r| &r.neighbour),
        int64(rows, |r| r.neighbour_occurrences),
        float64(rows, |r| r.similarity),
    ];
    batch("similar_phrases", similar_phrases_schema(), columns)
}

/// `hierarchy`: the levels of ACD's agglomeration, each a partition of its sentence.
pub fn hierarchy_schema() -> SchemaRef {
    let mut fields = sentence_fields();
    fields.extend([
        position("level"),
        position("span_start"),
        position("span_end"),
        text("phrase"),
        field("component", DataType::Boolean, false),
        number("score"),
    ]);
    fields.extend(method_fields());
    Arc::new(Schema::new(fields))
}

#[derive(Debug, Clone)]
pub struct HierarchyRecord<'a> {
    pub sentence: &'a SentenceRef,
    pub level: usize,
    pub span: Span,
    pub phrase: String,
    pub component: bool,
    pub score: f64,
    pub method: &'a MethodRef,
}

pub fn hierarchy_batch(rows: &[HierarchyRecord<'_>]) -> Result<RecordBatch, OutputError> {
    let mut columns = sentence_columns(rows, |r| r.sentence);
    columns.extend([
        int32(rows, |r| r.level),
        int32(rows, |r| r.span.start),
        int32(rows, |r| r.span.end),
        utf8(rows, |r| &r.phrase),
        boolean(rows, |r| r.component),
        float64(rows, |r| r.score),
    ]);
    columns.extend(method_columns(rows, |r| r.method));
    batch("hierarchy", hierarchy_schema(), columns)
}

/// `reproduction`: every number the paper reports, ours beside it.
pub fn reproduction_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text("analysis"),
        text("dataset"),
        text("method"),
        text_or_null("variant"),
        text("metric"),
        number_or_null("ours"),
        number_or_null("paper"),
        number_or_null("ci_low"),
        number_or_null("ci_high"),
        text("source"),
    ]))
}

#[derive(Debug, Clone)]
pub struct ReproductionRecord {
    pub analysis: String,
    pub dataset: String,
    pub method: String,
    pub variant: Option<String>,
    pub metric: String,
    pub ours: Option<f64>,
    pub paper: Option<f64>,
    pub interval: Option<(f64, f64)>,
    /// The stage (table) the number comes from.
    pub source: String,
}

pub fn reproduction_batch(rows: &[ReproductionRecord]) -> Result<RecordBatch, OutputError> {
    let columns = vec![
        utf8(rows, |r| &r.analysis),
        utf8(rows, |r| &r.dataset),
        utf8(rows, |r| &r.method),
        utf8_or_null(rows, |r| r.variant.as_deref()),
        utf8(rows, |r| &r.metric),
        float64_or_null(rows, |r| r.ours),
        float64_or_null(rows, |r| r.paper),
        float64_or_null(rows, |r| r.interval.map(|i| i.0)),
        float64_or_null(rows, |r| r.interval.map(|i| i.1)),
        utf8(rows, |r| &r.source),
    ];
    batch("reproduction", reproduction_schema(), columns)
}
