//! Similar phrases (paper §4.6, Table 3; spec §4(e)): CD's β_T as a phrase embedding, averaged over
//! a phrase's occurrences, and each query's nearest phrases by cosine similarity.

use std::collections::BTreeMap;

/// Each phrase's average embedding (in f64) and its number of occurrences.
pub fn average_embeddings<'a>(
    occurrences: impl IntoIterator<Item = (String, &'a [f32])>,
) -> BTreeMap<String, (Vec<f64>, usize)> {
    let mut sums: BTreeMap<String, (Vec<f64>, usize)> = BTreeMap::new();
    for (phrase, embedding) in occurrences {
        let entry = sums
            .entry(phrase)
            .or_insert_with(|| (vec![0.0; embedding.len()], 0));
        for (s, &v) in entry.0.iter_mut().zip(embedding) {
            *s += f64::from(v);
        }
        entry.1 += 1;
    }
    for (sum, count) in sums.values_mut() {
        for s in sum.iter_mut() {
            *s /= *count as f64;
        }
    }
    sums
}

/// cos(a, b); 0 when either is zero.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms =
        a.iter().map(|x| x * x).sum::<f64>().sqrt() * b.iter().map(|y| y * y).sum::<f64>().sqrt();
    if norms > 0.0 { dot / norms } else { 0.0 }
}

/// The `k` candidates most similar to `query` (itself left out), most similar first; ties by
/// phrase, so the order is the same on every run.
pub fn nearest<'a>(
    query: &str,
    embedding: &[f64],
    candidates: impl IntoIterator<Item = (&'a str, &'a [f64])>,
    k: usize,
) -> Vec<(&'a str, f64)> {
    let mut scored: Vec<(&str, f64)> = candidates
        .into_iter()
        .filter(|(phrase, _)| *phrase != query)
        .map(|(phrase, other)| (phrase, cosine(embedding, other)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    scored.truncate(k);
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_and_neighbours() {
        let occurrences: Vec<(String, Vec<f32>)> = vec![
            ("not bad".into(), vec![1.0, 0.0]),
            ("not bad".into(), vec![0.0, 1.0]),
            ("good".into(), vec![2.0, 2.0]),
            ("bad".into(), vec![-1.0, 0.2]),
        ];
        let averages =
            average_embeddings(occurrences.iter().map(|(p, e)| (p.clone(), e.as_slice())));
        assert_eq!(averages["not bad"], (vec![0.5, 0.5], 2));
        assert!((cosine(&[1.0, 0.0], &[0.0, 3.0])).abs() < 1e-15);
        assert!((cosine(&[1.0, 1.0], &[2.0, 2.0]) - 1.0).abs() < 1e-15);
        let candidates: Vec<(&str, &[f64])> = averages
            .iter()
            .map(|(p, (e, _))| (p.as_str(), e.as_slice()))
            .collect();
        let found = nearest("not bad", &averages["not bad"].0, candidates, 2);
        assert_eq!(found[0].0, "good");
        assert!((found[0].1 - 1.0).abs() < 1e-12);
        assert_eq!(found[1].0, "bad");
    }
}
