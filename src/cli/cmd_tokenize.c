/* repro-audit tokenize: prompt texts to token ids, as the run will see them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "ra/audit.h"
#include "ra/model.h"
#include "ra/text.h"
#include "ra/util.h"

static const char usage[] =
    "usage: repro-audit tokenize MODEL (--prompts FILE.jsonl | TEXT)\n"
    "\n"
    "MODEL is a GGUF file or an HF checkpoint directory (tokenizer.json).\n"
    "Prints token ids: for a prompt set, one JSON line per prompt\n"
    "{\"id\", \"ids\", \"continuation_ids\"?}; for TEXT, one JSON array.\n"
    "Special tokens such as <|im_start|> in the text are parsed.\n";

static void print_ids(const int32_t *ids, size_t n)
{
    putchar('[');
    for (size_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
    putchar(']');
}

int ra_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *prompts = NULL, *text = NULL;
    ra_status s = RA_OK;
    for (int i = 1; i < argc && s == RA_OK; i++) {
        if (ra_cli_is_help(argv[i])) { fputs(usage, stdout); return RA_EXIT_OK; }
        if (!strcmp(argv[i], "--prompts")) {
            if (!(prompts = ra_cli_value(argc, argv, &i))) s = RA_ERR_USAGE;
        } else if (!model) model = argv[i];
        else if (!text) text = argv[i];
        else s = ra_fail(RA_ERR_USAGE, "too many arguments (see tokenize --help)");
    }
    if (s == RA_OK && (!model || !!prompts == !!text))
        s = ra_fail(RA_ERR_USAGE, "tokenize needs MODEL and either --prompts FILE or TEXT (see tokenize --help)");
    ra_model_desc *d = NULL;
    ra_tokenizer *tok = NULL;
    ra_prompt_set *ps = NULL;
    if (s == RA_OK) s = ra_desc_open(model, 0, &d);
    if (s == RA_OK) s = ra_tokenizer_from_desc(d, &tok);
    ra_model_config cfg;
    if (s == RA_OK && prompts) s = ra_config_from_desc(d, &cfg); /* for the context length */
    if (s == RA_OK && prompts) {
        s = ra_prompts_load(prompts, tok, (uint32_t)ra_tokenizer_n_vocab(tok), cfg.max_seq, &ps);
        for (size_t i = 0; s == RA_OK && i < ps->n; i++) {
            ra_buf id = {0}; /* JSON-escaped, DEL and C1 too: the id comes from the file */
            s = ra_escape(&id, ps->items[i].id, strlen(ps->items[i].id), RA_ESC_JSON);
            printf("{\"id\": \"%.*s\", \"ids\": ", (int)id.len, id.data ? (const char *)id.data : "");
            ra_buf_free(&id);
            print_ids(ps->items[i].ids, ps->items[i].n_ids);
            if (ps->items[i].cont) {
                printf(", \"continuation_ids\": ");
                print_ids(ps->items[i].cont, ps->items[i].n_cont);
            }
            printf("}\n");
        }
    } else if (s == RA_OK) {
        int32_t *ids;
        size_t n;
        s = ra_tokenizer_encode(tok, text, strlen(text), true, &ids, &n);
        if (s == RA_OK) {
            print_ids(ids, n);
            putchar('\n');
            free(ids);
        }
    }
    ra_prompts_free(ps);
    ra_tokenizer_free(tok);
    ra_desc_close(d);
    return ra_cli_report(s);
}
