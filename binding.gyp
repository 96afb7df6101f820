{
  "targets": [
    {
      "target_name": "bpfkit",
      "sources": ["native/bpfkit.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-O2"],
      "defines": ["_GNU_SOURCE"]
    }
  ]
}
