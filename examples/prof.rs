use cd_pipeline::attribution::{
    Attribution, ContextualDecomposition, Convention, SpanSet, attribute_corpus,
};
use cd_pipeline::model::LstmClassifier;
fn main() {
    let model = LstmClassifier::<f32>::seeded_random(320, 50, 168, 2, 2024);
    let sentences: Vec<Vec<usize>> = (0..100)
        .map(|k| (0..20).map(|t| 2 + (k * 31 + t * 17) % 300).collect())
        .collect();
    let cd = ContextualDecomposition::new(&model, Convention::Paper);
    let methods: [&dyn Attribution; 1] = [&cd];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let start = std::time::Instant::now();
    for _ in 0..10 {
        pool.install(|| {
            attribute_corpus(&methods, &sentences, |_, ids| SpanSet::All.spans(ids.len())).unwrap()
        });
    }
    let el = start.elapsed().as_secs_f64();
    println!("{:.0} spans/s", 210.0 * 1000.0 / el);
}
