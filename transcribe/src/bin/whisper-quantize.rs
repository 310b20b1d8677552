//! `whisper-quantize IN OUT TYPE`: writes a quantised copy of a whisper.cpp f16/f32 ggml model
//! (TYPE: q8_0, q5_1, q5_0 or q4_0), as whisper.cpp's `examples/quantize` does.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use gt_transcribe::quantize::{QuantType, quantize_model};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, kind] = args.as_slice() else {
        let types = QuantType::ALL.map(QuantType::name).join("|");
        eprintln!("usage: whisper-quantize IN OUT {types}");
        return ExitCode::from(2);
    };
    let kind: QuantType = match kind.parse() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("whisper-quantize: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    match quantize_model(&PathBuf::from(input), &PathBuf::from(output), kind) {
        Ok(report) => {
            println!(
                "{output}: {report}; {:.2} s",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("whisper-quantize: {e}");
            ExitCode::FAILURE
        }
    }
}
