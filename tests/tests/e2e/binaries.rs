//! Each binary links only the native libraries it uses: whisper.cpp (and its BLAS and C++
//! runtime) only in worker-gpu, FFmpeg only in worker-cpu, neither in the API or the CLI. Read
//! from the built executables themselves (their dynamic section and symbol table).

use std::path::PathBuf;
use std::process::Command;

fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(path.is_file(), "{} not built", path.display());
    path
}

/// What `tool args… binary` prints.
fn inspect(tool: &str, arg: &str, name: &str) -> String {
    let out = Command::new(tool)
        .arg(arg)
        .arg(binary(name))
        .output()
        .unwrap();
    assert!(out.status.success(), "{tool} {name}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The shared libraries a binary names as NEEDED.
fn needed(name: &str) -> Vec<String> {
    inspect("readelf", "-d", name)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_string()))
        .collect()
}

/// How many symbols defined in the binary come from whisper.cpp / ggml.
fn whisper_symbols(name: &str) -> usize {
    inspect("nm", "--defined-only", name)
        .lines()
        .filter(|l| l.contains("whisper_") || l.contains("ggml_"))
        .count()
}

#[test]
fn each_binary_links_only_what_it_uses() {
    let ffmpeg = |libs: &[String]| {
        libs.iter()
            .any(|l| l.starts_with("libav") || l.starts_with("libsw"))
    };
    let whisper_runtime = |libs: &[String]| {
        libs.iter().any(|l| {
            l.starts_with("libopenblas") || l.starts_with("libstdc++") || l.starts_with("libgomp")
        })
    };
    for name in ["gt-api", "gt"] {
        let libs = needed(name);
        assert!(
            !ffmpeg(&libs) && !whisper_runtime(&libs),
            "{name}: {libs:?}"
        );
        assert_eq!(whisper_symbols(name), 0, "{name} contains whisper.cpp");
    }
    let cpu = needed("worker-cpu");
    assert!(ffmpeg(&cpu), "worker-cpu decodes with FFmpeg: {cpu:?}");
    assert!(!whisper_runtime(&cpu), "worker-cpu: {cpu:?}");
    assert_eq!(
        whisper_symbols("worker-cpu"),
        0,
        "worker-cpu contains whisper.cpp"
    );
    let gpu = needed("worker-gpu");
    assert!(!ffmpeg(&gpu), "worker-gpu: {gpu:?}");
    assert!(
        whisper_symbols("worker-gpu") > 100,
        "worker-gpu transcribes"
    );
}
