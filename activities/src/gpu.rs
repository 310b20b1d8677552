//! Activities of the GPU worker pool.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use gt_types::workflow::ModelInfo;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::invalid_input;

pub struct GpuActivitiesImpl {
    pub model_path: PathBuf,
    pub backend: &'static str,
}

/// ggml model files start with the magic 0x67676d6c ("ggml" read as a little-endian u32).
const GGML_MAGIC: [u8; 4] = [0x6c, 0x6d, 0x67, 0x67];

/// Checks that `path` is a ggml model file, with a message naming the path if not.
pub fn check_model_file(path: &std::path::Path) -> Result<u64, String> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| format!("Whisper model {}: cannot open: {e}", path.display()))?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic).map_err(|_| {
        format!(
            "Whisper model {}: file too short to be a model",
            path.display()
        )
    })?;
    if magic != GGML_MAGIC {
        return Err(format!(
            "Whisper model {}: not a ggml model file (bad magic)",
            path.display()
        ));
    }
    Ok(f.metadata().map(|m| m.len()).unwrap_or(0))
}

#[activities]
impl GpuActivitiesImpl {
    #[activity(definition = gt_workflows::contracts::ModelInfoActivity)]
    pub async fn model_info(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _input: (),
    ) -> Result<ModelInfo, ActivityError> {
        let bytes = check_model_file(&self.model_path).map_err(invalid_input)?;
        Ok(ModelInfo {
            path: self.model_path.display().to_string(),
            bytes,
            backend: self.backend.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_file_checks_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.bin");
        assert!(check_model_file(&missing).unwrap_err().contains("nope.bin"));
        let bad = dir.path().join("bad.bin");
        std::fs::write(&bad, b"not a model").unwrap();
        assert!(check_model_file(&bad).unwrap_err().contains("bad magic"));
        let good = dir.path().join("good.bin");
        std::fs::write(&good, [0x6c, 0x6d, 0x67, 0x67, 1, 2]).unwrap();
        assert_eq!(check_model_file(&good).unwrap(), 6);
    }
}
