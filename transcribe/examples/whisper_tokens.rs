//! Experiment: prints every text token of a 16 kHz mono WAV with its t0/t1/t_dtw (seconds).
use whisper_rs::*;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let mut p = WhisperContextParameters::default();
    p.dtw_parameters(DtwParameters {
        mode: DtwMode::ModelPreset {
            model_preset: DtwModelPreset::Base,
        },
        ..Default::default()
    });
    let ctx = WhisperContext::new_with_params(&a[1], p).unwrap();
    let bytes = std::fs::read(&a[2]).unwrap();
    let data = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
    let pcm: Vec<f32> = bytes[data..]
        .chunks_exact(2)
        .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0)
        .collect();
    let mut st = ctx.create_state().unwrap();
    let mut fp = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    fp.set_n_threads(2);
    fp.set_language(Some("en"));
    fp.set_token_timestamps(true);
    fp.set_no_context(true);
    fp.set_print_progress(false);
    fp.set_print_realtime(false);
    fp.set_print_special(false);
    fp.set_print_timestamps(false);
    if a.len() > 3 && a[3] == "nst" {
        fp.set_suppress_nst(true);
    }
    st.full(fp, &pcm).unwrap();
    let eot = ctx.token_eot();
    let off: f64 = a.get(4).map_or(0.0, |v| v.parse().unwrap());
    for seg in st.as_iter() {
        println!(
            "SEG {:.2} {:.2} {}",
            off + seg.start_timestamp() as f64 / 100.0,
            off + seg.end_timestamp() as f64 / 100.0,
            seg.to_str_lossy().unwrap()
        );
        for i in 0..seg.n_tokens() {
            let t = seg.get_token(i).unwrap();
            let d = t.token_data();
            let s = t.to_str_lossy().unwrap().to_string();
            println!(
                "TOK {} {:?} {:.2} {:.2} {:.2} {:.3}",
                d.id >= eot,
                s,
                off + d.t0 as f64 / 100.0,
                off + d.t1 as f64 / 100.0,
                if d.t_dtw < 0 {
                    -0.01
                } else {
                    off + d.t_dtw as f64 / 100.0
                },
                d.p
            );
        }
    }
}
