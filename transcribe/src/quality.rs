//! How close a transcript is to what was said: the word error rate the tests and the
//! benchmarks judge transcriptions by (the quantised models included).

/// Lower-case alphanumeric words of `text`: punctuation dropped, hyphens separate words
/// ("ill-disposed" is a reference's "ill disposed").
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '-')
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate: word-level edit distance over the reference length.
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (words(reference), words(hypothesis));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(rw != hw))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[h.len()] as f64 / r.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_error_rate_counts_edits_over_the_reference() {
        assert_eq!(wer("the cat sat", "the cat sat"), 0.0);
        assert_eq!(wer("The cat, sat.", "the cat sat"), 0.0);
        assert!((wer("the cat sat", "the bat sat") - 1.0 / 3.0).abs() < 1e-12);
        assert!((wer("the cat sat", "the cat") - 1.0 / 3.0).abs() < 1e-12);
        assert!((wer("the cat", "the cat sat down") - 1.0).abs() < 1e-12);
        assert_eq!(
            words("ill-disposed Mr. Smith"),
            ["ill", "disposed", "mr", "smith"]
        );
    }
}
