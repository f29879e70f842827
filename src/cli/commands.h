/* One entry point per command; each returns the process exit code (cli_util.h). */
#ifndef RA_COMMANDS_H
#define RA_COMMANDS_H

int ra_cmd_run(int argc, char **argv);
int ra_cmd_compare(int argc, char **argv);
int ra_cmd_verify(int argc, char **argv);
int ra_cmd_inspect(int argc, char **argv);
int ra_cmd_tokenize(int argc, char **argv);
int ra_cmd_export_hf(int argc, char **argv);
int ra_cmd_bench(int argc, char **argv);
int ra_cmd_quantize(int argc, char **argv);
int ra_cmd_ppl(int argc, char **argv);
/* quantize for the GGUF formats (q4_k_m, q8_0, q4_0): MODEL requantized into the GGUF file out. */
int ra_quantize_gguf(const char *model, const char *format, const char *out);

#endif
