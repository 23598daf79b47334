# The native kernel addon: OpenBLAS sgemm/sgemv plus fused C++ Llama-layer kernels.
# Built by scripts/build-native.mjs (node-gyp rebuild --directory native); kept out of the project root
# so that npm does not try to build it on install.
{
  "targets": [
    {
      "target_name": "flag_kernels",
      "sources": ["binding.cc", "kernels.cc", "pool.cc", "packed.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "/usr/include/openblas"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fopenmp-simd", "-fno-trapping-math", "-pthread"],
      "ldflags": ["-pthread"],
      "libraries": ["-lopenblas"]
    }
  ]
}
