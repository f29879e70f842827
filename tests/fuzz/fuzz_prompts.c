/* libFuzzer target for prompt sets (JSONL): any input either loads into a set
 * whose every id is inside the vocabulary, or fails with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ra/audit.h"

/* A byte-complete toy tokenizer: the 256 byte-level characters and one
 * control token, no merges. */
static ra_tokenizer *toy_tokenizer(void)
{
    static char text[257][8];
    static const char *tokens[257];
    static size_t lens[257];
    static int32_t types[257];
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
        uint32_t cp = printable ? b : next++;
        if (cp < 0x80) { text[b][0] = (char)cp; lens[b] = 1; }
        else { text[b][0] = (char)(0xc0 | (cp >> 6)); text[b][1] = (char)(0x80 | (cp & 0x3f)); lens[b] = 2; }
        tokens[b] = text[b];
        types[b] = RA_TOK_NORMAL;
    }
    strcpy(text[256], "<|s|>");
    tokens[256] = text[256];
    lens[256] = 5;
    types[256] = RA_TOK_CONTROL;
    ra_tokenizer_spec sp = {.model = "gpt2", .pre = "smollm", .n_tokens = 257, .tokens = tokens, .token_lens = lens,
                            .token_types = types, .bos_id = 256, .eos_id = 256, .unk_id = -1, .pad_id = -1};
    ra_tokenizer *t;
    if (ra_tokenizer_create(&sp, &t) != RA_OK) abort();
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ra_tokenizer *tok;
    static char path[200];
    if (!tok) {
        tok = toy_tokenizer();
        const char *t = getenv("TMPDIR"); /* a tmpfs there keeps the fuzzer off the disk */
        snprintf(path, sizeof path, "%s/ra-fuzz-prompts-XXXXXX", t && *t ? t : "/tmp"); /* mkstemp fills in the Xs */
        int fd = mkstemp(path);
        if (fd < 0) abort();
        close(fd);
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    ra_prompt_set *ps;
    if (ra_prompts_load(path, tok, 257, 4096, &ps) != RA_OK) return 0;
    if (ps->n == 0) abort();
    for (size_t i = 0; i < ps->n; i++) {
        const ra_prompt *p = &ps->items[i];
        if (!p->id || p->n_ids == 0) abort();
        for (size_t k = 0; k < p->n_ids; k++)
            if (p->ids[k] < 0 || p->ids[k] >= 257) abort();
        for (size_t k = 0; k < p->n_cont; k++)
            if (p->cont[k] < 0 || p->cont[k] >= 257) abort();
    }
    ra_prompts_free(ps);
    return 0;
}
