# Our patches to whisper.cpp, applied to the copy of its sources that whisper-rs-sys makes in
# its build directory, when CMake configures that copy. `.cargo/config.toml` sets
# CMAKE_PROJECT_INCLUDE to this file and whisper-rs-sys hands every CMAKE_* variable to CMake,
# which includes the file after each project() it meets; it acts on whisper.cpp's alone.
# Each patch is applied once (a marker says it is in) and fails the build, loudly, if the code
# it replaces is not there (a new whisper-rs-sys: review the patch).
#
# 1. DTW thread count. DTW word timestamps compute their small graph (norm, median filter,
#    mean) on a fresh CPU backend that gets ggml's default of 4 threads, whatever the caller
#    asked for. The worker decodes in lanes of one thread each, one lane per core, so every
#    chunk's alignment started 4 more threads per lane that spun at ggml's barriers against
#    the other lane. Measured on 2 cores (bench/transcribe's audio, 2 lanes): 5.93 s with DTW
#    as shipped, 5.48 s patched, 4.78 s without DTW. The patch computes the graph through the
#    helper whisper.cpp uses for its other CPU graphs, with the caller's thread count.
if(NOT PROJECT_NAME STREQUAL "whisper.cpp")
  return()
endif()

function(gt_patch file marker old new)
  file(READ "${file}" src)
  string(FIND "${src}" "${marker}" done)
  if(NOT done EQUAL -1)
    return()
  endif()
  string(FIND "${src}" "${old}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "glowing-telegram: ${file} no longer has the code the '${marker}' patch "
      "replaces (whisper-rs-sys changed?): review transcribe/whisper.cpp/patches.cmake")
  endif()
  string(REPLACE "${old}" "${new}" src "${src}")
  file(WRITE "${file}" "${src}")
  message(STATUS "glowing-telegram: applied '${marker}' to ${file}")
endfunction()

gt_patch("${PROJECT_SOURCE_DIR}/src/whisper.cpp"
  "glowing-telegram: DTW threads"
  "    ggml_backend_ptr backend { ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr) };
    ggml_backend_graph_compute(backend.get(), gf);

    ggml_tensor * alignment = dtw_and_backtrace(gctx, w);"
  "    // glowing-telegram: DTW threads (the caller's count, not ggml's default of 4)
    ggml_graph_compute_helper(gf, n_threads, nullptr, nullptr);

    ggml_tensor * alignment = dtw_and_backtrace(gctx, w);")

# 2. Padding past the audio. A chunk shorter than the encoder's window is padded. OpenAI's
#    Whisper and faster-whisper take the chunk's own log-mel frames and fill the rest of the
#    window with zeros of the normalised log-mel (`pad_or_trim`). whisper.cpp fills it with
#    the log-mel of 30 s of silent samples appended to the audio, which after normalisation is
#    the floor (max - 8 dB), well below zero: a different input from the one the model was
#    evaluated with. faster-whisper decoding bench/transcribe's 34 chunks made 43 errors in
#    1,149 words with its own padding and 50 with whisper.cpp's; whisper.cpp made 52, and 50
#    patched (46 with f16 weights). The patch ends the encoder's input at the audio's own
#    frames, so the zeros whisper.cpp already writes past them stay.
gt_patch("${PROJECT_SOURCE_DIR}/src/whisper.cpp"
  "glowing-telegram: zero padding"
  "            const int i1 = std::min(mel_offset + 2*n_ctx, mel_inp.n_len);"
  "            // glowing-telegram: zero padding (past the audio's own frames, as pad_or_trim does)
            const int i1 = std::min(mel_offset + 2*n_ctx, mel_inp.n_len_org);")
