# node-gyp build of the server's AES addon (native/aes.c); native/build.mjs runs it.
{
  "targets": [
    {
      "target_name": "sealpost_aes",
      "sources": ["aes.c"],
      "cflags": ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
