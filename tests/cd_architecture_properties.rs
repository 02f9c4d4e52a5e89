//! CD of random stacked, bidirectional LSTMs and GRUs: the batched engine equals the one-span
//! reference (which propagates β and γ apart, so its completeness is a real check), and CD is
//! complete. Thread-count independence of every method and architecture is in
//! `attribution_properties.rs`.

use cd_pipeline::attribution::cd::decompose_one_span_rnn;
use cd_pipeline::attribution::{Convention, SpanSet, StackedDecomposition};
use cd_pipeline::model::{Architecture, CellKind, RnnClassifier};
use proptest::prelude::*;

fn architecture() -> impl Strategy<Value = Architecture> {
    (prop::bool::ANY, 1usize..4, prop::bool::ANY).prop_map(|(gru, layers, bidirectional)| {
        Architecture {
            cell: if gru { CellKind::Gru } else { CellKind::Lstm },
            layers,
            bidirectional,
        }
    })
}

fn convention() -> impl Strategy<Value = Convention> {
    prop::sample::select(Convention::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Every span of a random sentence: batched f64 equals one-span f64, batched f32 is within
    /// f32 rounding of it, and both are complete.
    #[test]
    fn batched_equals_one_span_and_both_are_complete(
        architecture in architecture(),
        (vocab, embedding, hidden, classes, seed) in (2usize..30, 1usize..9, 1usize..14, 2usize..5, any::<u64>()),
        len in 1usize..11,
        convention in convention(),
    ) {
        let m64 = RnnClassifier::<f64>::seeded_random(architecture, vocab, embedding, hidden, classes, seed);
        let m32: RnnClassifier<f32> = m64.cast();
        let ids: Vec<usize> = (0..len).map(|t| (seed as usize / 7 + t * 11) % vocab).collect();
        let spans = SpanSet::All.spans(len);
        let trace = m64.forward(&ids).unwrap();
        let batched = StackedDecomposition::new(&m64, convention).with_beta().decompose(&trace, &spans);
        let trace32 = m32.forward(&ids).unwrap();
        let batched32 = StackedDecomposition::new(&m32, convention).decompose(&trace32, &spans);
        for ((got, got32), &span) in batched.iter().zip(&batched32).zip(&spans) {
            let one = decompose_one_span_rnn(&m64, &ids, &trace.logits, span, convention).unwrap();
            prop_assert_eq!(got.span, span);
            let error = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
            let e64 = error(&got.rel, &one.rel).max(error(&got.irrel, &one.irrel));
            prop_assert!(e64 <= 1e-10, "{architecture} {convention} {span:?}: batched vs one-span {e64}");
            let beta: Vec<f64> = got.beta.as_ref().unwrap().iter().map(|&v| f64::from(v)).collect();
            let one_beta: Vec<f64> = one.beta.as_ref().unwrap().iter().map(|&v| f64::from(v)).collect();
            prop_assert!(error(&beta, &one_beta) <= 1e-6, "{architecture} {span:?}: β");
            let e32 = error(&got32.rel, &one.rel).max(error(&got32.irrel, &one.irrel));
            prop_assert!(e32 <= 1e-5, "{architecture} {convention} {span:?}: f32 vs one-span f64 {e32}");
            prop_assert!(one.residual <= 1e-12, "{architecture}: one-span residual {}", one.residual);
            prop_assert!(got.residual <= 1e-12, "{architecture}: batched residual {}", got.residual);
            if convention == Convention::Acd && span.len() == len {
                prop_assert!(one.irrel.iter().all(|v| v.abs() <= 1e-12), "{architecture}: acd whole sentence γ {:?}", one.irrel);
            }
        }
    }
}
