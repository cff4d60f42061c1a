/* call_tool's parts (call_tool.c, call_shim.c). */
#ifndef KURER_TESTS_CALL_TOOL_H
#define KURER_TESTS_CALL_TOOL_H

#include <stddef.h>
#include <stdint.h>

/* A 16-bit mono WAV of any rate: *pcm (free it), *n samples, *rate. 0 or -1. */
int read_wav_any(const char *path, int16_t **pcm, size_t *n, uint32_t *rate);
/* 48 kHz mono 16-bit. 0 or -1. */
int write_wav(const char *path, const int16_t *pcm, size_t n);

/* segsnr REC.wav SENT.wav MIN_DB */
int call_tool_segsnr(char **argv);
/* shim LISTEN UPSTREAM LOSS_PERCENT JITTER_MS SEED CAPTURE */
int call_tool_shim(char **argv);

#endif
